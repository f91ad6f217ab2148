"""The fan-out of bulk messages, and the cleanup of their attachments' uploads.

- ``messaging-bulk-messages.plan`` (one per bulk message, dedupe key): expands the recipients,
  writes their rows and enqueues the chunk jobs, all in its one transaction.
- ``messaging-bulk-messages.post-chunk`` (one per chunk, dedupe key): posts the chunk's pending
  recipients and marks them done in its one transaction (see :func:`service.post_chunk`). A
  worker killed half-way commits nothing of the chunk; the job is taken up again once its lease
  expires and posts the chunk then: every recipient gets exactly one message.
- ``messaging-bulk-attachments.cleanup`` (per attachment, once its upload window has closed):
  deletes an upload never processed (objects and row), or what is left at the upload key.
- ``messaging-bulk-attachments.delete-files``: the objects of a bulk attachment whose row is
  gone (a purge of its sender).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from courier.core.tenancy import scoped
from courier.domains.messaging_bulk import service
from courier.domains.messaging_bulk.service import (
    ATTACHMENT_CLEANUP_JOB,
    CHUNK_JOB,
    DELETE_FILES_JOB,
    PLAN_JOB,
    attachment_keys,
)
from courier.jobs import JobContext, PermanentJobError, job_handler
from courier.models.messaging_attachment import AttachmentStatus
from courier.models.messaging_bulk import BulkStatus, MessagingBulkAttachment
from courier.providers.storage import storage_for


def _bulk_id(job: JobContext) -> uuid.UUID:
    return uuid.UUID(str(job.payload["bulk_message_id"]))


@job_handler(PLAN_JOB)
async def plan_bulk_message(job: JobContext) -> dict[str, Any] | None:
    bulk = await service.load_bulk(job.session, job.organization_id, _bulk_id(job), for_update=True)
    if bulk is None:
        raise PermanentJobError("the bulk message no longer exists")
    if bulk.status != BulkStatus.QUEUED.value:
        return {"status": bulk.status}  # planned already (this job cannot run twice, but)
    recipients = await service.plan(job.session, job.settings, bulk)
    return {"recipients": recipients, "chunks": bulk.chunk_count}


@job_handler(CHUNK_JOB)
async def post_bulk_chunk(job: JobContext) -> dict[str, Any] | None:
    bulk = await service.load_bulk(job.session, job.organization_id, _bulk_id(job))
    if bulk is None:
        raise PermanentJobError("the bulk message no longer exists")
    counts = await service.post_chunk(job.session, bulk, int(job.payload["chunk"]))
    return dict(counts)


@job_handler(ATTACHMENT_CLEANUP_JOB)
async def cleanup_bulk_upload(job: JobContext) -> dict[str, Any] | None:
    """Once the upload window has closed: an upload never processed goes (objects and row);
    of a processed one, whatever a second upload left at the upload key."""
    ident = uuid.UUID(str(job.payload["attachment_id"]))
    storage = storage_for(job.settings)
    stmt = scoped(
        select(MessagingBulkAttachment).where(MessagingBulkAttachment.id == ident),
        MessagingBulkAttachment,
        job.organization_id,
    )
    row = (await job.session.execute(stmt)).scalar_one_or_none()
    if row is None or row.status == AttachmentStatus.PENDING.value:
        for key in attachment_keys(job.organization_id, ident):
            await storage.delete(key)
        if row is not None:
            await job.session.delete(row)
        return {"deleted": True}
    if row.upload_key is not None:
        await storage.delete(row.upload_key)
        row.upload_key = None
    return {"deleted": False}


@job_handler(DELETE_FILES_JOB)
async def delete_bulk_attachment_files(job: JobContext) -> dict[str, Any] | None:
    ident = uuid.UUID(str(job.payload["attachment_id"]))
    storage = storage_for(job.settings)
    keys = attachment_keys(job.organization_id, ident)
    for key in keys:
        await storage.delete(key)
    return {"deleted-keys": len(keys)}
