"""Bulk attachments as a caller sees them (uploading them is the generic upload's,
``courier.uploads``; their kind is declared in ``uploads.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from courier.core.time import format_timestamp
from courier.jsonapi.context import Context
from courier.models.messaging_bulk import MessagingBulkAttachment
from courier.providers.storage import storage_for
from courier.uploads.answers import signed_links
from courier.uploads.service import UploadService


class BulkAttachmentService(UploadService[MessagingBulkAttachment]):
    async def present(
        self, ctx: Context, rows: Sequence[MessagingBulkAttachment]
    ) -> list[dict[str, Any]]:
        storage = storage_for(ctx.settings, base_url=str(ctx.request.base_url))
        out: list[dict[str, Any]] = []
        for row in rows:
            url, thumbnail = await signed_links(storage, ctx.settings, row, served=True)
            out.append(
                {
                    "bulk-message-id": str(row.bulk_message_id),
                    "content-size": row.content_size,
                    "content-type": row.content_type,
                    "created-at": format_timestamp(row.created_at),
                    "filename": row.filename,
                    "status": row.status,
                    "thumbnail": thumbnail,
                    "url": url,
                }
            )
        return out
