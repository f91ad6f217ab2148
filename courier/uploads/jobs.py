"""The two jobs of every kind of upload: the stale-upload cleanup and deleting files.

``<kind>.cleanup`` runs per organization once an upload window has closed and
``COURIER_ATTACHMENT_CLEANUP_GRACE_SECONDS`` more have passed (time for a late
``process-upload``): starting an upload schedules it, one job per organization and
five-minute window through a dedupe key. It deletes the uploads started but never uploaded or
processed (their objects, then their rows), and any object left at the upload key of
processed ones (a client may upload again until the link expires; such bytes are never read,
now they are gone too). A processed upload keeps its row and its verified file. Each run
schedules the next one while uploads remain, so nothing depends on a single job.

``<kind>.delete-files`` deletes the objects under an upload's own key prefix once its row is
gone (a purge); never an object the row only points at (a bulk message's posted copies share
the bulk attachment's file).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.jobs import JobContext, enqueue, job_handler
from courier.models.upload import UploadStatus
from courier.providers.storage import Storage, storage_for

if TYPE_CHECKING:
    from courier.uploads.kind import UploadKind

SWEEP_BATCH = 200
# Cleanup jobs of an organization are grouped in windows of this many seconds: one job per
# window and kind, however many uploads start in it.
CLEANUP_WINDOW_SECONDS = 300


def cleanup_grace(settings: Settings) -> timedelta:
    """How long after its link expires an unprocessed upload is kept."""
    return timedelta(seconds=settings.attachment_cleanup_grace_seconds)


def cleanup_window(moment: datetime) -> int:
    """The Unix time at which the cleanup job covering ``moment`` runs."""
    return math.ceil(moment.timestamp() / CLEANUP_WINDOW_SECONDS) * CLEANUP_WINDOW_SECONDS


async def schedule_cleanup(
    session: AsyncSession,
    kind: UploadKind[Any],
    settings: Settings,
    organization_id: uuid.UUID,
    upload_expires_at: datetime,
) -> None:
    """Make sure a cleanup job runs once this upload window (and its grace) has closed.

    One job per kind, organization and window: the dedupe key returns the existing one."""
    window = cleanup_window(upload_expires_at + cleanup_grace(settings))
    await enqueue(
        session,
        kind.cleanup_job,
        {},
        organization_id=organization_id,
        run_at=datetime.fromtimestamp(window, UTC),
        dedupe_key=f"{kind.cleanup_job}:{window}",
    )


@dataclass(frozen=True)
class Swept:
    deleted: int  # uploads never processed: objects and rows deleted
    cleared: int  # processed uploads whose leftover upload object was deleted
    more: bool  # the batch was full: more may remain


async def sweep_stale_uploads(
    session: AsyncSession,
    storage: Storage,
    kind: UploadKind[Any],
    organization_id: uuid.UUID,
    *,
    now: datetime,
    grace: timedelta,
    limit: int = SWEEP_BATCH,
) -> Swept:
    """Delete what remains of upload windows closed before ``now - grace``, oldest first, at
    most ``limit`` rows. Never commits; objects are deleted before the rows change, so a run
    that dies half-way is simply repeated."""
    model = kind.model
    stmt = scoped(
        select(model)
        .where(model.upload_key.is_not(None), model.upload_expires_at < now - grace)
        .order_by(model.upload_expires_at, model.id)
        .limit(limit),
        model,
        organization_id,
    )
    if session.get_bind().dialect.name != "sqlite":
        # An upload being processed right now is left for the next run.
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list((await session.execute(stmt)).scalars())
    deleted = cleared = 0
    for row in rows:
        if row.status == UploadStatus.PENDING.value:
            # A processing that never committed may have left any of its objects.
            for key in kind.keys.of_row(row):
                await storage.delete(key)
            await session.delete(row)
            deleted += 1
        else:
            assert row.upload_key is not None
            await storage.delete(row.upload_key)
            row.upload_key = None
            cleared += 1
    await session.flush()
    return Swept(deleted, cleared, len(rows) == limit)


async def next_upload_expiry(
    session: AsyncSession, kind: UploadKind[Any], organization_id: uuid.UUID
) -> datetime | None:
    """When the next open upload window of the organization closes."""
    model = kind.model
    stmt = scoped(
        select(func.min(model.upload_expires_at)).where(model.upload_key.is_not(None)),
        model,
        organization_id,
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    if value is None:
        return None
    if isinstance(value, str):  # an aggregate bypasses the column type on SQLite
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    found: datetime = value
    return found


async def run_cleanup(job: JobContext, kind: UploadKind[Any]) -> dict[str, Any]:
    """One run of ``<kind>.cleanup`` for the job's organization, and the next one scheduled."""
    now = utcnow()
    grace = cleanup_grace(job.settings)
    swept = await sweep_stale_uploads(
        job.session, storage_for(job.settings), kind, job.organization_id, now=now, grace=grace
    )
    if swept.more:
        await enqueue(
            job.session,
            kind.cleanup_job,
            {},
            organization_id=job.organization_id,
            dedupe_key=f"{kind.cleanup_job}:after:{job.job_id}",
        )
    else:
        following = await next_upload_expiry(job.session, kind, job.organization_id)
        if following is not None and following + grace > now:
            await schedule_cleanup(job.session, kind, job.settings, job.organization_id, following)
        elif following is not None:
            # Left over this time (being processed): look again in a minute.
            await enqueue(
                job.session,
                kind.cleanup_job,
                {},
                organization_id=job.organization_id,
                run_at=now + timedelta(minutes=1),
                dedupe_key=f"{kind.cleanup_job}:after:{job.job_id}",
            )
    return {"deleted": swept.deleted, "cleared": swept.cleared}


async def delete_own_files(job: JobContext, kind: UploadKind[Any]) -> dict[str, Any]:
    """Delete every object under an upload's own prefix (its row is already gone)."""
    upload_id = uuid.UUID(str(job.payload["attachment_id"]))
    storage = storage_for(job.settings)
    keys = kind.keys.own(job.organization_id, upload_id)
    for key in keys:
        await storage.delete(key)
    return {"deleted-keys": len(keys)}


def register_jobs(kind: UploadKind[Any]) -> None:
    """The handlers of ``kind``'s two jobs."""

    async def cleanup(job: JobContext) -> dict[str, Any]:
        return await run_cleanup(job, kind)

    async def delete_files(job: JobContext) -> dict[str, Any]:
        return await delete_own_files(job, kind)

    job_handler(kind.cleanup_job)(cleanup)
    job_handler(kind.delete_files_job)(delete_files)
