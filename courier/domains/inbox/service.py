"""The inbox: bookmarks, badge counts, communication summaries and their repair.

Decisions (documented in ``docs/INBOX.md``):

- A bookmark belongs to one individual, who must subscribe to the channel. The message is looked
  up within the channel: a message of another channel, a draft or a removed message is "no
  posted message of this channel" (404, ``source.pointer`` ``/data/attributes/message-id``).
- Without ``allow-multi-message`` a new bookmark replaces the individual's other bookmarks in
  that channel; with it they coexist. Bookmarking an already bookmarked message returns the
  existing bookmark rather than a duplicate.
- A badge count is one row per (individual, type): setting it creates or replaces it, keeping
  the same id. Bulk sets are all-or-nothing.
- Summary counts are *unread* counts (what a badge shows): per channel ``last_seq - ack_seq``,
  over the channels the individual subscribes to that are not archived.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, and_, case, func, literal_column, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from courier.core.errors import (
    ApiError,
    ErrorItem,
    forbidden,
    invalid_attribute,
    invalid_parameter,
    unprocessable,
)
from courier.core.tenancy import in_organization, scoped
from courier.core.time import utcnow
from courier.domains.inbox.counters import count_others
from courier.domains.inbox.repository import owned_by
from courier.domains.inbox.schemas import BadgeCountSet, BookmarkCreate
from courier.domains.people.repository import require_individual
from courier.domains.people.service import unknown_reference
from courier.jsonapi.actions import EmptyBody
from courier.jsonapi.changes import Change, Changed, change
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.individual import Individual
from courier.models.messaging import (
    BadgeCount,
    MessagingBookmark,
    MessagingChannel,
    MessagingMessage,
    MessagingSubscriber,
)

CHUNK = 500  # ids per IN (...) list: under every database's bound-parameter limit


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name != "sqlite"


def required_individual(ctx: Context) -> uuid.UUID:
    """The ``individual-id`` query parameter: an individual token's own by default, required
    with an API key (400 naming the parameter)."""
    if ctx.acting_individual_id is None:
        raise invalid_parameter("individual-id", "is required with an API key")
    return ctx.acting_individual_id


# --- bookmarks -------------------------------------------------------------------------------


class BookmarkService(CrudService[MessagingBookmark]):
    @staticmethod
    def _owner(ctx: Context, attrs: BookmarkCreate) -> uuid.UUID | None:
        """Whose bookmark: an individual token's own; with an API key the individual that
        ``individual-id`` (attribute or query) names, else nobody's: the organization's."""
        given = attrs.individual_id
        if ctx.principal.is_individual:
            if given is not None and given != ctx.principal.individual_id:
                raise forbidden("an individual token may bookmark only for its own individual")
            assert ctx.principal.individual_id is not None
            return ctx.principal.individual_id
        acting = ctx.acting_individual_id
        if given is not None and acting is not None and given != acting:
            raise invalid_attribute("individual-id", "differs from the individual-id parameter")
        return given or acting

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[MessagingBookmark]:
        """The bookmark of an individual (or, made by an API key for nobody, of the
        organization), replacing that owner's others in the channel unless
        ``allow-multi-message``; bookmarking a bookmarked message returns it unchanged."""
        assert isinstance(attrs, BookmarkCreate)
        org = ctx.organization_id
        owner = self._owner(ctx, attrs)
        if owner is not None and not ctx.principal.is_individual:
            await require_individual(ctx, owner, pointer="/data/attributes/individual-id")
        postgres = _is_postgres(ctx.session)
        channel_stmt = scoped(select(MessagingChannel.id), MessagingChannel, org).where(
            MessagingChannel.id == attrs.channel_id
        )
        if owner is None and postgres:
            # The organization has no membership row: its channel's row serialises its
            # bookmark changes there instead.
            channel_stmt = channel_stmt.with_for_update()
        channel = (await ctx.session.execute(channel_stmt)).scalar_one_or_none()
        if channel is None:
            raise unknown_reference("channel-id", "messaging channel", attrs.channel_id)
        if owner is not None:
            # Locking the membership row serialises one individual's bookmark changes in a
            # channel, so two concurrent replacing bookmarks cannot both survive.
            membership = scoped(
                select(MessagingSubscriber.individual_id), MessagingSubscriber, org
            ).where(
                MessagingSubscriber.channel_id == attrs.channel_id,
                MessagingSubscriber.individual_id == owner,
            )
            if postgres:
                membership = membership.with_for_update()
            if (await ctx.session.execute(membership)).scalar_one_or_none() is None:
                if ctx.principal.is_individual:  # a channel it is not in is one it cannot see
                    raise unknown_reference("channel-id", "messaging channel", attrs.channel_id)
                raise unprocessable(
                    "individual-id is not a subscriber of the channel; subscribe it first",
                    "not-a-subscriber",
                )
        message = (
            await ctx.session.execute(
                scoped(select(MessagingMessage.id), MessagingMessage, org).where(
                    MessagingMessage.id == attrs.message_id,
                    MessagingMessage.channel_id == attrs.channel_id,
                    MessagingMessage.seq.is_not(None),
                    MessagingMessage.draft.is_(False),
                    MessagingMessage.removed.is_(False),
                )
            )
        ).scalar_one_or_none()
        if message is None:
            raise ApiError(
                404,
                [
                    ErrorItem(
                        f"message-id names no posted message of this channel: {attrs.message_id}",
                        "not-found",
                        pointer="/data/attributes/message-id",
                    )
                ],
            )
        existing: Sequence[MessagingBookmark] = (
            (
                await ctx.session.execute(
                    scoped(select(MessagingBookmark), MessagingBookmark, org)
                    .where(
                        owned_by(owner),
                        MessagingBookmark.channel_id == attrs.channel_id,
                    )
                    .order_by(MessagingBookmark.created_at, MessagingBookmark.id)
                )
            )
            .scalars()
            .all()
        )
        kept = next((b for b in existing if b.message_id == attrs.message_id), None)
        replaced: list[Change] = []
        if not attrs.allow_multi_message:
            for old in existing:
                if old is not kept:
                    replaced.append(self.change(ctx, "deleted", old))
                    await ctx.session.delete(old)
        if kept is not None:
            return Changed(kept, replaced)  # it already existed: nothing was created
        bookmark = MessagingBookmark(
            id=uuid.uuid4(),
            organization_id=org,
            channel_id=attrs.channel_id,
            message_id=attrs.message_id,
            individual_id=owner,
            key_id=ctx.principal.key_id,
            created_at=utcnow(),
        )
        ctx.session.add(bookmark)
        created = self.change(ctx, "created", bookmark, attrs.model_fields_set)
        return Changed(bookmark, [*replaced, created])

    def individuals_of(self, obj: MessagingBookmark) -> list[uuid.UUID]:
        return [] if obj.individual_id is None else [obj.individual_id]

    async def present(
        self, ctx: Context, rows: Sequence[MessagingBookmark]
    ) -> list[dict[str, Any]]:
        read = self.spec.read_schema
        return [
            read.model_validate(
                {
                    "channel": {"id": row.channel_id},
                    "message": {"id": row.message_id},
                    "created_by": (
                        {"id": row.key_id, "type": "api-keys"}
                        if row.individual_id is None
                        else {"id": row.individual_id, "type": "individuals"}
                    ),
                    "created_at": row.created_at,
                    "organization_id": row.organization_id,
                }
            ).model_dump(mode="json", by_alias=True)
            for row in rows
        ]


# --- badge counts ----------------------------------------------------------------------------


def _value_error(index: int | None, attribute: str, detail: str, status: int = 400) -> ApiError:
    if index is None:
        where, pointer = attribute, f"/data/attributes/{attribute}"
    else:
        where = f"values[{index}].{attribute}"
        pointer = f"/data/attributes/values/{index}/{attribute}"
    code = "not-found" if status == 404 else "invalid-attribute"
    return ApiError(status, [ErrorItem(f"{where} {detail}", code, pointer=pointer)], {}, True)


@dataclass
class BadgeCountChange:
    row: BadgeCount
    created: bool


async def set_badge_counts(
    ctx: Context, values: Sequence[BadgeCountSet], *, bulk: bool
) -> list[BadgeCountChange]:
    """Create or replace each (individual, type) count: all of them, or none (an error names
    the value's index when ``bulk``)."""
    if ctx.principal.is_individual:
        raise forbidden("badge counts are set by staff or admin keys, not individual tokens")
    org = ctx.organization_id

    def at(i: int) -> int | None:
        return i if bulk else None

    seen: dict[tuple[uuid.UUID, str], int] = {}
    for i, value in enumerate(values):
        if value.organization_id is not None and value.organization_id != org:
            raise _value_error(at(i), "organization-id", "names another organization", 404)
        key = (value.individual_id, value.type)
        if key in seen:
            raise _value_error(
                at(i), "type", f"repeats the individual and type of values[{seen[key]}]"
            )
        seen[key] = i
    individual_ids = list(dict.fromkeys(v.individual_id for v in values))
    found: set[uuid.UUID] = set()
    rows: dict[tuple[uuid.UUID, str], BadgeCount] = {}
    for start in range(0, len(individual_ids), CHUNK):
        chunk = individual_ids[start : start + CHUNK]
        known = scoped(select(Individual.id), Individual, org).where(Individual.id.in_(chunk))
        found.update((await ctx.session.execute(known)).scalars().all())
        current = scoped(select(BadgeCount), BadgeCount, org).where(
            BadgeCount.individual_id.in_(chunk)
        )
        if _is_postgres(ctx.session):
            current = current.with_for_update()
        for row in (await ctx.session.execute(current)).scalars():
            rows[(row.individual_id, row.type)] = row
    for i, value in enumerate(values):
        if value.individual_id not in found:
            raise _value_error(
                at(i),
                "individual-id",
                f"names no individual of this organization: {value.individual_id}",
                404,
            )
    now = utcnow()
    changes: list[BadgeCountChange] = []
    for value in values:
        timestamp = value.timestamp or now
        row = rows.get((value.individual_id, value.type))
        created = row is None
        if row is None:
            row = BadgeCount(
                id=uuid.uuid4(),
                organization_id=org,
                individual_id=value.individual_id,
                type=value.type,
                count=value.count,
                timestamp=timestamp,
                last_modified_at=now,
            )
            try:
                # A concurrent first set of the same (individual, type) may win the insert;
                # this one then replaces its value instead of failing with a conflict.
                async with ctx.session.begin_nested():
                    ctx.session.add(row)
            except IntegrityError:
                again = scoped(select(BadgeCount), BadgeCount, org).where(
                    BadgeCount.individual_id == value.individual_id,
                    BadgeCount.type == value.type,
                )
                row = (await ctx.session.execute(again)).scalar_one()
                created = False
        if not created:
            row.count = value.count
            row.timestamp = timestamp
            row.last_modified_at = now
        changes.append(BadgeCountChange(row, created))
    return changes


class BadgeCountService(CrudService[BadgeCount]):
    async def do_set_bulk(self, ctx: Context, values: Sequence[BadgeCountSet]) -> list[Change]:
        """Create or replace every value, all or none: one change per value."""
        results = await set_badge_counts(ctx, values, bulk=True)
        return [self.badge_change(ctx, r, v) for r, v in zip(results, values, strict=True)]

    async def do_list(self, ctx: Context, body: None) -> Select[Any]:
        """The badge counts of one individual, by type (``individual-id``, required with an
        API key; an individual token reads its own)."""
        individual_id = required_individual(ctx)
        await require_individual(ctx, individual_id)
        return self.query(ctx).where(BadgeCount.individual_id == individual_id)

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[BadgeCount]:
        """Create or replace the (individual, type) count: ``created`` or ``updated``."""
        assert isinstance(attrs, BadgeCountSet)
        (result,) = await set_badge_counts(ctx, [attrs], bulk=False)
        return Changed(result.row, [self.badge_change(ctx, result, attrs)])

    def badge_change(self, ctx: Context, result: BadgeCountChange, value: BadgeCountSet) -> Change:
        verb = "created" if result.created else "updated"
        return self.change(ctx, verb, result.row, value.model_fields_set)

    def individuals_of(self, obj: BadgeCount) -> list[uuid.UUID]:
        return [obj.individual_id]


# --- communication summaries -----------------------------------------------------------------

GROUP_MESSAGES = "group-messages"
DIRECT_MESSAGES = "direct-messages"


@dataclass
class SenderCount:
    individual_id: uuid.UUID
    count: int


@dataclass
class CommunicationSummary:
    messages: int
    group_messages: int
    direct_messages: int
    provider_messages: int
    others: dict[str, int]
    senders: list[SenderCount]

    def document(self, include_senders: bool) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "messages": self.messages,
            "notifications": self.others.get("notifications", 0),
            "provider-messages": self.provider_messages,
            "video-channels": self.others.get("video-channels", 0),
            "message-types": [
                {"message-type": GROUP_MESSAGES, "count": self.group_messages},
                {"message-type": DIRECT_MESSAGES, "count": self.direct_messages},
            ],
        }
        if include_senders:
            summary["message-senders"] = [
                {"individual-id": str(s.individual_id), "count": s.count} for s in self.senders
            ]
        return {"summary": summary}


