"""Purging an individual: the attachments they uploaded, and those of the messages they wrote.

The rows are archived and deleted in the purge's transaction; their stored files (upload,
verified copy, thumbnail) are deleted by one ``messaging-attachments.delete-files`` job per
attachment, enqueued in that same transaction (storage is called from jobs, and a job that
fails is retried until the objects are gone). It runs before the messaging hook (order 50),
which unlinks the authors of the messages this hook looks for.
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.domains.messaging_attachments.service import DELETE_FILES_JOB
from courier.jobs import enqueue
from courier.models.messaging import MessagingMessage
from courier.models.messaging_attachment import MessagingAttachment
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="messaging-attachments", order=50)
async def purge_attachments(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    authored = scoped(
        select(MessagingMessage.id).where(MessagingMessage.individual_id == individual_id),
        MessagingMessage,
        organization_id,
    )
    stmt = scoped(
        select(MessagingAttachment).where(
            or_(
                MessagingAttachment.individual_id == individual_id,
                MessagingAttachment.message_id.in_(authored),
            )
        ),
        MessagingAttachment,
        organization_id,
    )
    rows = list((await session.execute(stmt)).scalars())
    if archive is not None:
        archive.write_rows(MessagingAttachment.__tablename__, rows)
    for row in rows:
        await enqueue(
            session,
            DELETE_FILES_JOB,
            {"attachment_id": row.id},
            organization_id=organization_id,
            dedupe_key=f"{DELETE_FILES_JOB}:{row.id}",
        )
        await session.delete(row)
    await session.flush()
    return {"messaging_attachments": len(rows)}
