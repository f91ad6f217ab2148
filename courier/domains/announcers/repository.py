"""The SQL of announcers: the rules, the events they wait for, their recipients, and the
at-most-once record of each (announcer, event)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Select, Text, and_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import in_organization, scoped
from courier.core.time import utcnow
from courier.jsonapi.repository import Repository
from courier.models.announcer import Announcer, AnnouncerFiring
from courier.models.event import Event
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroupLeader, IndividualGroupMember
from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber
from courier.models.template import Template
from courier.models.user import User

announcers_repository: Repository[Announcer] = Repository(Announcer, what="announcer")

CHUNK = 500  # ids per IN list


def _select(*columns: Any) -> Select[Any]:
    """A select of columns, typed as the tenancy helper takes it."""
    return cast("Select[Any]", select(*columns))


def _chunks(ids: Sequence[uuid.UUID]) -> Iterable[Sequence[uuid.UUID]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


async def active_announcers(
    session: AsyncSession, organization_id: uuid.UUID, names: Iterable[str]
) -> list[Announcer]:
    stmt = scoped(
        select(Announcer).where(Announcer.active.is_(True), Announcer.event.in_(list(names))),
        Announcer,
        organization_id,
    )
    return list((await session.execute(stmt.order_by(Announcer.id))).scalars())


def listened_for(organization_id: uuid.UUID) -> Select[Any]:
    """The events the organization's active announcers listen for (one row per announcer,
    column ``value``): a part of the publishing transaction's interest query, which marks the
    whole (hence a condition, not :func:`scoped`)."""
    return select(sql_cast(Announcer.event, Text).label("value")).where(
        Announcer.active.is_(True), in_organization(Announcer, organization_id)
    )


async def all_announcers(session: AsyncSession, organization_id: uuid.UUID) -> list[Announcer]:
    stmt = scoped(select(Announcer), Announcer, organization_id).order_by(Announcer.id)
    return list((await session.execute(stmt)).scalars())


async def events_between(
    session: AsyncSession,
    organization_id: uuid.UUID,
    from_seq: int,
    to_seq: int,
    types: Iterable[str],
) -> list[Event]:
    stmt = scoped(
        select(Event).where(
            Event.seq >= from_seq, Event.seq <= to_seq, Event.type.in_(sorted(types))
        ),
        Event,
        organization_id,
    )
    return list((await session.execute(stmt.order_by(Event.seq))).scalars())


async def templates_by_id(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Template]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    stmt = scoped(select(Template).where(Template.id.in_(wanted)), Template, organization_id)
    return {row.id: row for row in (await session.execute(stmt)).scalars()}


async def find_template(
    session: AsyncSession, organization_id: uuid.UUID, ref: str
) -> Template | None:
    """The organization's template whose id, or else name, is ``ref``."""
    stmt = scoped(select(Template), Template, organization_id)
    try:
        ident: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        ident = None
    if ident is not None:
        found: Template | None = (
            await session.execute(stmt.where(Template.id == ident))
        ).scalar_one_or_none()
        if found is not None:
            return found
    named: Template | None = (
        await session.execute(stmt.where(Template.name == ref))
    ).scalar_one_or_none()
    return named


