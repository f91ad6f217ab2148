"""Aggregation requests: validated and accepted at once (201), computed by a job."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from courier.core.errors import ApiError, ErrorItem
from courier.core.tenancy import scoped
from courier.domains.aggregations.schemas import COLUMNS, AggregationCreate, AggregationRead
from courier.domains.people.repository import individuals_repository
from courier.jobs import enqueue
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.aggregation_request import AggregationRequest
from courier.models.job import Job, JobState

AGGREGATION_JOB = "aggregation-requests.run"
_JOB_STATES = {
    JobState.QUEUED.value: "queued",
    JobState.RUNNING.value: "running",
    JobState.FAILED.value: "failed",
    JobState.CANCELLED.value: "failed",
}


class AggregationService(CrudService[AggregationRequest]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> AggregationRequest:
        assert isinstance(attrs, AggregationCreate)
        unknown = [
            ErrorItem(
                f"entries[{index}].column {entry.column!r} is not one of: " + ", ".join(COLUMNS),
                "invalid-column",
                pointer=f"/data/attributes/entries/{index}/column",
            )
            for index, entry in enumerate(attrs.entries)
            if entry.column not in COLUMNS
        ]
        if unknown:
            raise ApiError(400, unknown, {}, True)
        await self._require_individuals(ctx, [e.individual_id for e in attrs.entries])
        entries: list[dict[str, Any]] = []
        seen: set[tuple[str, uuid.UUID]] = set()
        for entry in attrs.entries:
            if (entry.column, entry.individual_id) not in seen:
                seen.add((entry.column, entry.individual_id))
                entries.append({"column": entry.column, "individual-id": str(entry.individual_id)})
        request = AggregationRequest(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            entries=entries,
            state="queued",
            created_by=ctx.principal.actor_id,
        )
        ctx.session.add(request)
        await ctx.session.flush()
        job = await enqueue(
            ctx.session,
            AGGREGATION_JOB,
            {"aggregation_request_id": request.id},
            organization_id=ctx.organization_id,
        )
        request.job_id = job.id
        return request

    async def _require_individuals(self, ctx: Context, ids: list[uuid.UUID]) -> None:
        found = await individuals_repository.existing_ids(ctx, ids)
        missing = [
            ErrorItem(
                f"entries[{index}].individual-id names no individual of this organization",
                "not-found",
                pointer=f"/data/attributes/entries/{index}/individual-id",
            )
            for index, ident in enumerate(ids)
            if ident not in found
        ]
        if missing:
            raise ApiError(404, missing, {}, True)

    async def present(
        self, ctx: Context, rows: Sequence[AggregationRequest]
    ) -> list[dict[str, Any]]:
        job_ids = [r.job_id for r in rows if r.job_id is not None and r.state != "completed"]
        jobs: dict[uuid.UUID, Job] = {}
        if job_ids:
            stmt = scoped(select(Job).where(Job.id.in_(job_ids)), Job, ctx.organization_id)
            jobs = {job.id: job for job in (await ctx.session.execute(stmt)).scalars()}
        out = []
        for row in rows:
            state, error = row.state, row.error
            job = jobs.get(row.job_id) if row.job_id else None
            if state != "completed" and job is not None:
                state = _JOB_STATES.get(job.state, state)
                if state == "failed":
                    error = error or job.last_error or f"the aggregation job was {job.state}"
            out.append(
                AggregationRead.model_validate(
                    {
                        "entries": row.entries,
                        "state": state,
                        "results": row.results if state == "completed" else None,
                        "error": error,
                        "created_time": row.created_at,
                        "completed_time": row.finished_at,
                    }
                ).model_dump(mode="json", by_alias=True)
            )
        return out
