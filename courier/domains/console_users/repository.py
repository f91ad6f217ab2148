"""Console users: the organization's rows (API), and sign-in lookups by user name (console)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import in_organization, scoped, unscoped
from courier.core.time import utcnow
from courier.jsonapi.repository import Repository
from courier.models.console_session import ConsoleSession
from courier.models.console_user import ConsoleUser
from courier.models.individual import Individual

PATIENT = "participant"


class ConsoleUserRepository(Repository[ConsoleUser]):
    def __init__(self) -> None:
        super().__init__(ConsoleUser, what="console user")


def username_key(username: str) -> str:
    return username.strip().casefold()


async def by_username(session: AsyncSession, username: str) -> ConsoleUser | None:
    """The login with this user name, in any organization (the sign-in form names none)."""
    stmt = select(ConsoleUser).where(ConsoleUser.username_key == username_key(username))
    found: ConsoleUser | None = (
        await session.execute(unscoped(stmt, "console sign-in by user name"))
    ).scalar_one_or_none()
    return found


async def username_taken(session: AsyncSession, username: str) -> bool:
    stmt = select(ConsoleUser.id).where(ConsoleUser.username_key == username_key(username))
    taken = await session.execute(unscoped(stmt, "user names are unique across organizations"))
    return taken.first() is not None


async def individual(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> Individual | None:
    """The organization's individual with this id."""
    stmt = scoped(select(Individual), Individual, organization_id).where(
        Individual.id == individual_id
    )
    found: Individual | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def end_sessions(session: AsyncSession, user: ConsoleUser) -> None:
    """Revoke the login's open console sessions (revoked, or its password changed)."""
    stmt: Any = (
        update(ConsoleSession)
        .where(ConsoleSession.console_user_id == user.id)
        .where(in_organization(ConsoleSession, user.organization_id))
        .where(ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await session.execute(stmt)
