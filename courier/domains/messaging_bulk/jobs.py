"""The fan-out of bulk messages (their attachments' jobs are the generic upload's:
``courier.uploads.jobs``).

- ``messaging-bulk-messages.plan`` (one per bulk message, dedupe key): expands the recipients,
  writes their rows and enqueues the chunk jobs, all in its one transaction.
- ``messaging-bulk-messages.post-chunk`` (one per chunk, dedupe key): posts the chunk's pending
  recipients and marks them done in its one transaction (see :func:`service.post_chunk`). A
  worker killed half-way commits nothing of the chunk; the job is taken up again once its lease
  expires and posts the chunk then: every recipient gets exactly one message.
"""

from __future__ import annotations

import uuid
from typing import Any

from courier.domains.messaging_bulk import service
from courier.domains.messaging_bulk.service import CHUNK_JOB, PLAN_JOB
from courier.jobs import JobContext, PermanentJobError, job_handler
from courier.models.messaging_bulk import BulkStatus


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
