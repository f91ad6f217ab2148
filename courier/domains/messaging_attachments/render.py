"""An attachment's attributes as a caller sees them, with short-lived signed links.

Links are made at the time of rendering, for a caller the query has already found entitled to
see the message; they expire after ``attachment_link_ttl_seconds``, so losing the right to see
a message (unsubscribed, removed) stops the downloads soon after.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from fastapi import Request
from starlette.responses import Response

from courier.config import Settings
from courier.core.errors import ApiError, ErrorItem, conflict
from courier.core.handlers import JsonResponse, render_error
from courier.core.time import format_timestamp
from courier.jsonapi.context import Context
from courier.jsonapi.routes import render_one
from courier.models.messaging_attachment import AttachmentStatus, MessagingAttachment
from courier.providers.storage import Storage, storage_for

# Shown in the browser rather than downloaded: images only (they cannot run anything).
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def _thumbnail_type(key: str) -> str:
    return "image/png" if key.endswith(".png") else "image/jpeg"


class StoredFile(Protocol):
    """What a download link is made from: a messaging attachment, or a bulk attachment."""

    status: str
    storage_key: str | None
    thumbnail_key: str | None
    content_type: str | None
    filename: str


async def signed_links(
    storage: Storage,
    settings: Settings,
    row: StoredFile,
    *,
    served: bool,
    thumbnails: bool = True,
) -> tuple[str | None, str | None]:
    """``(url, thumbnail)``: short-lived signed links to a ready file and its preview when
    ``served`` (ready and not removed), else ``(None, None)``."""
    served = served and row.status == AttachmentStatus.READY.value
    ttl = timedelta(seconds=settings.attachment_link_ttl_seconds)
    url = None
    thumbnail = None
    if served and row.storage_key:
        url = await storage.presign_download(
            row.storage_key,
            expires_in=ttl,
            content_type=row.content_type,
            filename=row.filename,
            inline=row.content_type in INLINE_TYPES,
        )
    if served and thumbnails and row.thumbnail_key:
        thumbnail = await storage.presign_download(
            row.thumbnail_key,
            expires_in=ttl,
            content_type=_thumbnail_type(row.thumbnail_key),
            inline=True,
        )
    return url, thumbnail


async def describe(
    storage: Storage, settings: Settings, row: MessagingAttachment, *, thumbnails: bool = True
) -> dict[str, Any]:
    url, thumbnail = await signed_links(
        storage, settings, row, served=not row.removed, thumbnails=thumbnails
    )
    return {
        "content-size": row.content_size,
        "content-type": row.content_type,
        "created-at": format_timestamp(row.created_at),
        "filename": row.filename,
        "message-id": str(row.message_id),
        "removed": row.removed,
        "status": row.status,
        "thumbnail": thumbnail,
        "url": url,
    }


async def upload_started(ctx: Context, attachment: Any) -> JsonResponse:
    """The seed's answer to starting an upload (a messaging or a bulk attachment): where and
    how to POST the file, and until when."""
    assert attachment.upload_key is not None
    storage = storage_for(ctx.settings, base_url=str(ctx.request.base_url))
    upload = await storage.presign_upload(
        attachment.upload_key,
        expires_in=attachment.upload_expires_at - attachment.created_at,
        max_size=ctx.settings.attachment_max_bytes,
    )
    return JsonResponse(
        {
            "data": {
                "id": str(attachment.id),
                "upload-url": upload.url,
                "upload-data": upload.fields,
                "expiration-time": int(upload.expires_at.timestamp()),
            }
        },
        status_code=201,
    )


async def answer_processed(
    ctx: Context,
    request: Request,
    service: Any,
    spec: Any,
    attachment: Any,
    processed: Any,
) -> Response:
    """The answer to ``process-upload`` (a messaging or a bulk attachment): 409 when nothing
    was uploaded; a refusal is recorded on the attachment and answered (not raised, so the
    request's session commits the rejection); else the attachment is marked ready."""
    if processed is None:
        raise conflict(
            "no file has been uploaded for this attachment yet: upload it to upload-url first",
            "upload-missing",
        )
    refusal = processed.inspection.refusal
    if refusal is not None:
        service.do_reject(
            ctx,
            attachment,
            refusal,
            detected_type=processed.inspection.content_type,
            size=processed.size,
        )
        return render_error(
            request, ApiError(refusal.status, [ErrorItem(refusal.detail, refusal.code)])
        )
    assert processed.stored_key is not None
    service.do_mark_ready(
        ctx,
        attachment,
        processed.inspection,
        size=processed.size,
        stored_key=processed.stored_key,
        stored_thumbnail=processed.stored_thumbnail,
    )
    return JsonResponse(await render_one(ctx, spec, attachment), status_code=201)
