"""All SQL of auto-responders (tenant-scoped): which responders a post wakes, who replies, and
the per-channel quiet period. Group membership is read through
:mod:`courier.domains.messaging.repository`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import in_organization, scoped
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroupLeader
from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber
from courier.models.messaging_responder import MessagingResponder, MessagingResponderReply


async def enabled_responders(
    session: AsyncSession, organization_id: uuid.UUID, group_ids: Iterable[uuid.UUID | None]
) -> list[MessagingResponder]:
    """The enabled responders of the groups ``group_ids``."""
    stmt = scoped(
        select(MessagingResponder).where(
            MessagingResponder.individual_group_id.in_(list(group_ids)),
            MessagingResponder.enabled.is_(True),
        ),
        MessagingResponder,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def participants(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID | None]
) -> set[uuid.UUID]:
    """Which of ``ids`` are individuals whose account type is ``participant``."""
    stmt = scoped(select(Individual.id), Individual, organization_id).where(
        Individual.id.in_(list(ids)), Individual.account_type == "participant"
    )
    return set((await session.execute(stmt)).scalars())


async def _one(session: AsyncSession, model: Any, organization_id: uuid.UUID, ident: Any) -> Any:
    stmt = scoped(select(model).where(model.id == ident), model, organization_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def responder(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> MessagingResponder | None:
    found: MessagingResponder | None = await _one(
        session, MessagingResponder, organization_id, ident
    )
    return found


async def message(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> MessagingMessage | None:
    found: MessagingMessage | None = await _one(session, MessagingMessage, organization_id, ident)
    return found


async def channel(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> MessagingChannel | None:
    found: MessagingChannel | None = await _one(session, MessagingChannel, organization_id, ident)
    return found


async def reply_author(
    session: AsyncSession, responder: MessagingResponder, channel_id: uuid.UUID
) -> uuid.UUID | None:
    """The configured individual, else the group's first leader (oldest individual first);
    either must subscribe to the channel."""
    org = responder.organization_id
    subscribed = scoped(select(MessagingSubscriber.individual_id), MessagingSubscriber, org).where(
        MessagingSubscriber.channel_id == channel_id
    )
    if responder.individual_id is not None:
        stmt = subscribed.where(MessagingSubscriber.individual_id == responder.individual_id)
        found: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
        return found
    leaders = (
        scoped(select(IndividualGroupLeader.individual_id), IndividualGroupLeader, org)
        .join(Individual, Individual.id == IndividualGroupLeader.individual_id)
        .where(
            in_organization(Individual, org),
            IndividualGroupLeader.group_id == responder.individual_group_id,
            IndividualGroupLeader.individual_id.in_(subscribed),
        )
        .order_by(Individual.created_at, Individual.id)
        .limit(1)
    )
    leader: uuid.UUID | None = (await session.execute(leaders)).scalar_one_or_none()
    return leader


async def claim_quiet_period(
    session: AsyncSession,
    responder: MessagingResponder,
    channel_id: uuid.UUID,
    trigger: MessagingMessage,
    quiet_seconds: float,
) -> bool:
    """Take this channel's reply slot: true unless the responder replied here within the
    quiet period before ``trigger``. One atomic upsert: of two concurrent claims (PostgreSQL
    makes the second wait for the first's row and re-check), exactly one wins."""
    assert trigger.posted_time is not None
    at = trigger.posted_time
    table: Any = MessagingResponderReply.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(
        organization_id=responder.organization_id,
        responder_id=responder.id,
        channel_id=channel_id,
        last_reply_at=at,
        trigger_message_id=trigger.id,
        reply_message_id=None,
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=["responder_id", "channel_id"],
        set_={
            "last_reply_at": stmt.excluded.last_reply_at,
            "trigger_message_id": stmt.excluded.trigger_message_id,
            "reply_message_id": None,
        },
        where=table.c.last_reply_at <= at - timedelta(seconds=quiet_seconds),
    ).returning(table.c.responder_id)
    # Through the connection: a Core upsert that names its organization (not a query the
    # tenancy guard reasons about), like the jobs outbox's.
    connection = await session.connection()
    return (await connection.execute(upsert)).first() is not None


async def reply_slot(
    session: AsyncSession,
    organization_id: uuid.UUID,
    responder_id: uuid.UUID,
    channel_id: uuid.UUID,
) -> MessagingResponderReply:
    """The responder's reply record in a channel (the one :func:`claim_quiet_period` took)."""
    stmt = scoped(
        select(MessagingResponderReply).where(
            MessagingResponderReply.responder_id == responder_id,
            MessagingResponderReply.channel_id == channel_id,
        ),
        MessagingResponderReply,
        organization_id,
    )
    found: MessagingResponderReply = (await session.execute(stmt)).scalar_one()
    return found
