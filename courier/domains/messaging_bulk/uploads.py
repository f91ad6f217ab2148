"""Bulk attachments as a kind of upload: files sent with a draft bulk message.

Objects under ``orgs/<org>/messaging-bulk-attachments/<id>/``; the posted copies (messaging
attachments) point at them rather than copying them (``service.attach_copies``).
"""

from __future__ import annotations

from typing import Any

from courier.core.errors import ApiError, ErrorItem, conflict
from courier.domains.messaging_bulk.repository import load_bulk
from courier.domains.messaging_bulk.schemas import BULK_ATTACHMENT_TYPE, BulkAttachmentCreate
from courier.jsonapi.context import Context
from courier.models.messaging_bulk import MessagingBulkAttachment
from courier.uploads.kind import UploadKind, declare_upload


async def _on_draft(ctx: Context, attrs: BulkAttachmentCreate) -> dict[str, Any]:
    """A bulk message of the organization (404 naming the attribute), still a draft (409)."""
    bulk = await load_bulk(ctx.session, ctx.organization_id, attrs.bulk_message_id)
    if bulk is None:
        raise ApiError(
            404,
            [
                ErrorItem(
                    "bulk-message-id names no bulk message of this organization",
                    "not-found",
                    pointer="/data/attributes/bulk-message-id",
                )
            ],
        )
    if not bulk.draft:
        raise conflict(
            "the bulk message was already sent: attach files while it is a draft", "posted"
        )
    return {"bulk_message_id": bulk.id}


bulk_uploads = declare_upload(
    UploadKind(
        name=BULK_ATTACHMENT_TYPE,
        model=MessagingBulkAttachment,
        key_segment="messaging-bulk-attachments",
        parent=MessagingBulkAttachment.bulk_message_id,
        owner=_on_draft,
    )
)
