"""The rules of messaging attachments: who may see which, and removing one for good.

Uploading (start, process-upload, the states pending -> ready | rejected) is the generic
upload's (``courier.uploads``); this domain adds that an attachment is visible to whoever may
see its message (an API key of the organization, or an individual subscribed to the message's
channel: an individual token, or an API key acting for an individual through
``individual-id``), and that ``removed`` hides a ready file for good. Services never commit
and never call providers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.errors import conflict, forbidden
from courier.core.time import utcnow
from courier.domains.messaging_attachments import repository as repo
from courier.domains.messaging_attachments.render import describe
from courier.domains.messaging_attachments.schemas import AttachmentUpdate
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.models.messaging_attachment import MessagingAttachment
from courier.providers.storage import storage_for
from courier.uploads.service import UploadService


class AttachmentService(UploadService[MessagingAttachment]):
    def query(self, ctx: Context) -> Select[Any]:
        """Attachments of the messages the caller may see (for a key acting with individual-id,
        what that person may see)."""
        return repo.visible_attachments(ctx)

    async def present(
        self, ctx: Context, rows: Sequence[MessagingAttachment]
    ) -> list[dict[str, Any]]:
        storage = storage_for(ctx.settings, base_url=str(ctx.request.base_url))
        return [await describe(storage, ctx.settings, row) for row in rows]

    async def update(
        self, ctx: Context, obj: MessagingAttachment, attrs: WriteAttributes
    ) -> MessagingAttachment:
        assert isinstance(attrs, AttachmentUpdate)
        if not attrs.removed:
            if obj.removed:
                raise conflict("a removed attachment cannot be restored", "attachment-removed")
            return obj
        if obj.removed:
            return obj
        if ctx.principal.is_individual and not await self._own(ctx, obj):
            raise forbidden(
                "only the individual who uploaded an attachment, or the message's author, "
                "may remove it"
            )
        obj.removed = True
        obj.removed_at = utcnow()
        return obj

    async def _own(self, ctx: Context, obj: MessagingAttachment) -> bool:
        me = ctx.principal.individual_id
        if obj.individual_id == me:
            return True
        message = await repo.visible_message(ctx, obj.message_id)
        return message is not None and message.individual_id == me


async def attachments_for_messages(
    session: AsyncSession,
    organization_id: uuid.UUID,
    message_ids: Sequence[uuid.UUID],
    *,
    settings: Settings,
    base_url: str | None = None,
    thumbnails: bool = True,
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The ready attachments of each message (removed ones too, without links), oldest first,
    as the ``attachments`` of a message's representation. One query for all the messages.

    The caller has already decided that whoever asks may see these messages; the download
    links made here (``url``, ``thumbnail``) are valid for ``attachment_link_ttl_seconds``.
    ``base_url``: how the client reaches Courier (local storage's links), e.g.
    ``str(request.base_url)``; ``thumbnails=False`` leaves ``thumbnail`` null.
    """
    result: dict[uuid.UUID, list[dict[str, Any]]] = {ident: [] for ident in message_ids}
    if not result:
        return result
    rows = await repo.ready_attachments(session, organization_id, list(result))
    if rows:
        storage = storage_for(settings, base_url=base_url)
        for row in rows:
            described = await describe(storage, settings, row, thumbnails=thumbnails)
            result[row.message_id].append({"id": str(row.id), **described})
    return result
