"""Responder actions: enable, disable (admin). Both idempotent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from courier.core.auth import Permission
from courier.core.handlers import JsonResponse
from courier.domains.messaging_responders import service
from courier.domains.messaging_responders.resource import messaging_responders
from courier.domains.messaging_responders.schemas import RESPONDER_TYPE
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import DocumentModels
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid, render_one

router = APIRouter(tags=["messaging"])

RESPONDER = f"/v1/{RESPONDER_TYPE}/{{id}}/"
manage = Depends(context_dependency(Permission.MANAGE, individual_allowed=False))

ResponderDocument = DocumentModels(
    RESPONDER_TYPE,
    messaging_responders.read_schema,
    None,
    None,
    model_name="messaging-responder-actions",
).single


class EmptyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _responses() -> dict[int | str, dict[str, Any]]:
    return {201: {"model": ResponderDocument}, **ERROR_RESPONSES}


async def _switch(ctx: Context, raw_id: str, enabled: bool) -> JsonResponse:
    responder = await service.responders.load(
        ctx, path_uuid(raw_id, "messaging responder"), for_update=True
    )
    await service.set_enabled(ctx, responder, enabled)
    return JsonResponse(await render_one(ctx, messaging_responders, responder), status_code=201)


@router.post(
    RESPONDER + "enable/",
    status_code=201,
    response_model=None,
    summary="Enable an auto-responder (admin)",
    responses=_responses(),
    operation_id=f"enable-v1-{RESPONDER_TYPE}",
)
async def enable_responder(
    id: str, body: EmptyBody | None = None, ctx: Context = manage
) -> JsonResponse:
    """Idempotent: enabling an enabled responder changes nothing."""
    return await _switch(ctx, id, True)


@router.post(
    RESPONDER + "disable/",
    status_code=201,
    response_model=None,
    summary="Disable an auto-responder (admin): it no longer replies",
    responses=_responses(),
    operation_id=f"disable-v1-{RESPONDER_TYPE}",
)
async def disable_responder(
    id: str, body: EmptyBody | None = None, ctx: Context = manage
) -> JsonResponse:
    """Idempotent: disabling a disabled responder changes nothing."""
    return await _switch(ctx, id, False)
