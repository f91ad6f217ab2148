"""A messaging attachment's attributes as a caller sees them, with short-lived signed links
(``courier.uploads.answers.signed_links``): null once removed."""

from __future__ import annotations

from typing import Any

from courier.config import Settings
from courier.core.time import format_timestamp
from courier.models.messaging_attachment import MessagingAttachment
from courier.providers.storage import Storage
from courier.uploads.answers import signed_links


async def describe(
    storage: Storage,
    settings: Settings,
    row: MessagingAttachment | Any,
    *,
    thumbnails: bool = True,
) -> dict[str, Any]:
    """``row``: a loaded attachment or a Core row of its columns
    (:func:`repository.ready_attachments`)."""
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
