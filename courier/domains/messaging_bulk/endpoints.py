"""Starting and finishing a bulk attachment's upload (the same two steps as a messaging
attachment's, with the attachments domain's own processing: type from the bytes, allowlist,
size limit, thumbnail)."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from courier.core.auth import Permission
from courier.core.handlers import JsonResponse
from courier.domains.messaging_attachments.processing import process_object
from courier.domains.messaging_attachments.render import answer_processed, upload_started
from courier.domains.messaging_attachments.schemas import UploadStartDocument
from courier.domains.messaging_attachments.service import allowed_types
from courier.domains.messaging_bulk.resource import bulk_attachments
from courier.domains.messaging_bulk.schemas import (
    BULK_ATTACHMENT_TYPE,
    BulkAttachmentCreate,
    BulkAttachmentRead,
)
from courier.domains.messaging_bulk.service import BulkAttachmentService, file_key, thumbnail_key
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import DocumentModels
from courier.jsonapi.routes import ERROR_RESPONSES, check_document, path_uuid, render_one
from courier.models.messaging_attachment import AttachmentStatus
from courier.providers.storage import storage_for

router = APIRouter(tags=["messaging"])
_service: BulkAttachmentService = bulk_attachments.service  # type: ignore[assignment]
_documents = DocumentModels(BULK_ATTACHMENT_TYPE, BulkAttachmentRead, BulkAttachmentCreate, None)
CreateRequest: Any = _documents.create_request
communicate = Depends(context_dependency(Permission.COMMUNICATE, individual_allowed=False))


class ProcessBody(BaseModel):
    """The seed sends ``{}``."""

    model_config = ConfigDict(extra="forbid")


@router.post(
    "/v1/messaging-bulk-attachments/",
    response_model=None,
    status_code=201,
    summary="Start a bulk-message attachment upload",
    responses={201: {"model": UploadStartDocument}, **ERROR_RESPONSES},
    operation_id="create-v1-messaging-bulk-attachments",
)
async def start_upload(body: CreateRequest, ctx: Context = communicate) -> JsonResponse:
    """Create a pending attachment of a draft bulk message and a presigned upload: POST
    ``upload-url`` as multipart/form-data with every field of ``upload-data`` and then the file
    (part ``file``) before ``expiration-time`` (Unix seconds), then call ``process-upload``.
    The bulk message must still be a draft (409). A claimed ``content-type`` that is not
    accepted: 415."""
    attrs = check_document(body, bulk_attachments)
    assert isinstance(attrs, BulkAttachmentCreate)
    attachment = await _service.do_start_upload(ctx, attrs)
    return await upload_started(ctx, attachment)


@router.post(
    "/v1/messaging-bulk-attachments/{id}/process-upload/",
    response_model=None,
    status_code=201,
    summary="Finish a bulk attachment upload: verify, size, thumbnail",
    responses={201: {"model": _documents.single}, **ERROR_RESPONSES},
    operation_id="process-upload-v1-messaging-bulk-attachments",
)
async def finish_upload(
    id: str,
    request: Request,
    body: ProcessBody | None = None,
    ctx: Context = communicate,
) -> Response:
    """Check the uploaded file as a messaging attachment's is checked (real type from the
    bytes: 415 when not accepted; size: 400; nothing uploaded yet: 409). A ready attachment is
    answered as it is; a rejected one: 409."""
    attachment = await _service.load(
        ctx, path_uuid(id, "messaging bulk attachment"), for_update=True
    )
    if attachment.status == AttachmentStatus.READY.value:
        return JsonResponse(await render_one(ctx, bulk_attachments, attachment), status_code=201)
    _service.check_processable(attachment)
    org, ident = attachment.organization_id, attachment.id
    storage = storage_for(ctx.settings, base_url=str(ctx.request.base_url))
    processed = await process_object(
        storage,
        upload_key=attachment.upload_key,
        stored_key=file_key(org, ident),
        thumbnail_key_for=lambda media_type: thumbnail_key(org, ident, media_type),
        allowed=allowed_types(ctx.settings),
        max_size=ctx.settings.attachment_max_bytes,
    )
    return await answer_processed(ctx, request, _service, bulk_attachments, attachment, processed)
