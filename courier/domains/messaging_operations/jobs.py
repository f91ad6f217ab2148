"""The operation job: status, the list of channels, then one step (one transaction) per channel.

Each channel's move commits together with the record of its step and its log entry
(:meth:`courier.jobs.JobContext.step`), so an attempt that dies half-way leaves every channel
either moved and logged, or untouched; the next attempt skips the recorded steps and moves the
rest. On the last attempt, an unexpected error is recorded on the operation (``failed``) before
the job itself is marked failed.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.db import commit
from courier.domains.messaging_operations import repository as repo
from courier.domains.messaging_operations import service
from courier.domains.messaging_operations.service import FINISHED, OPERATION_JOB, MoveFailedError
from courier.jobs import JobContext, LeaseLostError, PermanentJobError, job_handler
from courier.models.messaging_operation import MessagingOperation

log = logging.getLogger("courier.messaging_operations")


@job_handler(OPERATION_JOB)
async def run_operation(job: JobContext) -> dict[str, Any] | None:
    ident = uuid.UUID(str(job.payload["operation_id"]))
    operation = await repo.load_operation(job.session, job.organization_id, ident)
    if operation is None:
        raise PermanentJobError("the operation no longer exists")
    if operation.status in FINISHED:
        return {"status": operation.status}
    try:
        return await _run(job, operation)
    except LeaseLostError:
        raise
    except Exception:
        if job.is_last_attempt:
            await _record_crash(job, ident)
        raise


async def _run(job: JobContext, operation: MessagingOperation) -> dict[str, Any]:
    session = job.session
    if operation.status != "running":
        service.set_status(session, operation, "running")
    try:
        if operation.channel_ids is None:
            await service.check_target(session, operation)
            operation.channel_ids = await service.plan_channels(session, operation)
    except MoveFailedError as failure:
        service.fail(session, operation, str(failure))
        return {"status": "failed"}
    await job.checkpoint()  # "running" and the plan are visible (and kept) from here on
    for raw in list(operation.channel_ids):
        channel_id = uuid.UUID(raw)

        async def move(channel_id: uuid.UUID = channel_id) -> dict[str, Any]:
            entry = await service.move_channel(session, operation, channel_id)
            return {"result": entry["result"]}

        try:
            await job.step(f"move:{channel_id}", move)
        except MoveFailedError as failure:
            service.fail(session, operation, str(failure), channel_id)
            return {"status": "failed"}
    service.set_status(session, operation, "completed")
    return {"status": "completed", "channels": len(operation.channel_ids)}


async def _record_crash(job: JobContext, ident: uuid.UUID) -> None:
    """Mark the operation failed in a transaction of its own (the job's was rolled back)."""
    try:
        await job.session.rollback()
        async with AsyncSession(job.session.bind, expire_on_commit=False) as session:
            operation = await repo.load_operation(session, job.organization_id, ident)
            if operation is not None and operation.status not in FINISHED:
                service.fail(
                    session,
                    operation,
                    f"the operation stopped on an unexpected error after {job.attempt} "
                    f"attempts (job {job.job_id})",
                )
                await commit(session)
    except Exception:
        log.exception("could not record the failure of an operation", extra={"id": str(ident)})
