"""Durable background jobs: a transactional outbox, handlers, workers.

Enqueue in the request's session (the job lands with the change or not at all)::

    from courier.jobs import enqueue
    await enqueue(ctx.session, "sms.send", {"text_id": text.id}, organization_id=org_id)

Handle in a domain's ``jobs.py`` (every ``courier.domains.*.jobs`` module is imported by the
worker; ``COURIER_JOB_MODULES`` names extra ones)::

    from courier.jobs import JobContext, job_handler

    @job_handler("sms.send")
    async def send_sms(job: JobContext) -> dict[str, Any] | None:
        ...

See :mod:`courier.jobs.context` for idempotent steps and :mod:`courier.jobs.worker` for how
jobs are claimed, retried and recovered.
"""

from courier.jobs.context import JobContext, LeaseLostError, PermanentJobError
from courier.jobs.outbox import (
    InvalidJobPayloadError,
    cancel,
    check_payload,
    enqueue,
    jobs_by_id,
    requeue,
)
from courier.jobs.registry import job_handler, load_job_modules
from courier.jobs.worker import Worker, run_until_idle
from courier.models.job import Job, JobState, JobStep

__all__ = [
    "InvalidJobPayloadError",
    "Job",
    "JobContext",
    "JobState",
    "JobStep",
    "LeaseLostError",
    "PermanentJobError",
    "Worker",
    "cancel",
    "check_payload",
    "enqueue",
    "job_handler",
    "jobs_by_id",
    "load_job_modules",
    "requeue",
    "run_until_idle",
]