def _unread_channels(organization_id: uuid.UUID, individual_id: uuid.UUID) -> Any:
    """The individual's memberships of unarchived channels that have unread messages (for a
    statement that joins the channel to the membership)."""
    sub, channel = MessagingSubscriber, MessagingChannel
    return and_(
        sub.individual_id == individual_id,
        in_organization(channel, organization_id),
        channel.archived.is_(False),
        channel.last_seq > sub.ack_seq,
    )


# The channel's subscribers, counted beside the individual's own membership row. Built once:
# an alias costs more to build than the whole summary statement.
_OTHER_SUBSCRIBERS = aliased(MessagingSubscriber)


def _unread_by_author(
    organization_id: uuid.UUID, individual_id: uuid.UUID, *, lateral: bool, per_author: bool
) -> Select[Any]:
    """The individual's unread messages by author: rows of (author individual id, its account
    type, unread messages) when ``per_author``, else one row: those written by providers.

    On PostgreSQL the unread range of each channel is counted in a LATERAL subquery: the
    planner then has to probe the ``(channel_id, seq)`` index once per channel with unread
    messages. Written as a plain join, it estimates the ranges from the organization's average
    channel and, next to one very large channel, prefers to scan every message of the
    organization (0.4 s instead of 20 ms for 5,000 channels beside a 1,000,000-message one).
    SQLite has no LATERAL; its planner walks the same index through the plain join.
    """
    sub, channel, message = MessagingSubscriber, MessagingChannel, MessagingMessage
    in_range = and_(
        in_organization(message, organization_id),
        message.channel_id == sub.channel_id,
        message.seq > sub.ack_seq,
        message.seq <= channel.last_seq,
    )
    author_id: Any
    unread: Any
    stmt = select().select_from(sub).join(channel, channel.id == sub.channel_id)
    if lateral:
        per_channel = (
            select(message.individual_id.label("author_id"), func.count().label("unread"))
            .where(in_range)
            .group_by(message.individual_id)  # also keeps the planner from flattening it
            .lateral("unread_of_channel")
        )
        author_id, unread = per_channel.c.author_id, per_channel.c.unread
        stmt = stmt.join(per_channel, true())
    else:
        author_id, unread = message.individual_id, literal_column("1")
        stmt = stmt.join(message, in_range)
    stmt = stmt.outerjoin(
        Individual,
        and_(Individual.id == author_id, in_organization(Individual, organization_id)),
    ).where(_unread_channels(organization_id, individual_id))
    if per_author:
        stmt = stmt.add_columns(author_id, Individual.account_type, func.sum(unread)).group_by(
            author_id, Individual.account_type
        )
    else:
        by_provider = case((Individual.account_type == "provider", unread), else_=0)
        stmt = stmt.add_columns(func.coalesce(func.sum(by_provider), 0))
    return scoped(cast("Select[Any]", stmt), sub, organization_id)


