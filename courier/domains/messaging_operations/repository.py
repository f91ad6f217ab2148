"""All SQL of messaging operations (tenant-scoped): the operation, the groups and channels it
names, and the channel rows a move locks. Group members and subscriber removal are read and
written through :mod:`courier.domains.messaging.repository`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.db import is_postgres
from courier.core.tenancy import scoped
from courier.domains.messaging.repository import chunks
from courier.models.individual_group import IndividualGroup
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from courier.models.messaging_operation import MessagingOperation


async def group_exists(session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID) -> bool:
    stmt = scoped(select(IndividualGroup.id), IndividualGroup, organization_id).where(
        IndividualGroup.id == ident
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def channel_groups(
    session: AsyncSession, organization_id: uuid.UUID, channel_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """The group of each of the organization's channels among ``channel_ids``, by channel."""
    groups: dict[uuid.UUID, uuid.UUID | None] = {}
    columns = cast("Select[Any]", select(MessagingChannel.id, MessagingChannel.individual_group_id))
    stmt = scoped(columns, MessagingChannel, organization_id)
    for chunk in chunks(channel_ids):
        for ident, group_id in (
            await session.execute(stmt.where(MessagingChannel.id.in_(chunk)))
        ).all():
            groups[ident] = group_id
    return groups


async def group_channels(
    session: AsyncSession, organization_id: uuid.UUID, group_id: uuid.UUID
) -> list[uuid.UUID]:
    """Every channel of the group now, in id order."""
    stmt = (
        scoped(select(MessagingChannel.id), MessagingChannel, organization_id)
        .where(MessagingChannel.individual_group_id == group_id)
        .order_by(MessagingChannel.id)
    )
    return list((await session.execute(stmt)).scalars())


async def lock_channel(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID
) -> MessagingChannel | None:
    """The channel, fresh from the database (PostgreSQL: locked first, as every channel writer
    does)."""
    stmt = scoped(select(MessagingChannel), MessagingChannel, organization_id).where(
        MessagingChannel.id == channel_id
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    found: MessagingChannel | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return found


async def lock_subscriber_ids(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID
) -> list[uuid.UUID]:
    """The channel's subscribers; on PostgreSQL their rows locked in individual-id order, after
    the channel row: the lock order of every messaging writer, so nothing deadlocks."""
    stmt = scoped(
        select(MessagingSubscriber.individual_id), MessagingSubscriber, organization_id
    ).where(MessagingSubscriber.channel_id == channel_id)
    if is_postgres(session):
        stmt = stmt.order_by(MessagingSubscriber.individual_id).with_for_update()
    return list((await session.execute(stmt)).scalars())


async def load_operation(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> MessagingOperation | None:
    stmt = scoped(select(MessagingOperation), MessagingOperation, organization_id).where(
        MessagingOperation.id == ident
    )
    found: MessagingOperation | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return found
