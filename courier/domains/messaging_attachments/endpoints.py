"""Starting and finishing an attachment upload.

1. ``POST /v1/messaging-attachments/`` creates a pending attachment and answers where to upload
   the file (``upload-url`` and the form fields ``upload-data``, valid until
   ``expiration-time``); the client uploads the bytes there itself.
2. ``POST /v1/messaging-attachments/{id}/process-upload/`` checks what was uploaded: the real
   type (from the bytes), the allowlist and the size limit; a thumbnail for images. The
   attachment becomes ready, or is rejected and its file deleted.
"""

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from courier.core.auth import Permission
from courier.core.handlers import JsonResponse
from courier.domains.messaging_attachments.processing import process_upload
from courier.domains.messaging_attachments.render import answer_processed, upload_started
from courier.domains.messaging_attachments.resource import attachments
from courier.domains.messaging_attachments.schemas import (
    TYPE_NAME,
    AttachmentCreate,
    AttachmentRead,
    ProcessUploadBody,
    UploadStartDocument,
)
from courier.domains.messaging_attachments.service import AttachmentService, allowed_types
from courier.jsonapi.context import Context, acting_individual, context_dependency
from courier.jsonapi.documents import DocumentModels
from courier.jsonapi.routes import ERROR_RESPONSES, check_document, path_uuid, render_one
from courier.models.messaging_attachment import AttachmentStatus
from courier.providers.storage import storage_for

router = APIRouter(tags=["messaging"])
_service: AttachmentService = attachments.service  # type: ignore[assignment]
_documents = DocumentModels(TYPE_NAME, AttachmentRead, AttachmentCreate, None)
CreateRequest: Any = _documents.create_request


@router.post(
    "/v1/messaging-attachments/",
    response_model=None,
    status_code=201,
    summary="Start an upload: returns upload-url, upload-data, expiration-time",
    responses={201: {"model": UploadStartDocument}, **ERROR_RESPONSES},
    operation_id="create-v1-messaging-attachments",
)
async def start_upload(
    body: CreateRequest,
    ctx: Context = Depends(context_dependency(Permission.COMMUNICATE)),
) -> JsonResponse:
    """Create a pending attachment of a message the caller may see, and a presigned upload:
    POST ``upload-url`` as multipart/form-data with every field of ``upload-data`` and then
    the file (part ``file``) before ``expiration-time`` (Unix seconds), then call
    ``process-upload``. A claimed ``content-type`` that is not accepted: 415."""
    attrs = check_document(body, attachments)
    assert isinstance(attrs, AttachmentCreate)
    attachment = await _service.do_start_upload(ctx, attrs)
    return await upload_started(ctx, attachment)


@router.post(
    "/v1/messaging-attachments/{id}/process-upload/",
    response_model=None,
    status_code=201,
    summary="Finish an upload: verify, size, thumbnail",
    responses={201: {"model": _documents.single}, **ERROR_RESPONSES},
    operation_id="process-upload-v1-messaging-attachments",
)
async def finish_upload(
    id: str,
    request: Request,
    body: ProcessUploadBody | None = None,
    ctx: Context = Depends(context_dependency(Permission.COMMUNICATE)),
) -> Response:
    """Check the uploaded file: its real content type (from its bytes, not its name or the
    claimed type) must be accepted (else 415) and its size within the limit (else 400). The
    attachment becomes ready, with a thumbnail for images; a refused file is deleted and the
    attachment marked rejected. Nothing uploaded yet: 409. Repeating the call on a ready
    attachment answers it as it is."""
    if body is not None and body.individual_id is not None:
        ctx.acting_individual_id = acting_individual(ctx, str(body.individual_id))
    attachment = await _service.load(ctx, path_uuid(id, "messaging attachment"), for_update=True)
    if attachment.status == AttachmentStatus.READY.value and not attachment.removed:
        return JsonResponse(await render_one(ctx, attachments, attachment), status_code=201)
    _service.check_processable(attachment)
    storage = storage_for(ctx.settings, base_url=str(ctx.request.base_url))
    processed = await process_upload(
        storage,
        attachment,
        allowed=allowed_types(ctx.settings),
        max_size=ctx.settings.attachment_max_bytes,
    )
    return await answer_processed(ctx, request, _service, attachments, attachment, processed)