async def communication_summary(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    *,
    include_senders: bool = True,
) -> CommunicationSummary:
    """Unread counts of one individual in two queries, whatever its number of channels.

    1. One aggregate over its memberships joined to their channels, from the seq counters
       (unread = last_seq - ack_seq): the total, and the part in group channels. A channel is a
       *group* channel when it belongs to an individual group or has more than two
       subscribers; otherwise (one-to-one, or a note to oneself) it is *direct*.
    2. One grouped scan of the unread messages only (seq above the read horizon), through the
       (channel_id, seq) index: counts per author, and those written by providers. Without
       ``include_senders`` only the providers' count is computed (``senders`` stays empty).
    """
    sub, channel, others = MessagingSubscriber, MessagingChannel, _OTHER_SUBSCRIBERS
    unread = channel.last_seq - sub.ack_seq
    members = (
        select(func.count())
        .select_from(others)
        .where(others.channel_id == sub.channel_id)
        .correlate(sub)
        .scalar_subquery()
    )
    is_group = or_(channel.individual_group_id.is_not(None), members > 2)
    totals = scoped(
        select(
            func.coalesce(func.sum(unread), 0),
            func.coalesce(func.sum(case((is_group, unread), else_=0)), 0),
        )
        .select_from(sub)
        .join(channel, channel.id == sub.channel_id)
        .where(_unread_channels(organization_id, individual_id)),
        sub,
        organization_id,
    )
    total, in_groups = (await session.execute(totals)).one()

    authors = _unread_by_author(
        organization_id,
        individual_id,
        lateral=_is_postgres(session),
        per_author=include_senders,
    )
    provider_messages = 0
    senders: list[SenderCount] = []
    if include_senders:
        for author_id, account_type, count in (await session.execute(authors)).all():
            if account_type == "provider":
                provider_messages += int(count)
            if author_id is not None:  # messages with no author individual (e.g. system notes)
                senders.append(SenderCount(author_id, int(count)))
        senders.sort(key=lambda s: (-s.count, str(s.individual_id)))
    else:
        provider_messages = int((await session.execute(authors)).scalar_one())
    total, in_groups = int(total), int(in_groups)
    return CommunicationSummary(
        messages=total,
        group_messages=in_groups,
        direct_messages=total - in_groups,
        provider_messages=provider_messages,
        others=await count_others(session, organization_id, individual_id),
        senders=senders,
    )


