"""All SQL of purge requests (tenant-scoped)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.system_purge import SystemPurge


async def purge(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> SystemPurge | None:
    stmt = scoped(select(SystemPurge), SystemPurge, organization_id).where(SystemPurge.id == ident)
    found: SystemPurge | None = (await session.execute(stmt)).scalar_one_or_none()
    return found
