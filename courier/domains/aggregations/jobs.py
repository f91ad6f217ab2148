"""The aggregation job: compute every entry's value, store the results, publish the change.

It only reads, then writes its results with "done": running it again computes them again.
"""

from __future__ import annotations

import uuid
from typing import Any

from courier.core.time import utcnow
from courier.domains.aggregations import repository as repo
from courier.domains.aggregations.columns import compute
from courier.domains.aggregations.service import AGGREGATION_JOB
from courier.jobs import JobContext, PermanentJobError, job_handler
from courier.jsonapi.changes import SYSTEM, change, write_changes


@job_handler(AGGREGATION_JOB)
async def run_aggregation(job: JobContext) -> dict[str, Any] | None:
    ident = uuid.UUID(str(job.payload["aggregation_request_id"]))
    request = await repo.request(job.session, job.organization_id, ident)
    if request is None:
        raise PermanentJobError("the aggregation request no longer exists")
    if request.state == "completed":
        return {"results": len(request.results or [])}
    wanted: dict[str, list[uuid.UUID]] = {}
    for entry in request.entries:
        wanted.setdefault(entry["column"], []).append(uuid.UUID(entry["individual-id"]))
    values = await compute(job.session, job.organization_id, wanted)
    request.results = [
        {
            "individual-id": entry["individual-id"],
            "column": entry["column"],
            "value": values[(entry["column"], uuid.UUID(entry["individual-id"]))],
        }
        for entry in request.entries
    ]
    request.state = "completed"
    request.finished_at = utcnow()
    completed = change(
        "aggregation-requests",
        request.id,
        "completed",
        data={"state": "completed"},
        audited=False,  # results only, computed from what the audit log already holds
    )
    write_changes(
        job.session,
        [completed],
        actor=SYSTEM,
        request_id=None,
        organization_id=job.organization_id,
    )
    return {"results": len(request.results)}
