"""The jobs of bulk messages: their fan-out, and the cleanup of their attachments' uploads.

- ``messaging-bulk-messages.plan`` / ``.chunk``: the fan-out (:mod:`.fanout`, run by
  :mod:`courier.jobs.fanout`). The plan job expands the recipients and enqueues one chunk job
  per chunk; a chunk job posts its recipients' messages and marks them in one transaction. A
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

from courier.domains.messaging_bulk import fanout  # noqa: F401  (declares the fan-out's jobs)
from courier.domains.messaging_bulk import repository as repo
from courier.domains.messaging_bulk.service import (
    ATTACHMENT_CLEANUP_JOB,
    DELETE_FILES_JOB,
    attachment_keys,
)
from courier.jobs import JobContext, job_handler
from courier.models.messaging_attachment import AttachmentStatus
from courier.providers.storage import storage_for


@job_handler(ATTACHMENT_CLEANUP_JOB)
async def cleanup_bulk_upload(job: JobContext) -> dict[str, Any] | None:
    """Once the upload window has closed: an upload never processed goes (objects and row);
    of a processed one, whatever a second upload left at the upload key."""
    ident = uuid.UUID(str(job.payload["attachment_id"]))
    storage = storage_for(job.settings)
    row = await repo.find_attachment(job.session, job.organization_id, ident)
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
