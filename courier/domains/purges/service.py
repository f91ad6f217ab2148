"""Purge requests: accepted at once (201), carried out by the ``system-purges.run`` job.

The purge row is the receipt a clinic keeps: who asked, for which entity, which hooks ran and how
many rows each removed, where the archive is. It holds ids only. The audit log records the
request and the completion (entity type and id, counts; never patient data).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from courier.core.errors import invalid_attribute
from courier.domains.purges.schemas import PurgeCreate, PurgeRead
from courier.jobs import enqueue, jobs_by_id
from courier.jsonapi.changes import Changed, change
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.render import render_rows
from courier.jsonapi.resource import CrudService
from courier.models.job import JobState
from courier.models.system_purge import SystemPurge
from courier.purge import hooks_for, load_purge_hooks

TYPE_NAME = "system-purges"
PURGE_JOB = "system-purges.run"
FAILED_JOB_STATES = frozenset({JobState.FAILED.value, JobState.CANCELLED.value})


def parse_entity_id(entity_type: str, raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw.strip())
    except ValueError as exc:
        raise invalid_attribute("entity-id", f"must be the UUID of an {entity_type}") from exc


async def do_request_purge(
    ctx: Context,
    *,
    entity_type: str,
    entity_id: str,
    archive: bool,
    reference_id: str | None,
    request_id: str | None,
) -> Changed[SystemPurge]:
    """Record the purge and enqueue its job, in the request's transaction.

    An id that names nothing (never existed, another organization's, already purged) is
    accepted: the purge finds nothing and completes with zero counts, which says exactly that,
    and re-asserting an erasure (e.g. after restoring a backup) stays possible.
    """
    ident = parse_entity_id(entity_type, entity_id)
    load_purge_hooks()
    principal = ctx.principal
    purge = SystemPurge(
        id=uuid.uuid4(),
        organization_id=ctx.organization_id,
        entity_type=entity_type,
        entity_id=str(ident),
        archive=archive,
        reference_id=reference_id,
        client_request_id=request_id,
        state="queued",
        steps=[r.name for r in hooks_for(entity_type)],
        steps_done=[],
        counts={},
        requested_by_type=principal.kind.value,
        requested_by=principal.actor_id,
    )
    ctx.session.add(purge)
    await ctx.session.flush()
    job = await enqueue(
        ctx.session, PURGE_JOB, {"purge_id": purge.id}, organization_id=ctx.organization_id
    )
    purge.job_id = job.id
    return Changed(
        purge,
        [
            # The audit log says what was asked (entity type and id: ids only) ...
            change(
                TYPE_NAME,
                purge.id,
                "requested",
                fields=["entity-type", "entity-id", "archive"],
                details={"entity-type": entity_type, "entity-id": str(ident), "archive": archive},
                published=False,
            ),
            # ... subscribers see a new purge to poll.
            change(TYPE_NAME, purge.id, "created", data={"state": purge.state}, audited=False),
        ],
    )


class PurgeService(CrudService[SystemPurge]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[SystemPurge]:
        """Accept a purge (201, state ``queued``); a worker carries it out."""
        assert isinstance(attrs, PurgeCreate)
        return await do_request_purge(
            ctx,
            entity_type=attrs.entity_type,
            entity_id=attrs.entity_id,
            archive=attrs.archive,
            reference_id=attrs.reference_id,
            request_id=attrs.request_id,
        )

    async def present(self, ctx: Context, rows: Sequence[SystemPurge]) -> list[dict[str, Any]]:
        return await present(ctx, rows)


async def present(ctx: Context, purges: Sequence[SystemPurge]) -> list[dict[str, Any]]:
    """The receipts; a purge whose job failed for good (or was cancelled) shows as failed."""
    job_ids = [p.job_id for p in purges if p.job_id is not None and p.state != "completed"]
    jobs = await jobs_by_id(ctx.session, ctx.organization_id, job_ids)
    out: list[dict[str, Any]] = []
    for purge in purges:
        state, error = purge.state, purge.error
        job = jobs.get(purge.job_id) if purge.job_id else None
        if state != "completed" and job is not None and job.state in FAILED_JOB_STATES:
            state = "failed"
            error = error or job.last_error or f"the purge job was {job.state}"
        out.append(
            {
                "entity_type": purge.entity_type,
                "entity_id": purge.entity_id,
                "archive": purge.archive,
                "reference_id": purge.reference_id,
                "request_id": purge.client_request_id,
                "state": state,
                "steps": list(purge.steps or []),
                "steps_done": list(purge.steps_done or []),
                "counts": {k: int(v) for k, v in (purge.counts or {}).items()},
                "archive_location": purge.archive_location,
                "error": error,
                "requested_by": purge.requested_by,
                "created_time": purge.created_at,
                "started_time": purge.started_at,
                "completed_time": purge.finished_at,
            }
        )
    return render_rows(PurgeRead, out)
