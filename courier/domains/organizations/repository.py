"""Organizations are the tenants themselves: the master key sees every one, a key its own.

Also the one place that reads an organization's own row for other domains (does it exist, the
row, its timezone)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import PrincipalKind
from courier.core.tenancy import unscoped
from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.organization import Organization


class OrganizationRepository(Repository[Organization]):
    def __init__(self) -> None:
        super().__init__(Organization, what="organization", tenant=False)

    def readable(self, ctx: Context) -> Select[Any]:
        stmt = super().readable(ctx)
        if ctx.principal.kind is PrincipalKind.MASTER:
            return stmt
        return stmt.where(Organization.id == ctx.principal.organization_id)


async def organization_exists(session: AsyncSession, organization_id: uuid.UUID) -> bool:
    """Whether ``organization_id`` names an organization (the master key may name any)."""
    stmt = unscoped(
        select(Organization.id).where(Organization.id == organization_id),
        "the master key may name any organization",
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def organization(session: AsyncSession, organization_id: uuid.UUID) -> Organization:
    """The organization row ``organization_id`` (a job's or request's own tenant)."""
    stmt = unscoped(
        select(Organization).where(Organization.id == organization_id),
        "an organization row is the tenant itself",
    )
    found: Organization = (await session.execute(stmt)).scalar_one()
    return found


async def organization_timezone(session: AsyncSession, organization_id: uuid.UUID) -> str | None:
    """The organization's own ``timezone`` (None when it has none)."""
    stmt = unscoped(
        select(Organization.timezone).where(Organization.id == organization_id),
        "an organization row is the tenant itself",
    )
    timezone: str | None = (await session.execute(stmt)).scalar_one_or_none()
    return timezone
