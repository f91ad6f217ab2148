"""All SQL of organization preferences (tenant-scoped): only the preferences an organization
set are stored."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.direct import Direct
from courier.core.tenancy import scoped, unscoped
from courier.models.org_preference import OrgPreference
from courier.models.organization import Organization

_ORG: Any = bindparam("org")


@functools.cache
def _stored_values(count: int) -> Direct:
    """The stored values of ``count`` preferences (parameters ``name0`` …): read by every
    rendering that shows one (a channel page among them), so built once."""
    names = [bindparam(f"name{n}", type_=String()) for n in range(count)]
    return Direct(
        scoped(
            select(OrgPreference.name, OrgPreference.value).where(OrgPreference.name.in_(names)),
            OrgPreference,
            _ORG,
        )
    )


async def stored_values(
    session: AsyncSession, organization_id: uuid.UUID, names: Sequence[str]
) -> dict[str, Any]:
    """The stored values of the preferences ``names`` the organization set, by name (one
    statement)."""
    if session.new or session.dirty or session.deleted:
        await session.flush()  # as the session's own execute would (autoflush)
    params: dict[str, Any] = {f"name{n}": name for n, name in enumerate(names)}
    params["org"] = organization_id
    found = await _stored_values(len(names)).rows(await session.connection(), params)
    return {name: value for name, value in found}


async def stored_value(session: AsyncSession, organization_id: uuid.UUID, name: str) -> Any:
    """The stored value of preference ``name``, or None when the organization never set it."""
    return (await stored_values(session, organization_id, [name])).get(name)


async def stored(
    session: AsyncSession, organization_id: uuid.UUID, name: str | None = None
) -> dict[str, OrgPreference]:
    """The preferences the organization set (or only ``name``), by name."""
    stmt = scoped(select(OrgPreference), OrgPreference, organization_id)
    if name is not None:
        stmt = stmt.where(OrgPreference.name == name)
    return {row.name: row for row in (await session.execute(stmt)).scalars()}


def for_update(organization_id: uuid.UUID, name: str) -> Select[Any]:
    """The stored preference ``name``, locked until the transaction ends."""
    return scoped(
        select(OrgPreference).where(OrgPreference.name == name), OrgPreference, organization_id
    ).with_for_update()


async def locked(
    session: AsyncSession, organization_id: uuid.UUID, name: str
) -> OrgPreference | None:
    found: OrgPreference | None = (
        await session.execute(for_update(organization_id, name))
    ).scalar_one_or_none()
    return found


async def locked_existing(
    session: AsyncSession, organization_id: uuid.UUID, name: str
) -> OrgPreference:
    """The stored preference ``name`` (e.g. the one a concurrent first setting just wrote)."""
    found: OrgPreference = (await session.execute(for_update(organization_id, name))).scalar_one()
    return found


async def organization_created_at(session: AsyncSession, organization_id: uuid.UUID) -> datetime:
    """When the organization was founded: the set-time of the preferences it never set."""
    stmt = unscoped(
        select(Organization.created_at).where(Organization.id == organization_id),
        "organizations are the tenants themselves",
    )
    created: datetime = (await session.execute(stmt)).scalar_one()
    return created
