"""All SQL of secure messaging, and who may see what, written once.

Every query here is tenant-scoped (``scoped``); services, renderers, jobs and the domains that
build on messaging (attachments, bulk messages, responders, the inbox) ask this module rather
than writing their own. Visibility rules:

- an individual (an individual token, or a key acting through ``individual-id``) sees the
  channels it subscribes to, their posted messages, and of drafts only its own;
- a key naming no individual sees every channel and every posted message of its organization
  (drafts belong to their authors alone).
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict, namedtuple
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from courier import events
from courier.core.auth import Principal
from courier.core.bulk import insert_of, prefixed
from courier.core.db import is_postgres
from courier.core.direct import Direct, Together, run_together
from courier.core.errors import ApiError, ErrorItem, not_found
from courier.core.tenancy import in_organization, scoped
from courier.core.time import now_ms
from courier.models.individual import Individual
from courier.models.individual_group import (
    IndividualGroup,
    IndividualGroupLeader,
    IndividualGroupMember,
)
from courier.models.job import Job
from courier.models.messaging import (
    CHANNEL_ACTIVITY,
    MESSAGE_ORDER,
    MessagingBookmark,
    MessagingChannel,
    MessagingMessage,
    MessagingReaction,
    MessagingSubscriber,
)
from courier.models.text import OutboundText
from courier.models.text_account import TextAccountNumber, UnknownNumberOpening
from courier.models.user import User
from courier.models.user_consent import UserConsent

CHUNK = 500  # ids per IN (...): under every database's bound-parameter limit


def chunks(ids: Iterable[uuid.UUID]) -> list[list[uuid.UUID]]:
    unique = list(dict.fromkeys(ids))
    return [unique[i : i + CHUNK] for i in range(0, len(unique), CHUNK)]


def among(session: AsyncSession, column: Any, ids: Sequence[uuid.UUID]) -> ColumnElement[bool]:
    """``column IN (ids)``; on PostgreSQL ``column = ANY(:ids)``: one array parameter, so a
    page's 100 ids are not rendered and bound one by one on every call."""
    if is_postgres(session):
        condition: ColumnElement[bool] = column == any_(
            bindparam(None, list(ids), type_=ARRAY(Uuid()))
        )
        return condition
    in_list: ColumnElement[bool] = column.in_(ids)
    return in_list


# --- visibility ------------------------------------------------------------------------------


def subscribed_channels(organization_id: uuid.UUID, individual_id: uuid.UUID) -> Select[Any]:
    """The ids of the channels ``individual_id`` subscribes to (a subquery)."""
    return scoped(
        select(MessagingSubscriber.channel_id), MessagingSubscriber, organization_id
    ).where(MessagingSubscriber.individual_id == individual_id)


def visible_channels(organization_id: uuid.UUID, viewer: uuid.UUID | None) -> Select[Any]:
    """The organization's channels; with a viewer, only those the viewer subscribes to."""
    stmt = scoped(select(MessagingChannel), MessagingChannel, organization_id)
    if viewer is not None:
        stmt = stmt.where(MessagingChannel.id.in_(subscribed_channels(organization_id, viewer)))
    return stmt


def visible_channel_rows(organization_id: uuid.UUID, viewer: uuid.UUID | None) -> Select[Any]:
    """:func:`visible_channels` as Core rows of the channel's columns (the list's page: no ORM
    entities built)."""
    stmt = scoped(select(*MessagingChannel.__table__.c), MessagingChannel, organization_id)
    if viewer is not None:
        stmt = stmt.where(MessagingChannel.id.in_(subscribed_channels(organization_id, viewer)))
    return stmt


def visible_messages(organization_id: uuid.UUID, viewer: uuid.UUID | None) -> Select[Any]:
    """Messages of the viewer's channels (drafts: only its own); without a viewer, every
    posted message of the organization."""
    stmt = scoped(select(MessagingMessage), MessagingMessage, organization_id)
    return narrow_messages(stmt, organization_id, viewer)


def visible_message_rows(organization_id: uuid.UUID, viewer: uuid.UUID | None) -> Select[Any]:
    """:func:`visible_messages` as Core rows (the list's page: no ORM entities built)."""
    stmt = scoped(select(*_MESSAGE_COLUMNS), MessagingMessage, organization_id)
    return narrow_messages(stmt, organization_id, viewer)


def narrow_messages(
    stmt: Select[Any], organization_id: uuid.UUID, viewer: uuid.UUID | None
) -> Select[Any]:
    if viewer is None:
        return stmt.where(MessagingMessage.draft == false())
    return stmt.where(
        MessagingMessage.channel_id.in_(subscribed_channels(organization_id, viewer)),
        or_(MessagingMessage.draft == false(), MessagingMessage.individual_id == viewer),
    )


def _viewer_of(principal: Principal) -> tuple[uuid.UUID, uuid.UUID]:
    assert principal.individual_id is not None
    return principal.require_organization(), principal.individual_id


def channel_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees the channels it subscribes to."""
    org, viewer = _viewer_of(principal)
    return stmt.where(MessagingChannel.id.in_(subscribed_channels(org, viewer)))


def message_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees the messages of its channels, and of drafts only its own."""
    org, viewer = _viewer_of(principal)
    return narrow_messages(stmt, org, viewer)


# --- people and groups -----------------------------------------------------------------------


