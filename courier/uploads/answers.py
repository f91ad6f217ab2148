"""What an upload answers: where to upload (step 1), and short-lived signed links to a ready
file (every representation of one).

Links are made at the time of rendering, for a caller the query has already found entitled to
see the upload; they expire after ``attachment_link_ttl_seconds``, so losing the right to see
it (unsubscribed, removed) stops the downloads soon after.
"""

from __future__ import annotations

from datetime import timedelta

from courier.config import Settings
from courier.core.handlers import JsonResponse
from courier.jsonapi.context import Context
from courier.models.upload import UploadColumns, UploadStatus
from courier.providers.storage import Storage, storage_for

# Shown in the browser rather than downloaded: images only (they cannot run anything).
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def _thumbnail_type(key: str) -> str:
    return "image/png" if key.endswith(".png") else "image/jpeg"


async def signed_links(
    storage: Storage,
    settings: Settings,
    row: UploadColumns,
    *,
    served: bool,
    thumbnails: bool = True,
) -> tuple[str | None, str | None]:
    """``(url, thumbnail)``: short-lived signed links to a ready file and its preview when
    ``served`` (and ready), else ``(None, None)``."""
    served = served and row.status == UploadStatus.READY.value
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


async def upload_started(ctx: Context, row: UploadColumns) -> JsonResponse:
    """The seed's answer to starting an upload: where and how to POST the file, and until
    when (201, ``{"data": {"id", "upload-url", "upload-data", "expiration-time"}}``)."""
    assert row.upload_key is not None
    storage = storage_for(ctx.settings, base_url=str(ctx.request.base_url))
    upload = await storage.presign_upload(
        row.upload_key,
        expires_in=row.upload_expires_at - row.created_at,
        max_size=ctx.settings.attachment_max_bytes,
    )
    return JsonResponse(
        {
            "data": {
                "id": str(row.id),
                "upload-url": upload.url,
                "upload-data": upload.fields,
                "expiration-time": int(upload.expires_at.timestamp()),
            }
        },
        status_code=201,
    )