async def existing(
    session: AsyncSession, organization_id: uuid.UUID, model: Any, ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of ``ids`` name rows of ``model`` in the organization."""
    found: set[uuid.UUID] = set()
    for chunk in _chunks(list(dict.fromkeys(ids))):
        stmt = scoped(select(model.id).where(model.id.in_(chunk)), model, organization_id)
        found.update((await session.execute(stmt)).scalars())
    return found


async def existing_individuals(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    return await existing(session, organization_id, Individual, ids)


async def primary_individuals(
    session: AsyncSession, organization_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each existing user's primary individual (None: it has none)."""
    found: dict[uuid.UUID, uuid.UUID | None] = {}
    for chunk in _chunks(list(dict.fromkeys(user_ids))):
        stmt = scoped(
            _select(User.id, User.primary_individual_id).where(User.id.in_(chunk)),
            User,
            organization_id,
        )
        found.update({row.id: row.primary_individual_id for row in await session.execute(stmt)})
    return found


async def group_individuals(
    session: AsyncSession,
    organization_id: uuid.UUID,
    group_ids: Sequence[uuid.UUID],
    *,
    leaders: bool,
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The members (or leaders) of each group, in a stable order."""
    model: Any = IndividualGroupLeader if leaders else IndividualGroupMember
    by_group: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for chunk in _chunks(list(dict.fromkeys(group_ids))):
        stmt = (
            scoped(select(model.group_id, model.individual_id), model, organization_id)
            .where(model.group_id.in_(chunk))
            .order_by(model.group_id, model.individual_id)
        )
        for group_id, individual_id in (await session.execute(stmt)).all():
            by_group[group_id].append(individual_id)
    return by_group


async def channel_subscribers(
    session: AsyncSession, organization_id: uuid.UUID, channel_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    by_channel: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for chunk in _chunks(list(dict.fromkeys(channel_ids))):
        stmt = (
            scoped(
                _select(MessagingSubscriber.channel_id, MessagingSubscriber.individual_id),
                MessagingSubscriber,
                organization_id,
            )
            .where(MessagingSubscriber.channel_id.in_(chunk))
            .order_by(MessagingSubscriber.channel_id, MessagingSubscriber.individual_id)
        )
        for channel_id, individual_id in (await session.execute(stmt)).all():
            by_channel[channel_id].append(individual_id)
    return by_channel


async def existing_channels(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    return await existing(session, organization_id, MessagingChannel, ids)


async def claim_firing(
    session: AsyncSession,
    organization_id: uuid.UUID,
    announcer_id: uuid.UUID,
    event: Event,
    recipients: int,
) -> bool:
    """Record that ``announcer_id`` acts on ``event``: False when it already has.

    INSERT ... ON CONFLICT DO NOTHING: a concurrent evaluation of the same pair (two jobs whose
    ranges overlap) waits for the other transaction and then finds the row instead of failing.
    The row commits with the notifications the caller writes next, or not at all.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table: Any = AnnouncerFiring.__table__
    stmt = (
        insert(table)
        .values(
            organization_id=organization_id,
            announcer_id=announcer_id,
            event_id=event.id,
            event_type=event.type,
            fired_at=utcnow(),
            recipients=recipients,
            notified=0,
            not_sent=0,
        )
        .on_conflict_do_nothing(index_elements=["announcer_id", "event_id"])
    )
    # Through the connection: a Core insert names its organization explicitly.
    connection = await session.connection()
    result: Any = await connection.execute(stmt)
    return bool(result.rowcount)


async def record_outcome(
    session: AsyncSession,
    organization_id: uuid.UUID,
    announcer_id: uuid.UUID,
    event_id: uuid.UUID,
    *,
    notified: int,
    not_sent: int,
) -> None:
    await session.execute(
        scoped(
            update(AnnouncerFiring)
            .where(
                AnnouncerFiring.announcer_id == announcer_id,
                AnnouncerFiring.event_id == event_id,
            )
            .values(notified=notified, not_sent=not_sent),
            AnnouncerFiring,
            organization_id,
        )
    )


async def firings_of(
    session: AsyncSession, organization_id: uuid.UUID, announcer_id: uuid.UUID
) -> list[AnnouncerFiring]:
    stmt = scoped(
        select(AnnouncerFiring).where(AnnouncerFiring.announcer_id == announcer_id),
        AnnouncerFiring,
        organization_id,
    ).order_by(AnnouncerFiring.fired_at, AnnouncerFiring.event_id)
    return list((await session.execute(stmt)).scalars())


# --- what the triggers read of their events (triggers.py) ------------------------------------


async def posted_messages_with_groups(
    session: AsyncSession, organization_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """id, individual_id, channel_id and the channel's individual_group_id of those of
    ``message_ids`` that are posted (not drafts) and not removed."""
    stmt = scoped(
        _select(
            MessagingMessage.id,
            MessagingMessage.individual_id,
            MessagingMessage.channel_id,
            MessagingChannel.individual_group_id,
        ).join(
            MessagingChannel,
            and_(
                MessagingChannel.id == MessagingMessage.channel_id,
                in_organization(MessagingChannel, organization_id),
            ),
        ),
        MessagingMessage,
        organization_id,
    ).where(
        MessagingMessage.id.in_(message_ids),
        MessagingMessage.draft.is_(False),
        MessagingMessage.removed.is_(False),
    )
    return {row.id: row for row in (await session.execute(stmt)).all()}
