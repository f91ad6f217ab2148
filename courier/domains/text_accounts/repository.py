"""All SQL of text accounts, numbers, logs and user maps (tenant-scoped)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped, unscoped
from courier.models.text_account import (
    TextAccount,
    TextAccountNumber,
    TextNumberLog,
    TextReceiveLog,
    TextUserNumberMap,
)
from courier.models.user import User


async def account_of(session: AsyncSession, org: uuid.UUID) -> TextAccount | None:
    stmt = scoped(select(TextAccount), TextAccount, org)
    found: TextAccount | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def account(session: AsyncSession, org: uuid.UUID, ident: uuid.UUID) -> TextAccount | None:
    stmt = scoped(select(TextAccount).where(TextAccount.id == ident), TextAccount, org)
    found: TextAccount | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def number(
    session: AsyncSession, org: uuid.UUID, ident: uuid.UUID
) -> TextAccountNumber | None:
    stmt = scoped(
        select(TextAccountNumber).where(TextAccountNumber.id == ident), TextAccountNumber, org
    )
    found: TextAccountNumber | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def active_numbers(
    session: AsyncSession, org: uuid.UUID, account_id: uuid.UUID
) -> Sequence[TextAccountNumber]:
    stmt = scoped(
        select(TextAccountNumber).where(
            TextAccountNumber.account_id == account_id, TextAccountNumber.status == "active"
        ),
        TextAccountNumber,
        org,
    ).order_by(TextAccountNumber.created_at, TextAccountNumber.id)
    return list((await session.execute(stmt)).scalars().all())


async def number_by_phone(session: AsyncSession, phone: str) -> TextAccountNumber | None:
    """The number ``phone`` belongs to, in whichever organization (inbound texts)."""
    stmt = unscoped(
        select(TextAccountNumber).where(TextAccountNumber.phone_number == phone),
        "an inbound text names only the number it was sent to",
    )
    found: TextAccountNumber | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def phone_taken(session: AsyncSession, phone: str) -> bool:
    return await number_by_phone(session, phone) is not None


async def user_exists(session: AsyncSession, org: uuid.UUID, user_id: uuid.UUID) -> bool:
    stmt = scoped(select(User.id).where(User.id == user_id), User, org)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def user_map(
    session: AsyncSession, org: uuid.UUID, user_id: uuid.UUID
) -> TextUserNumberMap | None:
    stmt = scoped(
        select(TextUserNumberMap).where(TextUserNumberMap.user_id == user_id),
        TextUserNumberMap,
        org,
    )
    found: TextUserNumberMap | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def clear_logs(session: AsyncSession, org: uuid.UUID, number_id: uuid.UUID) -> None:
    for model in (TextNumberLog, TextReceiveLog):
        await session.execute(scoped(delete(model).where(model.number_id == number_id), model, org))


def add_log(session: AsyncSession, num: TextAccountNumber, line: str) -> None:
    """One line of the number's activity log, if its ``logging`` is on (no patient text)."""
    if num.logging:
        session.add(TextNumberLog(organization_id=num.organization_id, number_id=num.id, log=line))
