"""All SQL of app credentials (tenant-scoped): the live set of an app for a platform."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.push_device import AppCredential


async def other_live(
    session: AsyncSession,
    organization_id: uuid.UUID,
    platform: str,
    app_name: str,
    ident: uuid.UUID,
) -> bool:
    """Whether the app has live ``platform`` credentials other than ``ident``."""
    stmt = scoped(
        select(AppCredential.id).where(
            AppCredential.type == platform,
            AppCredential.app_name == app_name,
            AppCredential.archived.is_(False),
            AppCredential.id != ident,
        ),
        AppCredential,
        organization_id,
    )
    return (await session.execute(stmt)).first() is not None


async def live(
    session: AsyncSession, organization_id: uuid.UUID, app_name: str, platform: str
) -> AppCredential | None:
    """The app's live (not archived) credentials for ``platform``, if any."""
    stmt = scoped(
        select(AppCredential).where(
            AppCredential.app_name == app_name,
            AppCredential.type == platform,
            AppCredential.archived.is_(False),
        ),
        AppCredential,
        organization_id,
    )
    found: AppCredential | None = (await session.execute(stmt)).scalar_one_or_none()
    return found
