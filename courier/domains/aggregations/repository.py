"""The SQL of aggregation requests (tenant-scoped); the columns' own queries are in
:mod:`courier.domains.aggregations.columns`."""

from __future__ import annotations

import uuid

from sqlalchemy import select
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
