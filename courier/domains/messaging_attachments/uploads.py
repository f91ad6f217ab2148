"""Messaging attachments as a kind of upload: files attached to a message the caller may see.

Objects under ``orgs/<org>/messaging-attachments/<id>/``; the upload is made on behalf of the
acting individual (the token's, or ``individual-id``).
"""

from __future__ import annotations

from typing import Any

from courier.core.errors import conflict, not_found
from courier.domains.messaging_attachments.repository import visible_message
from courier.domains.messaging_attachments.schemas import TYPE_NAME, AttachmentCreate
from courier.jsonapi.context import Context
from courier.models.messaging_attachment import MessagingAttachment
from courier.uploads.kind import UploadKind, declare_upload


async def _on_message(ctx: Context, attrs: AttachmentCreate) -> dict[str, Any]:
    """A message the caller may see (404 otherwise), not removed (409)."""
    message = await visible_message(ctx, attrs.message_id)
    if message is None:
        raise not_found("message")
    if message.removed:
        raise conflict("the message was removed; nothing can be attached to it", "removed")
    return {"message_id": message.id, "individual_id": ctx.acting_individual_id}


messaging_uploads = declare_upload(
    UploadKind(
        name=TYPE_NAME,
        model=MessagingAttachment,
        key_segment="messaging-attachments",
        parent=MessagingAttachment.message_id,
        owner=_on_message,
    )
)
