"""Operations: the jobs of an organization, and the background processes that run them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from courier.core.errors import conflict
from courier.core.time import utcnow
from courier.domains.operations.schemas import ReplicatorRead
from courier.jobs.outbox import requeue
from courier.jsonapi.actions import EmptyBody
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.render import render_rows
from courier.jsonapi.resource import CrudService
from courier.models.job import Job, JobState
from courier.models.replicator import Replicator


class JobService(CrudService[Job]):
    async def do_retry(self, ctx: Context, job: Job, body: EmptyBody | None) -> Changed[Job]:
        """Re-queue a failed job with a fresh set of attempts, due now (201). A job that is
        not failed (queued, running, succeeded, cancelled): 409."""
        if job.state != JobState.FAILED.value:
            raise conflict(
                f"only a failed job can be retried; this one is {job.state}", "job-not-failed"
            )
        requeue(ctx.session, job)
        return self.changed(ctx, "retried", job, ["state", "attempts", "run-at"])


class ReplicatorService(CrudService[Replicator]):
    async def present(self, ctx: Context, rows: Sequence[Replicator]) -> list[dict[str, Any]]:
        stale_before = utcnow() - timedelta(seconds=ctx.settings.replicator_stale_after)
        return render_rows(
            ReplicatorRead,
            [
                {
                    "classpath": row.classpath,
                    "created_time": row.created_at,
                    "last_poll_time": row.last_poll_at,
                    "hostname": row.hostname,
                    "pid": row.pid,
                    "concurrency": row.concurrency,
                    "stale": row.last_poll_at < stale_before,
                }
                for row in rows
            ],
        )
