"""The SQL of aggregation requests (tenant-scoped), and the aggregate columns' queries (one per
column and chunk of individuals; :mod:`courier.domains.aggregations.columns` names and runs
them)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, String, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import in_organization, scoped
from courier.core.time import format_timestamp
from courier.models.aggregation_request import AggregationRequest
from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber

Values = dict[uuid.UUID, Any]


async def request(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> AggregationRequest | None:
    stmt = scoped(
        select(AggregationRequest).where(AggregationRequest.id == ident),
        AggregationRequest,
        organization_id,
    )
    found: AggregationRequest | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def requests_naming(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[AggregationRequest]:
    """The requests whose entries mention ``individual_id`` (a text match on the JSON: the
    caller keeps those that really name them)."""
    stmt = scoped(
        select(AggregationRequest).where(
            cast(AggregationRequest.entries, String).like(f"%{individual_id}%")
        ),
        AggregationRequest,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars().all())


# --- the aggregate columns -------------------------------------------------------------------


def _scoped(stmt: Any, model: Any, org: uuid.UUID) -> Select[Any]:
    """``scoped`` for a select of several columns (its type names one)."""
    return scoped(stmt, model, org)


def _posted() -> Any:
    return (
        MessagingMessage.draft.is_(False)
        & MessagingMessage.removed.is_(False)
        & MessagingMessage.seq.is_not(None)
    )


async def message_count(session: AsyncSession, org: uuid.UUID, ids: Sequence[uuid.UUID]) -> Values:
    stmt = _scoped(
        select(MessagingMessage.individual_id, func.count())
        .where(MessagingMessage.individual_id.in_(ids), _posted())
        .group_by(MessagingMessage.individual_id),
        MessagingMessage,
        org,
    )
    return _counts(ids, (await session.execute(stmt)).all())


def _counts(ids: Sequence[uuid.UUID], rows: Sequence[Any]) -> Values:
    found: Values = {ident: 0 for ident in ids}
    for ident, count in rows:
        found[ident] = int(count or 0)
    return found


def _active_subscriptions(org: uuid.UUID, ids: Sequence[uuid.UUID]) -> Any:
    return (
        MessagingSubscriber.individual_id.in_(ids)
        & (MessagingChannel.id == MessagingSubscriber.channel_id)
        & in_organization(MessagingChannel, org)
        & MessagingChannel.archived.is_(False)
    )


async def unread_count(session: AsyncSession, org: uuid.UUID, ids: Sequence[uuid.UUID]) -> Values:
    behind = MessagingChannel.last_seq - MessagingSubscriber.ack_seq
    stmt = _scoped(
        select(
            MessagingSubscriber.individual_id,
            func.sum(case((behind > 0, behind), else_=0)),
        )
        .where(_active_subscriptions(org, ids))
        .group_by(MessagingSubscriber.individual_id),
        MessagingSubscriber,
        org,
    )
    return _counts(ids, (await session.execute(stmt)).all())


async def channel_count(session: AsyncSession, org: uuid.UUID, ids: Sequence[uuid.UUID]) -> Values:
    stmt = _scoped(
        select(MessagingSubscriber.individual_id, func.count())
        .where(_active_subscriptions(org, ids))
        .group_by(MessagingSubscriber.individual_id),
        MessagingSubscriber,
        org,
    )
    return _counts(ids, (await session.execute(stmt)).all())


async def last_contact_time(
    session: AsyncSession, org: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Values:
    own = _scoped(
        select(MessagingMessage.individual_id, func.max(MessagingMessage.posted_time))
        .where(MessagingMessage.individual_id.in_(ids), _posted())
        .group_by(MessagingMessage.individual_id),
        MessagingMessage,
        org,
    )
    in_channels = _scoped(
        select(MessagingSubscriber.individual_id, func.max(MessagingMessage.posted_time))
        .where(
            MessagingSubscriber.individual_id.in_(ids),
            MessagingMessage.channel_id == MessagingSubscriber.channel_id,
            in_organization(MessagingMessage, org),
            _posted(),
        )
        .group_by(MessagingSubscriber.individual_id),
        MessagingSubscriber,
        org,
    )
    newest: dict[uuid.UUID, datetime] = {}
    for stmt in (own, in_channels):
        for ident, raw in (await session.execute(stmt)).all():
            value = _aware(raw)
            if (
                ident is not None
                and value is not None
                and (ident not in newest or value > newest[ident])
            ):
                newest[ident] = value
    return {ident: format_timestamp(newest[ident]) if ident in newest else None for ident in ids}


def _aware(raw: Any) -> datetime | None:
    """An aggregate's time: SQLite returns it as naive text, PostgreSQL as an aware datetime."""
    if raw is None:
        return None
    value = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