async def find_individual(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> Individual | None:
    stmt = scoped(select(Individual), Individual, organization_id).where(Individual.id == ident)
    found: Individual | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def existing_individuals(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    stmt = scoped(select(Individual.id), Individual, organization_id)
    for chunk in chunks(ids):
        found.update((await session.execute(stmt.where(Individual.id.in_(chunk)))).scalars())
    return found


async def user_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> uuid.UUID | None:
    """The login whose primary individual this is (the oldest, if several)."""
    stmt = (
        scoped(select(User.id), User, organization_id)
        .where(User.primary_individual_id == individual_id)
        .order_by(User.created_at, User.id)
        .limit(1)
    )
    user_id: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return user_id


async def require_group(
    session: AsyncSession, organization_id: uuid.UUID, group_id: uuid.UUID, pointer: str
) -> IndividualGroup:
    stmt = scoped(select(IndividualGroup), IndividualGroup, organization_id).where(
        IndividualGroup.id == group_id
    )
    group: IndividualGroup | None = (await session.execute(stmt)).scalar_one_or_none()
    if group is None:
        raise ApiError(
            404,
            [
                ErrorItem(
                    f"individual-group-id names no individual group of this organization: "
                    f"{group_id}",
                    "not-found",
                    pointer=pointer,
                )
            ],
        )
    return group


async def group_members(
    session: AsyncSession, organization_id: uuid.UUID, group_id: uuid.UUID
) -> tuple[list[uuid.UUID], set[uuid.UUID]]:
    """(members in id order, leaders) of a group."""
    members = await session.execute(
        scoped(select(IndividualGroupMember.individual_id), IndividualGroupMember, organization_id)
        .where(IndividualGroupMember.group_id == group_id)
        .order_by(IndividualGroupMember.individual_id)
    )
    leaders = await session.execute(
        scoped(
            select(IndividualGroupLeader.individual_id), IndividualGroupLeader, organization_id
        ).where(IndividualGroupLeader.group_id == group_id)
    )
    return list(members.scalars().all()), set(leaders.scalars().all())


async def is_group_member(
    session: AsyncSession, organization_id: uuid.UUID, group_id: uuid.UUID, ident: uuid.UUID
) -> bool:
    stmt = scoped(
        select(IndividualGroupMember.individual_id), IndividualGroupMember, organization_id
    ).where(
        IndividualGroupMember.group_id == group_id, IndividualGroupMember.individual_id == ident
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


# --- channels and subscribers ----------------------------------------------------------------


async def load_channel(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID, pointer: str
) -> MessagingChannel:
    """A channel of the organization named in a body, else 404 pointing at it."""
    stmt = scoped(select(MessagingChannel), MessagingChannel, organization_id).where(
        MessagingChannel.id == channel_id
    )
    channel: MessagingChannel | None = (await session.execute(stmt)).scalar_one_or_none()
    if channel is None:
        raise no_such_channel(channel_id, pointer)
    return channel


async def channel_visible_to(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID, viewer: uuid.UUID
) -> bool:
    stmt = visible_channels(organization_id, viewer).where(MessagingChannel.id == channel_id)
    return (await session.execute(stmt.with_only_columns(MessagingChannel.id))).first() is not None


async def subscriber_ids(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID
) -> list[uuid.UUID]:
    stmt = scoped(
        select(MessagingSubscriber.individual_id), MessagingSubscriber, organization_id
    ).where(MessagingSubscriber.channel_id == channel_id)
    return list((await session.execute(stmt)).scalars().all())


async def find_subscriber(
    session: AsyncSession,
    organization_id: uuid.UUID,
    channel_id: uuid.UUID,
    individual_id: uuid.UUID,
) -> MessagingSubscriber | None:
    stmt = scoped(select(MessagingSubscriber), MessagingSubscriber, organization_id).where(
        MessagingSubscriber.channel_id == channel_id,
        MessagingSubscriber.individual_id == individual_id,
    )
    sub: MessagingSubscriber | None = (await session.execute(stmt)).scalar_one_or_none()
    return sub


async def existing_subscribers(
    session: AsyncSession,
    organization_id: uuid.UUID,
    channel_id: uuid.UUID,
    individual_ids: Sequence[uuid.UUID],
) -> set[uuid.UUID]:
    existing: set[uuid.UUID] = set()
    for chunk in chunks(individual_ids):
        stmt = scoped(
            select(MessagingSubscriber.individual_id), MessagingSubscriber, organization_id
        ).where(
            MessagingSubscriber.channel_id == channel_id,
            MessagingSubscriber.individual_id.in_(chunk),
        )
        existing.update((await session.execute(stmt)).scalars().all())
    return existing


async def shift_subscriber_counts(
    session: AsyncSession, organization_id: uuid.UUID, shifts: Mapping[uuid.UUID, int]
) -> None:
    """Add ``shifts[channel]`` (memberships inserted, or negative: deleted) to each channel's
    ``subscriber_count``, in SQL (``subscriber_count + n``: exact beside concurrent writers),
    in the caller's transaction: one UPDATE per distinct shift and chunk of channels."""
    by_shift: dict[int, list[uuid.UUID]] = defaultdict(list)
    for channel_id, shift in shifts.items():
        if shift:
            by_shift[shift].append(channel_id)
    for shift, channel_ids in sorted(by_shift.items()):
        for chunk in chunks(sorted(channel_ids)):
            await session.execute(
                scoped(update(MessagingChannel), MessagingChannel, organization_id)
                .where(MessagingChannel.id.in_(chunk))
                .values(subscriber_count=MessagingChannel.subscriber_count + shift)
                .execution_options(synchronize_session=False)
            )


async def delete_subscribers(
    session: AsyncSession,
    organization_id: uuid.UUID,
    channel_id: uuid.UUID,
    individual_ids: Sequence[uuid.UUID],
) -> int:
    """Delete these memberships of the channel and take those actually deleted off its
    ``subscriber_count``; returns how many."""
    result: Any = await session.execute(
        scoped(delete(MessagingSubscriber), MessagingSubscriber, organization_id).where(
            MessagingSubscriber.channel_id == channel_id,
            MessagingSubscriber.individual_id.in_(individual_ids),
        )
    )
    deleted = int(result.rowcount or 0)
    await shift_subscriber_counts(session, organization_id, {channel_id: -deleted})
    return deleted


async def count_memberships(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> int:
    """How many channels ``individual_id`` subscribes to (an index range)."""
    params = {"org": organization_id, "viewer": individual_id}
    found = await _CHANNELS_TOTAL[True].rows(await session.connection(), params)
    return int(found[0][0])


async def provider_subscribers(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID
) -> list[uuid.UUID]:
    """The channel's subscribers whose account type is ``provider``, in id order."""
    stmt = (
        scoped(select(MessagingSubscriber.individual_id), MessagingSubscriber, organization_id)
        .join(Individual, Individual.id == MessagingSubscriber.individual_id)
        .where(
            MessagingSubscriber.channel_id == channel_id,
            Individual.account_type == "provider",
            in_organization(Individual, organization_id),
        )
        .order_by(MessagingSubscriber.individual_id)
    )
    return list((await session.execute(stmt)).scalars().all())


async def lock_subscribers(
    session: AsyncSession,
    organization_id: uuid.UUID,
    channel_id: uuid.UUID,
    individual_ids: Iterable[uuid.UUID],
) -> None:
    """PostgreSQL: lock these subscriber rows in id order (the lock order of MESSAGING.md)."""
    if not is_postgres(session):
        return
    await session.execute(
        scoped(select(MessagingSubscriber.individual_id), MessagingSubscriber, organization_id)
        .where(
            MessagingSubscriber.channel_id == channel_id,
            MessagingSubscriber.individual_id.in_(sorted(set(individual_ids))),
        )
        .order_by(MessagingSubscriber.individual_id)
        .with_for_update()
    )


async def move_horizons(
    session: AsyncSession,
    organization_id: uuid.UUID,
    message: MessagingMessage,
    individual_ids: Sequence[uuid.UUID],
    *,
    allow_past: bool,
    user_time: Any,
    now: Any,
) -> int:
    """Move these subscribers' read horizon to ``message`` with one conditional UPDATE: never
    backwards unless ``allow_past``. Returns how many moved."""
    seq = message.seq
    assert seq is not None
    condition = (
        MessagingSubscriber.ack_seq != seq if allow_past else MessagingSubscriber.ack_seq < seq
    )
    result = await session.execute(
        scoped(update(MessagingSubscriber), MessagingSubscriber, organization_id)
        .where(
            MessagingSubscriber.channel_id == message.channel_id,
            MessagingSubscriber.individual_id.in_(individual_ids),
            condition,
        )
        .values(
            ack_seq=seq,
            ack_message_id=message.id,
            ack_time=now,
            ack_user_time=user_time,
            # the channel's providers' messages up to this one (posted: never None)
            ack_provider_count=message.provider_count_at or 0,
        )
        .execution_options(synchronize_session="evaluate")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- messages --------------------------------------------------------------------------------


async def find_message(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> MessagingMessage | None:
    """Any message of the organization, drafts included: the caller checks who acts."""
    stmt = scoped(select(MessagingMessage), MessagingMessage, organization_id)
    found: MessagingMessage | None = (
        await session.execute(stmt.where(MessagingMessage.id == ident))
    ).scalar_one_or_none()
    return found


async def require_message(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID, what: str
) -> MessagingMessage:
    found = await find_message(session, organization_id, ident)
    if found is None:
        raise not_found(what)
    return found


async def touch_channel_if_last(
    session: AsyncSession, organization_id: uuid.UUID, message: MessagingMessage
) -> None:
    """A channel shows its last message: when that message changes, so does the channel."""
    await session.execute(
        scoped(update(MessagingChannel), MessagingChannel, organization_id)
        .where(
            MessagingChannel.id == message.channel_id,
            MessagingChannel.last_message_id == message.id,
        )
        .values(last_modified_at=now_ms())
        .execution_options(synchronize_session="evaluate")
    )


def horizon_of(organization_id: uuid.UUID, viewer: uuid.UUID) -> Any:
    """The viewer's horizon in each listed message's channel (a correlated subquery)."""
    return (
        scoped(select(MessagingSubscriber.ack_seq), MessagingSubscriber, organization_id)
        .where(
            MessagingSubscriber.channel_id == MessagingMessage.channel_id,
            MessagingSubscriber.individual_id == viewer,
        )
        .scalar_subquery()
    )


# --- reactions -------------------------------------------------------------------------------


async def find_reaction(
    session: AsyncSession,
    organization_id: uuid.UUID,
    message_id: uuid.UUID,
    individual_id: uuid.UUID,
    reaction_type: str,
) -> MessagingReaction | None:
    stmt = scoped(select(MessagingReaction), MessagingReaction, organization_id).where(
        MessagingReaction.message_id == message_id,
        MessagingReaction.individual_id == individual_id,
        MessagingReaction.reaction_type == reaction_type,
    )
    found: MessagingReaction | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


# --- a page at a time (the renderers) --------------------------------------------------------
#
# Each takes the ids of a whole page and answers with a fixed number of queries (one per 500
# ids), never one per row.


# The organization of a look-up built once: a parameter, bound per call.
_ORG: Any = bindparam("org")
_VIEWER: Any = bindparam("viewer")


# A page's times as PostgreSQL formats them, exactly as ``format_timestamp`` would (UTC,
# milliseconds truncated, "Z"; years below 1000 zero-padded): text decodes for a fraction of
# what a datetime's decoding and formatting cost in Python.
_TIME_TEXT: Any = literal_column("""'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'""")
_UTC: Any = literal_column("'UTC'")


def _time_text(column: Any, postgres: bool) -> Any:
    if not postgres:
        return column
    return func.to_char(func.timezone(_UTC, column), _TIME_TEXT, type_=String).label(column.key)


def _among_ids(column: Any, postgres: bool) -> ColumnElement[bool]:
    """``column`` among the parameter ``ids``: ``= ANY(:ids)`` (one array) on PostgreSQL, an
    expanding ``IN`` elsewhere."""
    if postgres:
        return cast("ColumnElement[bool]", column == any_(bindparam("ids", type_=ARRAY(Uuid()))))
    return cast("ColumnElement[bool]", column.in_(bindparam("ids", expanding=True)))


# For the look-ups other domains build once over a page's message ids (attachments).
among_ids = _among_ids


def _columns(*columns: Any) -> Select[Any]:
    return cast("Select[Any]", select(*columns))


def _by_dialect(build: Any) -> dict[bool, Direct]:
    """A look-up built once for PostgreSQL (run on the driver's connection) and once for the
    others, keyed by whether the session's database is PostgreSQL."""
    return {postgres: Direct(build(postgres)) for postgres in (True, False)}


async def _rows_among(
    session: AsyncSession,
    statement: Direct,
    organization_id: uuid.UUID,
    ids: Iterable[uuid.UUID],
    **params: Any,
) -> list[Any]:
    """The rows of a look-up built once (parameters ``org``, ``ids`` and ``params``) over
    ``ids``, one statement per :data:`CHUNK` of them."""
    connection = await session.connection()
    found: list[Any] = []
    for chunk in chunks(ids):
        found += await statement.rows(connection, {"org": organization_id, "ids": chunk} | params)
    return found


# The people of a page: each individual's columns a rendering shows, and those of the user whose
# primary individual it is (None when it has none). Core rows, not entities: a channel page
# names about 350 of them.
_INDIVIDUAL_COLUMNS = (
    Individual.id,
    Individual.organization_id,
    Individual.first_name,
    Individual.last_name,
    Individual.preferred_name,
    Individual.birth_date,
    Individual.account_type,
    Individual.email,
    Individual.phone,
    Individual.locale,
)
_USER_COLUMNS = (
    User.id,
    User.email,
    User.phone,
    User.locale,
    User.email_verified,
    User.phone_verified,
    User.phone_unsubscribed,
    User.auto_sign_up,
    User.communication_preferences,
)
IndividualRow = namedtuple(  # type: ignore[misc]
    "IndividualRow", [c.key for c in _INDIVIDUAL_COLUMNS]
)
UserRow = namedtuple("UserRow", [c.key for c in _USER_COLUMNS])  # type: ignore[misc]
_PEOPLE = {
    postgres: Direct(
        scoped(
            _columns(
                *_INDIVIDUAL_COLUMNS,
                *(column.label(f"user_{column.key}") for column in _USER_COLUMNS),
            )
            .outerjoin(
                User,
                and_(User.primary_individual_id == Individual.id, in_organization(User, _ORG)),
            )
            .where(_among_ids(Individual.id, postgres)),
            Individual,
            _ORG,
        ).order_by(Individual.id, User.created_at, User.id)
    )
    for postgres in (True, False)
}
_SPLIT = len(_INDIVIDUAL_COLUMNS)


async def people_with_users(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[Any, Any]]:
    """Individuals (``IndividualRow``) with their users (``UserRow``, or None), by
    ``users.primary_individual_id``; two users naming the same primary individual: the oldest
    one speaks for it. One statement per 500 ids."""
    people: dict[uuid.UUID, tuple[Any, Any]] = {}
    for row in await _rows_among(session, _PEOPLE[is_postgres(session)], organization_id, ids):
        if row[0] in people:
            continue
        user = None if row[_SPLIT] is None else UserRow._make(row[_SPLIT:])
        people[row[0]] = (IndividualRow._make(row[:_SPLIT]), user)
    return people


def _subscriber_rows(postgres: bool) -> Any:
    sub = MessagingSubscriber
    return scoped(
        _columns(
            sub.channel_id,
            sub.individual_id,
            sub.admin,
            sub.pinned,
            sub.notify,
            # The viewer's alone: nobody else's are shown (nor decoded).
            case((sub.individual_id == _VIEWER, sub.preferences), else_=null()).label(
                "preferences"
            ),
            sub.ack_seq,
        ).where(_among_ids(sub.channel_id, postgres)),
        sub,
        _ORG,
    ).order_by(sub.channel_id, sub.subscribed_at, sub.individual_id)


# (Their people are a statement of their own: joined here, PostgreSQL's generic plan for the
# statement, which cannot tell how many channels the array names, hashes every individual of
# the organization.)
_SUBSCRIBER_ROWS = {postgres: Direct(_subscriber_rows(postgres)) for postgres in (True, False)}


async def subscriber_rows(
    session: AsyncSession,
    organization_id: uuid.UUID,
    channel_ids: Sequence[uuid.UUID],
    viewer: uuid.UUID | None,
) -> dict[uuid.UUID, list[Any]]:
    """Each channel's subscriptions in the order they were made, as Core rows (``channel_id``,
    ``individual_id``, ``admin``, ``pinned``, ``notify``, ``preferences``, ``ack_seq``); the
    ``preferences`` of ``viewer``'s alone (None in the others)."""
    by_channel: dict[uuid.UUID, list[Any]] = defaultdict(list)
    statement = _SUBSCRIBER_ROWS[is_postgres(session)]
    rows = await _rows_among(session, statement, organization_id, channel_ids, viewer=viewer)
    channel: Any = None
    listed: list[Any] = []
    for row in rows:
        if row.channel_id != channel:  # rows come by channel: one look-up per channel
            channel = row.channel_id
            listed = by_channel[channel]
        listed.append(row)
    return by_channel


async def channel_subscribers(
    session: AsyncSession,
    organization_id: uuid.UUID,
    channel_ids: Sequence[uuid.UUID],
    individual_id: uuid.UUID | None = None,
) -> dict[uuid.UUID, list[MessagingSubscriber]]:
    """Each channel's subscriptions in the order they were made (only ``individual_id``'s,
    when given)."""
    by_channel: dict[uuid.UUID, list[MessagingSubscriber]] = defaultdict(list)
    for chunk in chunks(channel_ids):
        stmt = (
            select(MessagingSubscriber)
            .where(MessagingSubscriber.channel_id.in_(chunk))
            .order_by(
                MessagingSubscriber.channel_id,
                MessagingSubscriber.subscribed_at,
                MessagingSubscriber.individual_id,
            )
        )
        if individual_id is not None:
            stmt = stmt.where(MessagingSubscriber.individual_id == individual_id)
        rows = await session.execute(scoped(stmt, MessagingSubscriber, organization_id))
        for sub in rows.scalars():
            by_channel[sub.channel_id].append(sub)
    return by_channel


def _groups_with_people(postgres: bool) -> Any:
    """Groups with their members and leaders in one statement: (group, its name and
    organization, an individual or None, whether a leader)."""
    people = union_all(
        *(
            scoped(
                _columns(
                    model.group_id,
                    model.individual_id,
                    literal(leader).label("leader"),
                ).where(_among_ids(model.group_id, postgres)),
                model,
                _ORG,
            )
            for model, leader in ((IndividualGroupMember, False), (IndividualGroupLeader, True))
        )
    ).subquery("group_people")
    return scoped(
        _columns(
            IndividualGroup.id,
            IndividualGroup.name,
            IndividualGroup.organization_id,
            people.c.individual_id,
            people.c.leader,
        )
        .outerjoin(people, people.c.group_id == IndividualGroup.id)
        .where(_among_ids(IndividualGroup.id, postgres)),
        IndividualGroup,
        _ORG,
    ).order_by(IndividualGroup.id, people.c.individual_id)


_GROUPS_WITH_PEOPLE = _by_dialect(_groups_with_people)
GroupRow = namedtuple("GroupRow", ["id", "name", "organization_id"])


async def groups_with_people(
    session: AsyncSession, organization_id: uuid.UUID, group_ids: Sequence[uuid.UUID]
) -> tuple[
    dict[uuid.UUID, Any],
    dict[uuid.UUID, list[uuid.UUID]],
    dict[uuid.UUID, list[uuid.UUID]],
]:
    """(groups: rows of ``id``, ``name``, ``organization_id``; their members; their
    leaders), members and leaders in id order. One statement, none without groups."""
    groups: dict[uuid.UUID, Any] = {}
    members: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    leaders: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if not group_ids:
        return groups, members, leaders
    connection = await session.connection()
    params = {"org": organization_id, "ids": list(group_ids)}
    statement = _GROUPS_WITH_PEOPLE[is_postgres(session)]
    for group_id, name, organization, individual_id, leader in await statement.rows(
        connection, params
    ):
        if group_id not in groups:
            groups[group_id] = GroupRow(group_id, name, organization)
        if individual_id is not None:
            (leaders if leader else members)[group_id].append(individual_id)
    return groups, members, leaders


_MESSAGE_SUMMARIES = _by_dialect(
    lambda postgres: scoped(
        _columns(
            MessagingMessage.id,
            MessagingMessage.message,
            _time_text(MessagingMessage.posted_time, postgres),
            MessagingMessage.removed,
        ).where(_among_ids(MessagingMessage.id, postgres)),
        MessagingMessage,
        _ORG,
    )
)


async def message_summaries(
    session: AsyncSession, organization_id: uuid.UUID, message_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """id, message, posted_time and removed of each message (a channel's last message); on
    PostgreSQL ``posted_time`` comes formatted (the text ``format_timestamp`` makes of it)."""
    statement = _MESSAGE_SUMMARIES[is_postgres(session)]
    rows = await _rows_among(session, statement, organization_id, message_ids)
    return {row.id: row for row in rows}


def _latest_bookmarks(postgres: bool, organization_owned: bool) -> Any:
    owner: Any = (
        MessagingBookmark.individual_id.is_(None)
        if organization_owned
        else MessagingBookmark.individual_id == bindparam("owner", type_=Uuid())
    )
    return scoped(
        _columns(MessagingBookmark.channel_id, MessagingBookmark.id, MessagingBookmark.message_id)
        .where(owner, _among_ids(MessagingBookmark.channel_id, postgres))
        .order_by(MessagingBookmark.created_at.desc(), MessagingBookmark.id.desc()),
        MessagingBookmark,
        _ORG,
    )


# (postgres, the organization's own)
_LATEST_BOOKMARKS = {
    (postgres, mine): Direct(_latest_bookmarks(postgres, mine))
    for postgres in (True, False)
    for mine in (True, False)
}


async def latest_bookmarks(
    session: AsyncSession,
    organization_id: uuid.UUID,
    owner: uuid.UUID | None,
    channel_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, Any]:
    """The newest bookmark (``channel_id``, ``id``, ``message_id``) of ``owner`` (an
    individual, or None: the organization's own) in each channel."""
    bookmarks: dict[uuid.UUID, Any] = {}
    statement = _LATEST_BOOKMARKS[is_postgres(session), owner is None]
    for bookmark in await _rows_among(
        session, statement, organization_id, channel_ids, owner=owner
    ):
        bookmarks.setdefault(bookmark.channel_id, bookmark)
    return bookmarks


_REACTIONS = _by_dialect(
    lambda postgres: scoped(
        _columns(
            MessagingReaction.message_id,
            MessagingReaction.individual_id,
            MessagingReaction.reaction_type,
        ).where(_among_ids(MessagingReaction.message_id, postgres)),
        MessagingReaction,
        _ORG,
    ).order_by(MessagingReaction.created_at, MessagingReaction.id)
)


async def message_reactions(
    session: AsyncSession, organization_id: uuid.UUID, message_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Any]]:
    """Each message's reactions (``individual_id``, ``reaction_type``), oldest first."""
    reactions: dict[uuid.UUID, list[Any]] = defaultdict(list)
    statement = _REACTIONS[is_postgres(session)]
    for row in await _rows_among(session, statement, organization_id, message_ids):
        reactions[row.message_id].append(row)
    return reactions


def _horizons(postgres: bool, one: bool) -> Any:
    stmt = scoped(
        _columns(
            MessagingSubscriber.channel_id,
            MessagingSubscriber.individual_id,
            MessagingSubscriber.ack_seq,
            MessagingSubscriber.ack_time,
            MessagingSubscriber.ack_user_time,
        ).where(_among_ids(MessagingSubscriber.channel_id, postgres)),
        MessagingSubscriber,
        _ORG,
    ).order_by(
        MessagingSubscriber.channel_id,
        MessagingSubscriber.subscribed_at,
        MessagingSubscriber.individual_id,
    )
    if one:
        stmt = stmt.where(MessagingSubscriber.individual_id == bindparam("individual"))
    return stmt


# (postgres, one individual's)
_HORIZONS = {
    (postgres, one): Direct(_horizons(postgres, one))
    for postgres in (True, False)
    for one in (True, False)
}


async def horizons(
    session: AsyncSession,
    organization_id: uuid.UUID,
    channel_ids: Sequence[uuid.UUID],
    individual_id: uuid.UUID | None = None,
) -> dict[uuid.UUID, list[Any]]:
    """Each channel's subscribers' read horizons (``individual_id``, ``ack_seq``,
    ``ack_time``, ``ack_user_time``: Core rows), in the order they subscribed (only
    ``individual_id``'s, when given)."""
    by_channel: dict[uuid.UUID, list[Any]] = defaultdict(list)
    statement = _HORIZONS[is_postgres(session), individual_id is not None]
    for row in await _rows_among(
        session, statement, organization_id, channel_ids, individual=individual_id
    ):
        by_channel[row.channel_id].append(row)
    return by_channel


_NAMES = _by_dialect(
    lambda postgres: scoped(
        _columns(
            Individual.id,
            Individual.first_name,
            Individual.last_name,
            Individual.preferred_name,
            Individual.account_type,
            User.username,
        )
        .outerjoin(
            User,
            and_(
                User.primary_individual_id == Individual.id,
                in_organization(User, _ORG),
            ),
        )
        .where(_among_ids(Individual.id, postgres)),
        Individual,
        _ORG,
    ).order_by(Individual.id, User.created_at, User.id)
)


async def names_with_logins(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """What a message shows of people (authors, reactors, readers): ``first_name``,
    ``last_name``, ``preferred_name``, ``account_type`` and the ``username`` of the login whose
    primary individual they are (the oldest), as Core rows by id."""
    people: dict[uuid.UUID, Any] = {}
    statement = _NAMES[is_postgres(session)]
    connection = await session.connection()
    for chunk in chunks(ids):
        for row in await statement.rows(connection, {"org": organization_id, "ids": chunk}):
            people.setdefault(row.id, row)
    return people


# --- a channel's list of messages ---------------------------------------------------------


def _channel_total(viewer: bool) -> Select[Any]:
    """A channel's messages by its seq counter (:func:`count_channel_messages`); with
    ``viewer``, plus the viewer's drafts, and only if the viewer subscribes."""
    counted = scoped(_columns(MessagingChannel.last_seq), MessagingChannel, _ORG).where(
        MessagingChannel.id == bindparam("channel")
    )
    if not viewer:
        return counted
    drafts = (
        select(func.count())
        .select_from(MessagingMessage)
        .where(
            in_organization(MessagingMessage, _ORG),
            MessagingMessage.channel_id == bindparam("channel"),
            MessagingMessage.seq.is_(None),
            MessagingMessage.draft.is_(True),
            MessagingMessage.individual_id == bindparam("viewer"),
        )
        .scalar_subquery()
    )
    return (
        counted.with_only_columns(MessagingChannel.last_seq + drafts)
        .join(MessagingSubscriber, MessagingSubscriber.channel_id == MessagingChannel.id)
        .where(
            in_organization(MessagingSubscriber, _ORG),
            MessagingSubscriber.individual_id == bindparam("viewer"),
        )
    )


# (with a viewer)
_CHANNEL_TOTAL = {viewer: Direct(_channel_total(viewer)) for viewer in (True, False)}


async def count_channel_messages(
    session: AsyncSession,
    organization_id: uuid.UUID,
    channel_id: uuid.UUID,
    viewer: uuid.UUID | None,
) -> int | None:
    """A channel's messages from its seq counter: its posted messages are numbered
    1..last_seq with no gaps (removed ones keep their place; only drafts are ever deleted),
    plus the viewer's own drafts. None when there is no such channel, or the viewer does not
    subscribe to it."""
    params = {"org": organization_id, "channel": channel_id, "viewer": viewer}
    found = await _CHANNEL_TOTAL[viewer is not None].rows(await session.connection(), params)
    return int(found[0][0]) if found else None


@functools.cache
def _message_page(postgres: bool, viewer: bool, descending: bool, phrases: bool) -> Direct:
    """One page of a channel's messages as the list shows them (:func:`message_page`)."""
    m = MessagingMessage
    columns = [
        m.id,
        m.channel_id,
        m.seq,
        m.individual_id,
        m.user_id,
        m.message,
        m.draft,
        m.removed,
        m.source,
        m.destination,
        m.sentiment,
        m.phrases if phrases else null().label("phrases"),
        m.analyzed,
        _time_text(m.posted_time, postgres),
        _time_text(m.last_modified_at, postgres),
        # Evaluated once for the statement (they name no column of the page's rows): the
        # list's total, and the viewer's read horizon in the channel.
        _channel_total(viewer).scalar_subquery().label("page_total"),
    ]
    if viewer:
        columns.append(
            scoped(_columns(MessagingSubscriber.ack_seq), MessagingSubscriber, _ORG)
            .where(
                MessagingSubscriber.channel_id == bindparam("channel"),
                MessagingSubscriber.individual_id == _VIEWER,
            )
            .scalar_subquery()
            .label("viewer_horizon")
        )
    stmt = scoped(_columns(*columns), m, _ORG).where(m.channel_id == bindparam("channel"))
    stmt = narrow_messages(stmt, _ORG, _VIEWER if viewer else None)
    order = (MESSAGE_ORDER.desc(), m.id.desc()) if descending else (MESSAGE_ORDER.asc(), m.id.asc())
    stmt = (
        stmt.order_by(*order)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return Direct(stmt)


@dataclass(frozen=True)
class MessagePage:
    """A page of a channel's messages (:func:`message_page`) and the list's total (None:
    no such channel, or the viewer does not subscribe to it)."""

    rows: Sequence[Any]
    total: int | None


async def message_page(
    session: AsyncSession,
    organization_id: uuid.UUID,
    channel_id: uuid.UUID,
    viewer: uuid.UUID | None,
    *,
    descending: bool,
    limit: int,
    offset: int,
    phrases: bool,
) -> MessagePage:
    """A page of the messages of ``channel_id`` that ``viewer`` may see (posted ones and its
    own drafts; without a viewer, posted ones), as the list orders them (``MESSAGE_ORDER``
    then id, newest first when ``descending``), with the list's total
    (:func:`count_channel_messages`), in one statement built once (two when the page is
    empty: the total alone then).

    The rows are Core rows of the columns a message shows (``phrases`` None unless asked for);
    on PostgreSQL ``posted_time`` and ``last_modified_at`` come formatted (the text
    ``format_timestamp`` makes of them), elsewhere as times. With a viewer, each row carries
    the viewer's read horizon in the channel (``viewer_horizon``)."""
    statement = _message_page(is_postgres(session), viewer is not None, descending, phrases)
    params = {
        "org": organization_id,
        "channel": channel_id,
        "viewer": viewer,
        "limit": limit,
        "offset": offset,
    }
    rows = await statement.rows(await session.connection(), params)
    if not rows:
        total = await count_channel_messages(session, organization_id, channel_id, viewer)
        return MessagePage(rows, total)
    return MessagePage(rows, int(rows[0].page_total))


# --- a page of channels ----------------------------------------------------------------------


def _channels_total(viewer: bool) -> Select[Any]:
    """The list's total: the viewer's memberships (an index range), or without a viewer the
    organization's channels."""
    if viewer:
        return scoped(
            select(func.count()).select_from(MessagingSubscriber), MessagingSubscriber, _ORG
        ).where(MessagingSubscriber.individual_id == _VIEWER)
    return scoped(select(func.count()).select_from(MessagingChannel), MessagingChannel, _ORG)


# The columns of a page's channel that are not times (those come formatted on PostgreSQL).
_CHANNEL_TIMES = frozenset({"created_at", "last_modified_at"})


@functools.cache
def _channel_page(postgres: bool, viewer: bool) -> Direct:
    """A page of channels as the list shows them (:func:`channel_page`).

    The statement is the generic list's. For a viewer it is planned for each viewer
    (``replan``): an individual in 5,000 channels walks the activity index for a page
    (0.6 ms), one in a few sorts them. A prepared statement's generic plan guesses a few
    memberships for every viewer and sorts them all: 15 ms for 5,000 channels. PostgreSQL
    switches to it after five runs whenever its estimate is below the custom plans' (which
    one is depends on the statistics: it did after an ``ANALYZE``). The total and the last
    messages are statements of their own."""
    c = MessagingChannel
    columns = [
        *(column for column in c.__table__.c if column.key not in _CHANNEL_TIMES),
        _time_text(c.created_at, postgres),
        _time_text(c.last_modified_at, postgres),
    ]
    stmt = scoped(_columns(*columns), c, _ORG)
    if viewer:
        stmt = stmt.where(c.id.in_(subscribed_channels(_ORG, _VIEWER)))
    stmt = (
        stmt.order_by(CHANNEL_ACTIVITY.desc(), c.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return Direct(stmt, replan=viewer)


_CHANNELS_TOTAL = {viewer: Direct(_channels_total(viewer)) for viewer in (True, False)}


@dataclass(frozen=True)
class ChannelPage:
    rows: Sequence[Any]
    total: int


async def channel_page(
    session: AsyncSession,
    organization_id: uuid.UUID,
    viewer: uuid.UUID | None,
    *,
    limit: int,
    offset: int,
) -> ChannelPage:
    """A page of the channels ``viewer`` subscribes to (without a viewer, the organization's),
    newest activity first (``CHANNEL_ACTIVITY`` then id), and the list's total: two
    statements built once.

    The rows are Core rows of the channel's columns; on PostgreSQL ``created_at`` and
    ``last_modified_at`` come formatted (the text ``format_timestamp`` makes of them),
    elsewhere as times."""
    params = {"org": organization_id, "viewer": viewer, "limit": limit, "offset": offset}
    connection = await session.connection()
    total = await _CHANNELS_TOTAL[viewer is not None].rows(connection, params)
    statement = _channel_page(is_postgres(session), viewer is not None)
    return ChannelPage(await statement.rows(connection, params), int(total[0][0]))


# --- posting (the hot path: see posting.py for the lock order) -------------------------------


async def author_locales(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> list[tuple[uuid.UUID, str | None]]:
    """(id, locale) of these individuals (at most CHUNK ids)."""
    people = cast("Select[Any]", select(Individual.id, Individual.locale))
    rows = await session.execute(
        scoped(people, Individual, organization_id).where(Individual.id.in_(ids))
    )
    return [(ident, locale) for ident, locale in rows]


async def logins_newest_first(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(primary individual, user) of the logins of these individuals (at most CHUNK ids),
    newest login first."""
    logins = cast("Select[Any]", select(User.primary_individual_id, User.id))
    rows = await session.execute(
        scoped(logins, User, organization_id)
        .where(User.primary_individual_id.in_(individual_ids))
        .order_by(User.created_at.desc(), User.id.desc())
    )
    return [(individual_id, user_id) for individual_id, user_id in rows]


async def subscriber_pairs(
    session: AsyncSession, organization_id: uuid.UUID, channel_ids: Iterable[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(channel, subscriber) of these channels (at most CHUNK ids)."""
    pairs = cast(
        "Select[Any]", select(MessagingSubscriber.channel_id, MessagingSubscriber.individual_id)
    )
    rows = await session.execute(
        scoped(pairs, MessagingSubscriber, organization_id).where(
            MessagingSubscriber.channel_id.in_(channel_ids)
        )
    )
    return [(channel_id, individual_id) for channel_id, individual_id in rows]


# Core statements of the post path, built once (their compiled forms are cached): each names
# its organization through a parameter, checked per call by the functions that run them.
_CHANNELS: Any = MessagingChannel.__table__
_SUBSCRIBERS: Any = MessagingSubscriber.__table__
_MESSAGES: Any = MessagingMessage.__table__
_INDIVIDUALS: Any = Individual.__table__
_USERS: Any = User.__table__
_MESSAGE_COLUMNS = tuple(_MESSAGES.c)


def _oldest_login(column: Any) -> Any:
    """``column`` of the login whose primary individual the author is (the oldest)."""
    return (
        select(column)
        .where(
            _USERS.c.organization_id == bindparam("b_org"),  # tenancy-ok: per parameter set
            _USERS.c.primary_individual_id == bindparam("b_author"),
        )
        .order_by(_USERS.c.created_at, _USERS.c.id)
        .limit(1)
        .scalar_subquery()
    )


# The channel's subscribers' ids, comma-separated (null: none, or no such channel).
_SUBSCRIBER_IDS = (
    select(
        func.aggregate_strings(
            sql_cast(_SUBSCRIBERS.c.individual_id, String),
            # as SQL text: a direct statement binds no value of the compiler's own
            cast(Any, literal_column("','")),
        )
    )
    .where(
        _SUBSCRIBERS.c.channel_id == bindparam("b_channel", type_=Uuid()),
        _SUBSCRIBERS.c.organization_id == bindparam("b_org"),  # tenancy-ok: per parameter set
    )
    .scalar_subquery()
)

# One row (none: the author is no individual of the organization); channel_id null: no such
# channel in the organization.
_POST_FACTS = (
    select(
        _INDIVIDUALS.c.first_name,
        _INDIVIDUALS.c.last_name,
        _INDIVIDUALS.c.preferred_name,
        _INDIVIDUALS.c.account_type,
        _INDIVIDUALS.c.locale,
        _CHANNELS.c.id.label("channel_id"),
        _CHANNELS.c.archived,
        _SUBSCRIBER_IDS.label("subscriber_ids"),
        _oldest_login(_USERS.c.id).label("user_id"),
        _oldest_login(_USERS.c.username).label("user_name"),
    )
    .select_from(
        _INDIVIDUALS.outerjoin(
            _CHANNELS,
            and_(
                _CHANNELS.c.id == bindparam("b_channel"),
                _CHANNELS.c.organization_id == bindparam("b_org"),  # tenancy-ok: per parameter
            ),
        )
    )
    .where(
        _INDIVIDUALS.c.id == bindparam("b_author"),
        _INDIVIDUALS.c.organization_id == bindparam("b_org"),  # tenancy-ok: per parameter set
    )
)


_POST_FACTS_DIRECT = Direct(_POST_FACTS)


async def post_facts(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID, author: uuid.UUID
) -> tuple[Any, list[uuid.UUID]] | None:
    """What a post needs to know, in one statement of one row: the author (names, account
    type, locale, login id and name) and the channel (``channel_id`` null: none such;
    ``archived``), with the ids of the channel's subscribers. None: the author is no
    individual here."""
    connection = await session.connection()
    params = {"b_org": organization_id, "b_channel": channel_id, "b_author": author}
    found = await _POST_FACTS_DIRECT.rows(connection, params)
    if not found:
        return None
    row = found[0]
    joined: str | None = row.subscriber_ids
    return row, [uuid.UUID(each) for each in joined.split(",")] if joined else []


def no_such_channel(channel_id: uuid.UUID, pointer: str) -> ApiError:
    return ApiError(
        404,
        [
            ErrorItem(
                f"channel-id names no channel of this organization: {channel_id}",
                "not-found",
                pointer=pointer,
            )
        ],
    )


_INSERT_MESSAGES = insert(_MESSAGES)
# One message (every column named) with its job, on the driver's connection.
_JOBS: Any = Job.__table__
_INSERT_MESSAGE_AND_JOB = Direct(
    insert_of(_MESSAGES, "m_").add_cte(insert_of(_JOBS, "j_").cte("j_rows"))
)


async def insert_messages(
    session: AsyncSession,
    organization_id: uuid.UUID,
    rows: Sequence[dict[str, Any]],
    jobs: Sequence[dict[str, Any]] = (),
) -> None:
    """One INSERT of messages (Core rows, each naming ``organization_id``) and of ``jobs``
    (rows of :func:`courier.jobs.outbox.job_row` about them): one message and its job are
    one statement on PostgreSQL (the job a data-modifying CTE), else an INSERT each."""
    if any(row["organization_id"] != organization_id for row in [*rows, *jobs]):
        raise ValueError("a message or job row of another organization")
    connection = await session.connection()
    if len(rows) == 1 and len(jobs) == 1 and connection.dialect.name == "postgresql":
        params = prefixed(_MESSAGES, "m_", rows[0]) | prefixed(_JOBS, "j_", jobs[0])
        await _INSERT_MESSAGE_AND_JOB.execute(connection, params)
        return
    await connection.execute(_INSERT_MESSAGES, rows[0] if len(rows) == 1 else list(rows))
    if jobs:
        await connection.execute(insert(_JOBS), list(jobs))


# channel, its new seq, its group, its SMS path on, its providers' messages (provider_count)
Taken = list[tuple[uuid.UUID, int, "uuid.UUID | None", bool, int]]

# 1 when the individual ``b_author`` is a provider of the organization now (as the post takes
# its seq), else 0 (none, or no author): what the post adds to its channel's provider_count.
_AUTHOR_IS_PROVIDER = (
    select(func.count())
    .select_from(_INDIVIDUALS)
    .where(
        _INDIVIDUALS.c.id == bindparam("b_author", type_=Uuid()),
        _INDIVIDUALS.c.organization_id == bindparam("b_org"),  # tenancy-ok: per parameter set
        _INDIVIDUALS.c.account_type == "provider",
    )
    .scalar_subquery()
)

_TAKE_SEQ = (
    update(_CHANNELS)
    .where(
        _CHANNELS.c.organization_id == bindparam("b_org"),  # tenancy-ok: per parameter set
        _CHANNELS.c.id == bindparam("b_id"),
    )
    .values(
        last_seq=_CHANNELS.c.last_seq + 1,
        provider_count=_CHANNELS.c.provider_count + _AUTHOR_IS_PROVIDER,
        last_message_id=bindparam("b_message"),
        last_message_at=bindparam("b_now"),
        last_modified_at=bindparam("b_now"),
    )
    .returning(
        _CHANNELS.c.id,
        _CHANNELS.c.last_seq,
        _CHANNELS.c.individual_group_id,
        _CHANNELS.c.with_sms,
        _CHANNELS.c.provider_count,
    )
)


_TAKE_SEQ_DIRECT = Direct(_TAKE_SEQ)


async def take_seqs_of_channels(
    session: AsyncSession,
    organization_id: uuid.UUID,
    by_channel: Mapping[uuid.UUID, uuid.UUID],
    now: datetime,
    authors: Mapping[uuid.UUID, uuid.UUID | None],
) -> Taken:
    """Bump each channel's seq counter (and its ``provider_count`` when the message's author,
    ``authors[channel]``, is a provider) and make the message ``by_channel[channel]`` its last
    message, in a fixed number of statements whose compiled forms are cached: one for a
    single channel (``UPDATE ... RETURNING``, holding the row lock until commit), unnested
    arrays for many on PostgreSQL, one call to the connection's thread on SQLite. Channel
    objects loaded in this session see the new values."""
    ordered = sorted(by_channel)
    connection = await session.connection()
    params = [
        {
            "b_org": organization_id,
            "b_id": channel_id,
            "b_message": by_channel[channel_id],
            "b_now": now,
            "b_author": authors.get(channel_id),
        }
        for channel_id in ordered
    ]
    found: list[Any]
    if len(ordered) == 1:
        found = list(await _TAKE_SEQ_DIRECT.rows(connection, params[0]))
    elif is_postgres(session):
        # Row locks in id order, so two fan-outs sharing channels never deadlock; then one
        # UPDATE over unnested arrays (three parameters, however many channels).
        await session.execute(
            scoped(select(MessagingChannel.id), MessagingChannel, organization_id)
            .where(MessagingChannel.id.in_(ordered))
            .order_by(MessagingChannel.id)
            .with_for_update()
        )
        result = await session.execute(
            _TAKE_MANY_PG,
            {
                "org": organization_id,
                "now": now,
                "channels": ordered,
                "messages": [by_channel[c] for c in ordered],
                "authors": [authors.get(c) for c in ordered],
            },
        )
        found = list(result)
    else:
        # SQLite: the transaction holds the database's write lock; the channels' UPDATEs run
        # one after another in one call to the connection's thread.
        def take_all(run: Together) -> list[Any]:
            return [row for each in params for row in run.rows(_TAKE_SEQ_DIRECT, each)]

        found = await run_together(connection, take_all)
    rows: Taken = [(c, s, g, bool(w), int(p)) for c, s, g, w, p in found]
    _loaded_channels_see(session, rows, by_channel, now)
    return rows


def _loaded_channels_see(
    session: AsyncSession, rows: Taken, by_channel: Mapping[uuid.UUID, uuid.UUID], now: datetime
) -> None:
    """Channel objects loaded in ``session`` see the seqs and last messages just taken."""
    if not len(session.identity_map):
        return  # nothing loaded (a post's session): no key to look up
    for channel_id, seq, _group, _sms, providers in rows:
        channel = session.identity_map.get(identity_key(MessagingChannel, channel_id))
        if channel is not None:
            set_committed_value(channel, "last_seq", seq)
            set_committed_value(channel, "provider_count", providers)
            set_committed_value(channel, "last_message_id", by_channel[channel_id])
            set_committed_value(channel, "last_message_at", now)
            set_committed_value(channel, "last_modified_at", now)


def _loaded_subscriber_sees(
    session: AsyncSession,
    channel_id: uuid.UUID,
    individual_id: uuid.UUID,
    seq: int,
    message_id: uuid.UUID,
    now: datetime,
    providers: int,
) -> None:
    """A subscriber object loaded in ``session`` sees its horizon just moved."""
    if not len(session.identity_map):
        return
    sub = session.identity_map.get(identity_key(MessagingSubscriber, (channel_id, individual_id)))
    if sub is not None:
        set_committed_value(sub, "ack_seq", seq)
        set_committed_value(sub, "ack_provider_count", providers)
        set_committed_value(sub, "ack_message_id", message_id)
        set_committed_value(sub, "ack_time", now)
        set_committed_value(sub, "ack_user_time", now)


# PostgreSQL: many channels, or many horizons, in one statement over unnested arrays. Each
# names its organization; the tenancy guard does not see inside text.
_TAKE_MANY_PG = text(
    "UPDATE messaging_channels AS c SET last_seq = c.last_seq + 1, "
    "provider_count = c.provider_count + (SELECT count(*) FROM individuals AS i "
    "WHERE i.id = v.author_id AND i.organization_id = :org AND i.account_type = 'provider'), "
    "last_message_id = v.message_id, last_message_at = :now, last_modified_at = :now "
    "FROM unnest(CAST(:channels AS uuid[]), CAST(:messages AS uuid[]), "
    "CAST(:authors AS uuid[])) AS v(channel_id, message_id, author_id) "
    "WHERE c.organization_id = :org AND c.id = v.channel_id "
    "RETURNING c.id, c.last_seq, c.individual_group_id, c.with_sms, c.provider_count"
)
_MOVE_HORIZONS_PG = text(
    "UPDATE messaging_subscribers AS s SET ack_seq = v.seq, ack_message_id = v.message_id, "
    "ack_provider_count = v.providers, ack_time = :now, ack_user_time = :now "
    "FROM unnest(CAST(:channels AS uuid[]), CAST(:authors AS uuid[]), CAST(:seqs AS integer[]), "
    "CAST(:floors AS integer[]), CAST(:messages AS uuid[]), CAST(:providers AS integer[])) "
    "AS v(channel_id, individual_id, seq, floor, message_id, providers) "
    "WHERE s.organization_id = :org AND s.channel_id = v.channel_id "
    "AND s.individual_id = v.individual_id AND s.ack_seq < v.seq AND s.ack_seq >= v.floor"
)
# Core statements run with many parameter sets (executemany): each names its organization.
_MOVE_HORIZON = (
    update(_SUBSCRIBERS)
    .where(
        _SUBSCRIBERS.c.organization_id == bindparam("b_org"),  # tenancy-ok: per parameter set
        _SUBSCRIBERS.c.channel_id == bindparam("b_channel"),
        _SUBSCRIBERS.c.individual_id == bindparam("b_author"),
        _SUBSCRIBERS.c.ack_seq < bindparam("b_seq"),
        _SUBSCRIBERS.c.ack_seq >= bindparam("b_floor"),
    )
    .values(
        ack_seq=bindparam("b_seq"),
        ack_message_id=bindparam("b_message"),
        ack_provider_count=bindparam("b_providers"),
        ack_time=bindparam("b_now"),
        ack_user_time=bindparam("b_now"),
    )
)


_MOVE_HORIZON_DIRECT = Direct(_MOVE_HORIZON)


def _post_one_pg(rider: tuple[bool, bool] | None = None) -> Direct:
    """PostgreSQL: one post in one statement. The channel's seq taken (``UPDATE ...
    RETURNING``, its row locked until commit), the message written at that seq with its
    analysis job, and the author's horizon moved to it (with ``b_auto``: from anywhere behind;
    without: only from the message before), as data-modifying CTEs in the order they take
    their locks (channel, then subscriber); it returns what :func:`take_seqs_of_channels`
    returns, and whether the horizon moved."""
    taken = _TAKE_SEQ.cte("taken")
    names = [c.key for c in _MESSAGES.c]
    message = insert(_MESSAGES).from_select(
        names,
        select(
            *[
                # typed: a parameter in a SELECT list has no column type to take
                taken.c.last_seq
                if key == "seq"
                else taken.c.provider_count
                if key == "provider_count_at"
                else sql_cast(bindparam(f"m_{key}", type_=c.type), c.type)
                for key, c in zip(names, _MESSAGES.c, strict=True)
            ]
        ),
    )
    sub = _SUBSCRIBERS.c
    moved = (
        update(_SUBSCRIBERS)
        .where(
            sub.organization_id == bindparam("b_org"),  # tenancy-ok: the post's organization
            sub.channel_id == taken.c.id,
            sub.individual_id == bindparam("b_author"),
            sub.ack_seq < taken.c.last_seq,
            sub.ack_seq
            >= case((bindparam("b_auto", type_=Boolean()), 0), else_=taken.c.last_seq - 1),
        )
        .values(
            ack_seq=taken.c.last_seq,
            ack_message_id=bindparam("b_message"),
            ack_provider_count=taken.c.provider_count,
            ack_time=bindparam("b_now"),
            ack_user_time=bindparam("b_now"),
        )
        .returning(sub.individual_id)
        .cte("moved")
    )
    count = select(func.count()).select_from(moved).scalar_subquery()
    statement = (
        select(
            taken.c.id,
            taken.c.last_seq,
            taken.c.individual_group_id,
            taken.c.with_sms,
            taken.c.provider_count,
            count.label("moved"),
        )
        .add_cte(message.cte("m_rows"))
        .add_cte(insert_of(_JOBS, "j_").cte("j_rows"))
        .add_cte(moved)
    )
    if rider is not None:
        # The post's event, audit row and notifications too (courier.events.Riding).
        ctes, columns = events.rider_parts(rider)
        statement = statement.add_columns(*columns).add_cte(*ctes)
    return Direct(statement)


_POST_ONE_PG: dict[tuple[bool, bool] | None, Direct] = {}


# SQLite: the statements of one post, run together (_post_one_sqlite).
_INSERT_MESSAGE_DIRECT = Direct(insert_of(_MESSAGES, "m_"))
_INSERT_JOB_DIRECT = Direct(insert_of(_JOBS, "j_"))


def _post_one_sqlite(
    params: dict[str, Any], riding: events.Riding | None, run: Together
) -> list[Any]:
    """SQLite: what :func:`_post_one_pg` does, as statements run together (one call to
    SQLite's connection thread, :func:`courier.core.direct.run_together`): the channel's seq
    (``UPDATE ... RETURNING``), the message at that seq, its analysis job, the author's
    horizon, and ``riding``'s audit row and event (:func:`courier.events.ride_together`).
    Returns its rows: the channel's (none: no such channel, nothing written) with how many
    horizons moved and the event's seq. The transaction holds SQLite's write lock
    throughout."""
    taken = run.rows(_TAKE_SEQ_DIRECT, params)
    if not taken:
        return []
    seq, providers = taken[0][1], taken[0][4]
    run.count(_INSERT_MESSAGE_DIRECT, params | {"m_seq": seq, "m_provider_count_at": providers})
    run.count(_INSERT_JOB_DIRECT, params)
    floor = 0 if params["b_auto"] else seq - 1
    horizon = params | {
        "b_channel": params["b_id"],
        "b_seq": seq,
        "b_floor": floor,
        "b_providers": providers,
    }
    moved = run.count(_MOVE_HORIZON_DIRECT, horizon)
    seq_of_event = None if riding is None else events.ride_together(run, riding)
    return [(*taken[0], moved, seq_of_event)]


async def post_one(
    session: AsyncSession,
    organization_id: uuid.UUID,
    row: dict[str, Any],
    job: dict[str, Any],
    *,
    auto_ack: bool,
    riding: events.Riding | None = None,
) -> tuple[Taken, bool]:
    """Post the message ``row`` (its seq left to the statement; ``posted_time`` and
    ``last_modified_at`` its time) with its analysis ``job``: the channel's seq, last message
    and activity, the message, the job and the author's horizon; on PostgreSQL in one
    statement (:func:`_post_one_pg`), with ``riding`` the transaction's event, audit row and
    notifications too; on SQLite in one call to its connection's thread
    (:func:`_post_one_sqlite`, with ``riding``'s event and audit row). Returns
    :func:`take_seqs_of_channels`' rows (none: no such channel, and the caller must fail the
    transaction) and whether the author's horizon moved. Loaded channel and subscriber objects
    see the new values."""
    if row["organization_id"] != organization_id or job["organization_id"] != organization_id:
        raise ValueError("a message or job row of another organization")
    now: datetime = row["posted_time"]
    params = (
        prefixed(_MESSAGES, "m_", row)
        | prefixed(_JOBS, "j_", job)
        | {
            "b_org": organization_id,
            "b_id": row["channel_id"],
            "b_message": row["id"],
            "b_now": now,
            "b_author": row["individual_id"],
            "b_auto": auto_ack,
        }
    )
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        shape = riding.shape if riding is not None else None
        statement = _POST_ONE_PG.get(shape) or _POST_ONE_PG.setdefault(shape, _post_one_pg(shape))
        if riding is not None:
            params |= riding.params
        found = await statement.rows(connection, params)
    else:
        found = await run_together(connection, partial(_post_one_sqlite, params, riding))
    taken: Taken = [(r[0], r[1], r[2], bool(r[3]), int(r[4])) for r in found]
    moved = bool(found) and found[0][5] == 1
    if found and riding is not None:
        riding.done(found[0][6])
    _loaded_channels_see(session, taken, {row["channel_id"]: row["id"]}, now)
    if taken and moved:
        _loaded_subscriber_sees(
            session,
            row["channel_id"],
            row["individual_id"],
            taken[0][1],
            row["id"],
            now,
            taken[0][4],
        )
    return taken, moved


@dataclass(frozen=True)
class AuthorHorizon:
    """A posted message whose author's horizon moves to it: with ``auto_ack`` any horizon
    behind it; without, only one exactly at the message before (nothing unread is lost)."""

    channel_id: uuid.UUID
    author_id: uuid.UUID
    seq: int
    message_id: uuid.UUID
    auto_ack: bool
    providers: int  # the message's provider_count_at


async def move_author_horizons(
    session: AsyncSession,
    organization_id: uuid.UUID,
    moves: Sequence[AuthorHorizon],
    now: datetime,
) -> int:
    """Move each posted message's author's horizon to it (one statement, whatever their
    number). Returns how many moved (exact for one; PostgreSQL counts many too). Subscriber
    objects loaded in this session see a single move."""
    if not moves:
        return 0
    params = [
        {
            "b_org": organization_id,
            "b_channel": move.channel_id,
            "b_author": move.author_id,
            "b_seq": move.seq,
            "b_floor": 0 if move.auto_ack else move.seq - 1,
            "b_message": move.message_id,
            "b_now": now,
            "b_providers": move.providers,
        }
        for move in moves
    ]
    connection = await session.connection()
    if len(params) == 1:
        moved = await _MOVE_HORIZON_DIRECT.count(connection, params[0])
        move = moves[0]
        if moved:
            _loaded_subscriber_sees(
                session,
                move.channel_id,
                move.author_id,
                move.seq,
                move.message_id,
                now,
                move.providers,
            )
        return moved
    if is_postgres(session):
        result = await session.execute(
            _MOVE_HORIZONS_PG,
            {
                "org": organization_id,
                "now": now,
                "channels": [p["b_channel"] for p in params],
                "authors": [p["b_author"] for p in params],
                "seqs": [p["b_seq"] for p in params],
                "floors": [p["b_floor"] for p in params],
                "messages": [p["b_message"] for p in params],
                "providers": [p["b_providers"] for p in params],
            },
        )
        return int(getattr(result, "rowcount", 0))
    await connection.execute(_MOVE_HORIZON, params)
    return 0


# --- the SMS path (sms.py) -------------------------------------------------------------------


async def find_channel(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> MessagingChannel | None:
    stmt = scoped(select(MessagingChannel), MessagingChannel, organization_id).where(
        MessagingChannel.id == ident
    )
    found: MessagingChannel | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def participant_rows(
    session: AsyncSession, organization_id: uuid.UUID, channel_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, Individual, User | None]]:
    """(channel, participant subscriber, a login whose primary individual it is) of these
    channels (at most CHUNK ids), in individual id order, the oldest login first."""
    org = organization_id
    stmt = cast(
        "Select[Any]",
        select(MessagingSubscriber.channel_id, Individual, User)
        .join(
            MessagingSubscriber,
            and_(
                MessagingSubscriber.individual_id == Individual.id,
                in_organization(MessagingSubscriber, org),
            ),
        )
        .outerjoin(
            User,
            and_(User.primary_individual_id == Individual.id, in_organization(User, org)),
        )
        .where(
            MessagingSubscriber.channel_id.in_(channel_ids),
            Individual.account_type == "participant",
        )
        # Two users may name the same primary individual: the oldest one speaks for it.
        .order_by(Individual.id, User.created_at, User.id),
    )
    rows = await session.execute(scoped(stmt, Individual, org))
    return [(channel_id, individual, user) for channel_id, individual, user in rows]


async def accepted_sms_consents(
    session: AsyncSession, organization_id: uuid.UUID, phones: Sequence[str]
) -> set[str]:
    """The phones among ``phones`` (at most CHUNK) with an accepted SMS consent."""
    stmt = scoped(
        select(UserConsent.target_id).where(
            UserConsent.target_id.in_(phones),
            UserConsent.type == "sms",
            UserConsent.state == "accepted",
        ),
        UserConsent,
        organization_id,
    )
    return set((await session.execute(stmt)).scalars())


async def text_numbers(
    session: AsyncSession, organization_id: uuid.UUID, number_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, TextAccountNumber]:
    stmt = scoped(
        select(TextAccountNumber).where(TextAccountNumber.id.in_(number_ids)),
        TextAccountNumber,
        organization_id,
    )
    return {n.id: n for n in (await session.execute(stmt)).scalars()}


async def providers_among(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID | None]
) -> set[uuid.UUID]:
    """Those of ``ids`` whose account type is ``provider``."""
    stmt = scoped(
        select(Individual.id).where(Individual.id.in_(ids), Individual.account_type == "provider"),
        Individual,
        organization_id,
    )
    return set((await session.execute(stmt)).scalars())


async def texted_channels(
    session: AsyncSession, num: TextAccountNumber, phone: str
) -> list[uuid.UUID]:
    """The channels the number texted ``phone`` for, the newest first (an index range)."""
    newest = func.max(OutboundText.created_at)
    texted = cast(
        "Select[Any]",
        select(OutboundText.channel_id)
        .where(
            OutboundText.number_id == num.id,
            OutboundText.target == phone,
            OutboundText.channel_id.is_not(None),
        )
        .group_by(OutboundText.channel_id)
        .order_by(newest.desc()),
    )
    return list(
        (await session.execute(scoped(texted, OutboundText, num.organization_id))).scalars()
    )


async def channels_of_phone(
    session: AsyncSession, num: TextAccountNumber, phone: str
) -> list[uuid.UUID]:
    """The channels on the number, path on, of anyone with that phone, the most recently
    active first (e.g. a path turned on before the channel's number changed)."""
    org = num.organization_id
    people = select(Individual.id).where(Individual.phone == phone)
    logins = select(User.primary_individual_id).where(
        User.phone == phone, User.primary_individual_id.is_not(None)
    )
    ids = set((await session.execute(scoped(people, Individual, org))).scalars())
    ids |= set((await session.execute(scoped(logins, User, org))).scalars())
    if not ids:
        return []
    stmt = (
        scoped(select(MessagingChannel.id), MessagingChannel, org)
        .join(
            MessagingSubscriber,
            and_(
                MessagingSubscriber.channel_id == MessagingChannel.id,
                in_organization(MessagingSubscriber, org),
            ),
        )
        .where(
            MessagingSubscriber.individual_id.in_(sorted(ids)),
            MessagingChannel.text_number_id == num.id,
            MessagingChannel.with_sms.is_(True),
        )
        .order_by(MessagingChannel.last_message_at.desc().nulls_last(), MessagingChannel.id)
    )
    return list(dict.fromkeys((await session.execute(stmt)).scalars()))


async def open_sms_channels(
    session: AsyncSession,
    organization_id: uuid.UUID,
    number_id: uuid.UUID,
    candidates: Sequence[uuid.UUID],
) -> set[uuid.UUID]:
    """Those of ``candidates`` whose SMS path is on at this number, not archived."""
    stmt = scoped(select(MessagingChannel.id), MessagingChannel, organization_id).where(
        MessagingChannel.id.in_(candidates),
        MessagingChannel.text_number_id == number_id,
        MessagingChannel.with_sms.is_(True),
        MessagingChannel.archived.is_(False),
    )
    return set((await session.execute(stmt)).scalars())


# --- new channels and subscribers (channels.py) ----------------------------------------------


async def insert_channel_rows(
    session: AsyncSession, organization_id: uuid.UUID, rows: Sequence[dict[str, Any]]
) -> None:
    """One multi-row INSERT of channels (Core rows, each naming ``organization_id``)."""
    if any(row["organization_id"] != organization_id for row in rows):
        raise ValueError("a channel row of another organization")
    connection = await session.connection()
    await connection.execute(insert(_CHANNELS), list(rows))


async def insert_subscriber_rows(
    session: AsyncSession,
    organization_id: uuid.UUID,
    rows: Sequence[dict[str, Any]],
    *,
    counted: bool = False,
) -> None:
    """One multi-row INSERT of subscriptions (Core rows, each naming ``organization_id``),
    added to their channels' ``subscriber_count`` unless ``counted`` (channels inserted with
    their count). A duplicate fails the INSERT, and the transaction with it."""
    if any(row["organization_id"] != organization_id for row in rows):
        raise ValueError("a subscriber row of another organization")
    connection = await session.connection()
    await connection.execute(insert(_SUBSCRIBERS), list(rows))
    if not counted:
        shifts: dict[uuid.UUID, int] = defaultdict(int)
        for row in rows:
            shifts[row["channel_id"]] += 1
        await shift_subscriber_counts(session, organization_id, shifts)


# --- readers' languages (locales.py) ---------------------------------------------------------


async def locales_and_owners(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str | None, uuid.UUID | None]]:
    """(id, locale, owner) of these individuals (at most CHUNK ids)."""
    people = cast("Select[Any]", select(Individual.id, Individual.locale, Individual.owner_id))
    rows = await session.execute(
        scoped(people, Individual, organization_id).where(Individual.id.in_(ids))
    )
    return [(ident, locale, owner) for ident, locale, owner in rows]


async def login_locales_newest_first(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str]]:
    """(primary individual, locale) of the logins of these individuals that have a locale
    (at most CHUNK ids), newest login first."""
    logins = cast("Select[Any]", select(User.primary_individual_id, User.locale))
    rows = await session.execute(
        scoped(logins, User, organization_id)
        .where(User.primary_individual_id.in_(individual_ids), User.locale.is_not(None))
        .order_by(User.created_at.desc(), User.id.desc())
    )
    return [(individual_id, locale) for individual_id, locale in rows]


async def user_locales(
    session: AsyncSession, organization_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str | None]]:
    """(user, locale) of these logins."""
    manager_locales = cast("Select[Any]", select(User.id, User.locale))
    rows = await session.execute(
        scoped(manager_locales, User, organization_id).where(User.id.in_(user_ids))
    )
    return [(user_id, locale) for user_id, locale in rows]


# --- sentiment and key phrases (analysis.py) -------------------------------------------------


async def unanalysed_messages(
    session: AsyncSession, organization_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
) -> list[Any]:
    """id, message, channel_id, individual_id and draft of those of ``message_ids`` that wait
    for their analysis (not removed)."""
    stmt = scoped(
        cast(
            "Select[Any]",
            select(
                MessagingMessage.id,
                MessagingMessage.message,
                MessagingMessage.channel_id,
                MessagingMessage.individual_id,
                MessagingMessage.draft,
            ),
        ),
        MessagingMessage,
        organization_id,
    ).where(
        MessagingMessage.id.in_(list(message_ids)),
        MessagingMessage.analyzed.is_(False),
        MessagingMessage.removed.is_(False),
    )
    return list((await session.execute(stmt)).all())


async def store_analysis(
    session: AsyncSession,
    organization_id: uuid.UUID,
    message_id: uuid.UUID,
    body: str,
    sentiment: Any,
    phrases: Any,
) -> bool:
    """Store a message's analysis unless it was edited (its text is no longer ``body``) or
    analysed since. True when stored."""
    done = await session.execute(
        scoped(update(MessagingMessage), MessagingMessage, organization_id)
        .where(
            MessagingMessage.id == message_id,
            MessagingMessage.message == body,  # not edited since it was read
            MessagingMessage.analyzed.is_(False),
        )
        .values(sentiment=sentiment, phrases=phrases, analyzed=True)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(done, "rowcount", 0) == 1)


# --- channels opened for unknown phones (sms_openings.py) ------------------------------------


async def opening_of(
    session: AsyncSession, organization_id: uuid.UUID, phone: str
) -> UnknownNumberOpening | None:
    """The channel opened for this unknown phone's first text, if any."""
    stmt = scoped(
        select(UnknownNumberOpening).where(UnknownNumberOpening.phone == phone),
        UnknownNumberOpening,
        organization_id,
    )
    found: UnknownNumberOpening | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def known_phone(session: AsyncSession, organization_id: uuid.UUID, phone: str) -> bool:
    """Whether an individual or a user of the organization has this phone."""
    org = organization_id
    for stmt in (
        scoped(select(Individual.id).where(Individual.phone == phone), Individual, org),
        scoped(select(User.id).where(User.phone == phone), User, org),
    ):
        if (await session.execute(stmt.limit(1))).first() is not None:
            return True
    return False


async def existing_group_id(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> uuid.UUID | None:
    """``ident`` while it names a group of the organization, else None."""
    stmt = scoped(
        select(IndividualGroup.id).where(IndividualGroup.id == ident),
        IndividualGroup,
        organization_id,
    )
    found: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return found