async def check_summary(ctx: Context, *, include_senders: bool = True) -> CommunicationSummary:
    """The summary of the ``individual-id`` the call names (an individual token: its own)."""
    individual_id = required_individual(ctx)
    await require_individual(ctx, individual_id)
    return await communication_summary(
        ctx.session, ctx.organization_id, individual_id, include_senders=include_senders
    )


# --- repair ----------------------------------------------------------------------------------


async def do_recalculate_communication_summary(
    ctx: Context, individual: Individual, body: EmptyBody | None
) -> Changed[Individual]:
    """Recompute the denormalised counters of the individual's channels from the messages.

    Each channel's ``last_seq`` becomes the highest seq of its posted messages (0 if none),
    ``last_message_id``/``last_message_at`` that message's id and posted time; then every
    subscriber of those channels whose ``ack_seq`` lies beyond ``last_seq`` (or below 0) is
    clamped into range. Only rows that were wrong are written.
    """
    org = ctx.organization_id
    individual_id = individual.id
    sub, channel, message = MessagingSubscriber, MessagingChannel, MessagingMessage
    mine = aliased(MessagingSubscriber)
    channel_ids = select(mine.channel_id).where(
        mine.individual_id == individual_id, in_organization(mine, org)
    )
    channels_stmt = (
        scoped(select(channel), channel, org)
        .where(channel.id.in_(channel_ids))
        .order_by(channel.id)
    )
    if _is_postgres(ctx.session):
        # Posting takes the channel row lock to draw the next seq: hold it while recounting.
        channels_stmt = channels_stmt.with_for_update()
    channels = list((await ctx.session.execute(channels_stmt)).scalars().all())

    newest = (
        select(message.channel_id.label("channel_id"), func.max(message.seq).label("max_seq"))
        .where(
            in_organization(message, org),
            message.seq.is_not(None),
            message.channel_id.in_(channel_ids),
        )
        .group_by(message.channel_id)
        .subquery()
    )
    last_messages = scoped(
        cast(
            "Select[Any]",
            select(
                message.channel_id,
                message.seq,
                message.id,
                message.posted_time,
                message.created_at,
            ),
        )
        .join(
            newest, and_(newest.c.channel_id == message.channel_id, newest.c.max_seq == message.seq)
        )
        .order_by(message.channel_id, message.id),
        message,
        org,
    )
    truth: dict[uuid.UUID, tuple[int, uuid.UUID | None, datetime | None]] = {}
    for channel_id, seq, message_id, posted_time, created_at in (
        await ctx.session.execute(last_messages)
    ).all():
        truth.setdefault(channel_id, (int(seq), message_id, posted_time or created_at))

    repaired = 0
    for row in channels:
        seq, message_id, at = truth.get(row.id, (0, None, None))
        if (row.last_seq, row.last_message_id, row.last_message_at) != (seq, message_id, at):
            row.last_seq, row.last_message_id, row.last_message_at = seq, message_id, at
            repaired += 1
    await ctx.session.flush()

    last_seq = select(channel.last_seq).where(channel.id == sub.channel_id).scalar_subquery()
    last_id = select(channel.last_message_id).where(channel.id == sub.channel_id).scalar_subquery()
    beyond = scoped(
        update(sub)
        .where(sub.channel_id.in_(channel_ids), sub.ack_seq > last_seq)
        .values(ack_seq=last_seq, ack_message_id=last_id),
        sub,
        org,
    ).execution_options(synchronize_session=False)
    below = scoped(
        update(sub)
        .where(sub.channel_id.in_(channel_ids), sub.ack_seq < 0)
        .values(ack_seq=0, ack_message_id=None),
        sub,
        org,
    ).execution_options(synchronize_session=False)
    clamped = 0
    for stmt in (beyond, below):
        result: Any = await ctx.session.execute(stmt)
        clamped += int(result.rowcount or 0)

    changed = bool(repaired or clamped)
    recalculated = change(
        "communication-summaries",
        individual_id,
        "recalculated",
        fields=("last-seq", "ack-seq") if changed else (),
        audience=[individual_id],
        organization_id=org,
        data={"repaired-channels": repaired, "clamped-subscribers": clamped},
        # Only a repair changes unread counts: then the individual's apps should refetch them.
        published=changed,
    )
    report = {
        "channels": len(channels),
        "repaired-channels": repaired,
        "clamped-subscribers": clamped,
    }
    return Changed(individual, [recalculated], meta=report)
