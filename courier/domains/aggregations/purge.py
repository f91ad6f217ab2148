"""Purging an individual from aggregation requests: their entries and results are taken out;
a request left with no entries is deleted."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.aggregations import repository
from courier.models.aggregation_request import AggregationRequest
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="aggregation-requests")
async def purge_aggregation_requests(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    ident = str(individual_id)
    requests = await repository.requests_naming(session, organization_id, individual_id)
    deleted = redacted = 0
    for request in requests:
        if archive is not None:  # only what was this person's
            archive.write(
                AggregationRequest.__tablename__,
                {
                    "id": request.id,
                    "entries": [e for e in request.entries if e.get("individual-id") == ident],
                    "results": [
                        r for r in request.results or [] if r.get("individual-id") == ident
                    ],
                },
            )
        entries = [e for e in request.entries if e.get("individual-id") != ident]
        if not entries:
            await session.delete(request)
            deleted += 1
            continue
        request.entries = entries
        if request.results is not None:
            request.results = [r for r in request.results if r.get("individual-id") != ident]
        redacted += 1
    await session.flush()
    return {"aggregation_requests": deleted, "aggregation_requests.redacted": redacted}
