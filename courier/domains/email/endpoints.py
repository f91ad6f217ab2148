"""``POST /v1/user-emails/{id}/send/``: send a draft."""

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from courier.core.auth import Permission
from courier.core.handlers import JsonResponse
from courier.domains.email.resource import user_emails
from courier.domains.email.schemas import TYPE_NAME, EmailRead
from courier.domains.email.service import EmailService
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import DocumentModels
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid, render_one

router = APIRouter(tags=["email"])
_service: EmailService = user_emails.service  # type: ignore[assignment]
_documents = DocumentModels(TYPE_NAME, EmailRead, None, None)


class SendBody(BaseModel):
    """The seed sends ``{}``; a JSON:API envelope is accepted too."""

    model_config = ConfigDict(extra="allow")


@router.post(
    "/v1/user-emails/{id}/send/",
    response_model=None,
    status_code=201,
    summary="Send a draft email",
    responses={201: {"model": _documents.single}, **ERROR_RESPONSES},
    operation_id="send-v1-user-emails",
)
async def send_email(
    id: str,
    body: SendBody | None = None,
    ctx: Context = Depends(context_dependency(Permission.COMMUNICATE)),
) -> JsonResponse:
    """Queue a draft for sending: its status becomes ``queued``, then follows the delivery
    (``sending``, ``sent`` or ``failed`` with the server's reply in ``result``). Not a draft:
    409. A recipient that bounced for this organization: 422. An attachment whose upload is
    not processed: 409."""
    email = await _service.load(ctx, path_uuid(id, "email"), for_update=True)
    await _service.do_send(ctx, email)
    await ctx.session.flush()
    _service.audit(ctx, "updated", email, ["status"])
    document: dict[str, Any] = await render_one(ctx, user_emails, email)
    return JsonResponse(document, status_code=201)
