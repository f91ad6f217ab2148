"""Aggregation requests: validated and accepted at once (201), computed by a job."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from courier.core.errors import ApiError, ErrorItem
from courier.domains.aggregations.schemas import COLUMNS, AggregationCreate, AggregationRead
from courier.domains.people.repository import require_individuals
from courier.jobs import enqueue, jobs_by_id
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.aggregation_request import AggregationRequest
from courier.models.job import JobState

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
        await require_individuals(
            ctx,
            [entry.individual_id for entry in attrs.entries],
            lambda index: f"/data/attributes/entries/{index}/individual-id",
        )
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

    async def present(
        self, ctx: Context, rows: Sequence[AggregationRequest]
    ) -> list[dict[str, Any]]:
        job_ids = [r.job_id for r in rows if r.job_id is not None and r.state != "completed"]
        jobs = await jobs_by_id(ctx.session, ctx.organization_id, job_ids)
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
