"""Purging uploads: the rows go in the purge's transaction, their files in jobs.

A domain's purge hook says which uploads belong to the individual being purged (a condition on
the kind's table); :func:`purge_uploads` archives those rows (when asked), deletes them and
enqueues one ``<kind>.delete-files`` job per upload in that same transaction (storage is only
called from jobs, and a job that fails is retried until the objects are gone).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.jobs import enqueue
from courier.purge import ArchiveWriter
from courier.uploads.kind import UploadKind


async def delete_files_later(
    session: AsyncSession, kind: UploadKind[Any], organization_id: uuid.UUID, upload_id: uuid.UUID
) -> None:
    """Delete an upload's own stored objects in a job (its row is being deleted)."""
    await enqueue(
        session,
        kind.delete_files_job,
        {"attachment_id": upload_id},
        organization_id=organization_id,
        dedupe_key=f"{kind.delete_files_job}:{upload_id}",
    )


async def purge_uploads(
    session: AsyncSession,
    kind: UploadKind[Any],
    organization_id: uuid.UUID,
    condition: ColumnElement[bool],
    archive: ArchiveWriter | None,
) -> int:
    """Delete the organization's uploads of ``kind`` matching ``condition`` (archived first
    with an ``archive``), their files in jobs. Returns how many rows were deleted."""
    stmt = scoped(select(kind.model).where(condition), kind.model, organization_id)
    rows = list((await session.execute(stmt)).scalars())
    if archive is not None:
        archive.write_rows(kind.model.__tablename__, rows)
    for row in rows:
        await delete_files_later(session, kind, organization_id, row.id)
        await session.delete(row)
    await session.flush()
    return len(rows)
