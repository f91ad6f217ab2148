"""All SQL of number lookups (tenant-scoped)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.text_number_info import TextNumberInfo


async def by_number(
    session: AsyncSession, organization_id: uuid.UUID, number: str
) -> TextNumberInfo | None:
    """The organization's cached lookup of ``number``, if any."""
    stmt = scoped(
        select(TextNumberInfo).where(TextNumberInfo.number == number),
        TextNumberInfo,
        organization_id,
    )
    found: TextNumberInfo | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def by_id(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> TextNumberInfo | None:
    stmt = scoped(
        select(TextNumberInfo).where(TextNumberInfo.id == ident), TextNumberInfo, organization_id
    )
    found: TextNumberInfo | None = (await session.execute(stmt)).scalar_one_or_none()
    return found
