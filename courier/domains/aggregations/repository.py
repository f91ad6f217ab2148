"""The SQL of aggregation requests (tenant-scoped); the columns' own queries are in
:mod:`courier.domains.aggregations.columns`."""

from __future__ import annotations

import uuid

from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.aggregation_request import AggregationRequest


async def request(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> AggregationRequest | None:
    stmt = scoped(
        select(AggregationRequest).where(AggregationRequest.id == ident),
        AggregationRequest,
        organization_id,
    )
    found: AggregationRequest | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def requests_naming(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[AggregationRequest]:
    """The requests whose entries mention ``individual_id`` (a text match on the JSON: the
    caller keeps those that really name them)."""
    stmt = scoped(
        select(AggregationRequest).where(
            cast(AggregationRequest.entries, String).like(f"%{individual_id}%")
        ),
        AggregationRequest,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars().all())
