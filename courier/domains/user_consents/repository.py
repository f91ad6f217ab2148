"""All SQL of consents (tenant-scoped): the consent, its user and its history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.user import User
from courier.models.user_consent import UserConsent, UserConsentEvent


async def user(session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID) -> User | None:
    stmt = scoped(select(User).where(User.id == ident), User, organization_id)
    found: User | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def consent(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> UserConsent | None:
    stmt = scoped(select(UserConsent).where(UserConsent.id == ident), UserConsent, organization_id)
    found: UserConsent | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def history(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[UserConsentEvent]:
    """The events of the consents ``ids``, oldest first."""
    stmt = scoped(
        select(UserConsentEvent).where(UserConsentEvent.consent_id.in_(ids)),
        UserConsentEvent,
        organization_id,
    ).order_by(UserConsentEvent.created_at, UserConsentEvent.id)
    return list((await session.execute(stmt)).scalars())
