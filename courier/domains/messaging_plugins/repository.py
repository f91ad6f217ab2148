"""The SQL of messaging plugins (tenant-scoped): the plugin, and what a plugin may show of a
channel. Channels, subscribers and individuals are read through
:mod:`courier.domains.messaging.repository`."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.individual_group import IndividualGroup, IndividualGroupMember
from courier.models.messaging import MessagingSubscriber
from courier.models.messaging_plugin import MessagingPlugin


async def plugin(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> MessagingPlugin | None:
    """The organization's plugin ``ident``, whoever asks."""
    stmt = scoped(select(MessagingPlugin), MessagingPlugin, organization_id).where(
        MessagingPlugin.id == ident
    )
    found: MessagingPlugin | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def subscriber_count(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID
) -> int:
    stmt = scoped(
        select(func.count()).select_from(MessagingSubscriber), MessagingSubscriber, organization_id
    ).where(MessagingSubscriber.channel_id == channel_id)
    return int((await session.execute(stmt)).scalar_one())


async def group_with_size(
    session: AsyncSession, organization_id: uuid.UUID, group_id: uuid.UUID
) -> tuple[IndividualGroup, int] | None:
    """The group and how many members it has, or None when it is gone."""
    stmt = scoped(select(IndividualGroup), IndividualGroup, organization_id).where(
        IndividualGroup.id == group_id
    )
    group: IndividualGroup | None = (await session.execute(stmt)).scalar_one_or_none()
    if group is None:
        return None
    members = scoped(
        select(func.count()).select_from(IndividualGroupMember),
        IndividualGroupMember,
        organization_id,
    ).where(IndividualGroupMember.group_id == group.id)
    return group, int((await session.execute(members)).scalar_one())
