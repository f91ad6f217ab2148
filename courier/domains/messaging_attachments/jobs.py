"""Background work of attachments: deleting uploads whose window has closed, and the files of
attachments whose rows were deleted (an individual's purge).

``messaging-attachments.cleanup`` runs per organization once an upload window (plus a grace
for late processing) has closed: starting an upload schedules it (one job per organization and
five-minute window, through a dedupe key). It deletes pending uploads that were never
processed (object and row) and any object left at the upload key of processed ones (a client
may upload again until the link expires; such bytes are never read, now they are gone too).
Each run schedules the next one if uploads remain, so nothing depends on a single job.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.domains.messaging_attachments.service import (
    CLEANUP_JOB,
    DELETE_FILES_JOB,
    UPLOAD_GRACE,
    attachment_keys,
    derived_keys,
    schedule_cleanup,
)
from courier.jobs import JobContext, enqueue, job_handler
from courier.models.messaging_attachment import AttachmentStatus, MessagingAttachment
from courier.providers.storage import Storage, storage_for

SWEEP_BATCH = 200


async def sweep_expired_uploads(
    session: AsyncSession,
    storage: Storage,
    organization_id: uuid.UUID,
    *,
    now: datetime,
    limit: int = SWEEP_BATCH,
) -> tuple[int, int, bool]:
    """Delete what remains of closed upload windows, oldest first, at most ``limit`` rows.

    Returns (pending attachments deleted, processed attachments whose upload key was cleared,
    whether more may remain). Never commits; objects are deleted before the rows change, so
    a run that dies half-way is simply repeated.
    """
    stmt = scoped(
        select(MessagingAttachment)
        .where(
            MessagingAttachment.upload_key.is_not(None),
            MessagingAttachment.upload_expires_at < now - UPLOAD_GRACE,
        )
        .order_by(MessagingAttachment.upload_expires_at, MessagingAttachment.id)
        .limit(limit),
        MessagingAttachment,
        organization_id,
    )
    if session.get_bind().dialect.name != "sqlite":
        # An upload being processed right now is left for the next run.
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list((await session.execute(stmt)).scalars())
    deleted = cleared = 0
    for row in rows:
        if row.status == AttachmentStatus.PENDING.value:
            for key in derived_keys(row):  # a processing that never committed may have left some
                await storage.delete(key)
            await session.delete(row)
            deleted += 1
        else:
            assert row.upload_key is not None
            await storage.delete(row.upload_key)
            row.upload_key = None
            cleared += 1
    await session.flush()
    return deleted, cleared, len(rows) == limit


async def next_upload_expiry(session: AsyncSession, organization_id: uuid.UUID) -> datetime | None:
    stmt = scoped(
        select(func.min(MessagingAttachment.upload_expires_at)).where(
            MessagingAttachment.upload_key.is_not(None)
        ),
        MessagingAttachment,
        organization_id,
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    if value is None:
        return None
    if isinstance(value, str):  # an aggregate bypasses the column type on SQLite
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=utcnow().tzinfo)
    found: datetime = value
    return found


@job_handler(CLEANUP_JOB)
async def cleanup_expired_uploads(job: JobContext) -> dict[str, Any]:
    now = utcnow()
    storage = storage_for(job.settings)
    deleted, cleared, more = await sweep_expired_uploads(
        job.session, storage, job.organization_id, now=now
    )
    if more:
        await enqueue(
            job.session,
            CLEANUP_JOB,
            {},
            organization_id=job.organization_id,
            dedupe_key=f"{CLEANUP_JOB}:after:{job.job_id}",
        )
    else:
        following = await next_upload_expiry(job.session, job.organization_id)
        if following is not None and following + UPLOAD_GRACE > now:
            await schedule_cleanup(job.session, job.organization_id, following)
        elif following is not None:
            # Left over this time (being processed): look again in a minute.
            await enqueue(
                job.session,
                CLEANUP_JOB,
                {},
                organization_id=job.organization_id,
                run_at=now + timedelta(minutes=1),
                dedupe_key=f"{CLEANUP_JOB}:after:{job.job_id}",
            )
    return {"deleted": deleted, "cleared": cleared}


@job_handler(DELETE_FILES_JOB)
async def delete_attachment_files(job: JobContext) -> dict[str, Any]:
    """Delete every object an attachment may have (its row is already gone, e.g. purged)."""
    attachment_id = uuid.UUID(str(job.payload["attachment_id"]))
    storage = storage_for(job.settings)
    keys = attachment_keys(job.organization_id, attachment_id)
    for key in keys:
        await storage.delete(key)
    return {"deleted-keys": len(keys)}
