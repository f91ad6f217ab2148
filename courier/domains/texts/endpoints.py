"""Carrier webhooks: status callbacks at ``/v1/texts/{id}/callback/`` and texts received at a
number's inbound URL, ``/v1/text-account-numbers/{id}/inbound/``. Both go through the provider
layer's one inbound path (signature, de-duplication, apply job); a signature that does not
verify (with the text account's own credentials where it has them) is 401."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from courier.config import Settings
from courier.core.db import commit
from courier.core.errors import not_found
from courier.core.sealed import unseal
from courier.domains.texts import repository as repo
from courier.domains.texts.jobs import account_adapter
from courier.jsonapi.routes import path_uuid
from courier.providers.common import providers_for
from courier.providers.inbound import raw_request, receive
from courier.providers.sms.kind import SMS

router = APIRouter(tags=["sms"])


async def _receive(request: Request, account_id: uuid.UUID, hook: str) -> Response:
    settings: Settings = request.app.state.settings
    raw = await raw_request(settings, request, hook)
    async with request.app.state.database.sessionmaker() as session:
        account = await repo.any_account(session, account_id)
        adapter = providers_for(settings).get(SMS)
        if account is not None:
            adapter = account_adapter(adapter, account, settings)
        await receive(session, settings, SMS.name, adapter, raw)
        await commit(session)
    return Response(status_code=204)


@router.post(
    "/v1/texts/{id}/callback/",
    status_code=204,
    response_model=None,
    summary="Carrier callback: delivery status or reply for a text (signed)",
    operation_id="callback-v1-texts",
)
async def text_callback(id: str, request: Request) -> Response:
    """Twilio's status callback (form-encoded, ``X-Twilio-Signature``), or the sandbox's
    (``X-Courier-Sandbox-Signature``). 204 once verified, repeats included; 401 otherwise."""
    ident = path_uuid(id, "text")
    async with request.app.state.database.sessionmaker() as session:
        account_id = await repo.account_of_text(session, ident)
    if account_id is None:
        raise not_found("text")
    return await _receive(request, account_id, "status")


@router.post(
    "/v1/text-account-numbers/{id}/inbound/",
    status_code=204,
    response_model=None,
    summary="Carrier webhook: a text received on this number (signed)",
    operation_id="inbound-v1-text-account-numbers",
)
async def number_inbound(id: str, request: Request) -> Response:
    """Where the carrier posts texts sent to the number (Twilio's SmsUrl)."""
    ident = path_uuid(id, "text number")
    async with request.app.state.database.sessionmaker() as session:
        account_id = await repo.account_of_number(session, ident)
    if account_id is None:
        raise not_found("text number")
    return await _receive(request, account_id, "inbound")


__all__ = ["router", "unseal"]
