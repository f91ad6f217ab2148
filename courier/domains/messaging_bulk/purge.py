"""Purging an individual from bulk messages.

- As a recipient: their rows among the bulk messages' fan-out targets (``fanout_targets``)
  are deleted and their id is taken out of the ``individual-ids`` of every bulk message (the
  counts stay: they say how many were reached). Nothing stored is deleted: the files of a
  bulk message are the sender's, referenced by every recipient's copy.
- As a sender: their bulk messages keep their counts but lose the text (``message``,
  ``message-js``) and the sender (unlinked), like the messages they wrote (the messaging hook
  redacts those); the bulk attachments are deleted with their stored objects (one
  ``messaging-bulk-attachments.delete-files`` job each, ``courier.uploads.purge``), after the
  attachments hook (order 50) has deleted the copies hanging on the sender's messages.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.messaging_bulk import repository as repo
from courier.domains.messaging_bulk.fanout import BULK_MESSAGES
from courier.domains.messaging_bulk.uploads import bulk_uploads
from courier.models.fanout import FanoutTarget
from courier.models.messaging_bulk import MessagingBulkAttachment, MessagingBulkMessage
from courier.purge import ArchiveWriter, delete_rows, purge_hook
from courier.uploads.purge import purge_uploads


@purge_hook("individual", name="messaging-bulk-messages", order=60)
async def purge_bulk_messages(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    ident = str(individual_id)
    counts = {
        "fanout_targets": await delete_rows(
            session,
            organization_id,
            FanoutTarget,
            repo.recipient_rows_of(organization_id, BULK_MESSAGES.name, individual_id),
            archive,
        )
    }
    listed = redacted = 0
    sent: list[uuid.UUID] = []
    for bulk in await repo.bulk_messages_of(session, organization_id, individual_id):
        if ident in bulk.individual_ids:
            if archive is not None:
                archive.write(
                    MessagingBulkMessage.__tablename__, {"id": bulk.id, "individual_ids": [ident]}
                )
            bulk.individual_ids = [i for i in bulk.individual_ids if i != ident]
            listed += 1
        if bulk.created_by == individual_id:
            bulk.created_by = None
        if bulk.sender_individual_id == individual_id:
            if archive is not None:
                archive.write(
                    MessagingBulkMessage.__tablename__,
                    {
                        "id": bulk.id,
                        "sender_individual_id": bulk.sender_individual_id,
                        "message": bulk.message,
                        "message_js": bulk.message_js,
                    },
                )
            bulk.sender_individual_id = None
            bulk.message = ""
            bulk.message_js = {}
            sent.append(bulk.id)
            redacted += 1
    await session.flush()
    counts["messaging_bulk_messages.unlisted"] = listed
    counts["messaging_bulk_messages.redacted"] = redacted
    files = 0
    if sent:
        files = await purge_uploads(
            session,
            bulk_uploads,
            organization_id,
            MessagingBulkAttachment.bulk_message_id.in_(sent),
            archive,
        )
    counts["messaging_bulk_attachments"] = files
    return counts
