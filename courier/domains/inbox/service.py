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
  over the channels the individual subscribes to that are not archived; the providers' part
  ``provider_count - ack_provider_count``: a message is a provider's when its author was a
  provider as it was posted (a later change of account type does not reclassify it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import (
    ApiError,
    ErrorItem,
    forbidden,
    invalid_attribute,
    invalid_parameter,
    not_found,
    unprocessable,
)
from courier.core.time import utcnow
from courier.domains.inbox import repository as repo
from courier.domains.inbox.counters import count_others
from courier.domains.inbox.schemas import BadgeCountSet, BookmarkCreate
from courier.domains.people.repository import individuals_repository, require_individual
from courier.domains.people.service import unknown_reference
from courier.jsonapi.actions import EmptyBody
from courier.jsonapi.changes import Change, Changed, change
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.individual import Individual
from courier.models.messaging import BadgeCount, MessagingBookmark


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
        # Without an owner, the organization has no membership row: its channel's row
        # serialises its bookmark changes there instead.
        if not await repo.channel_exists(ctx, attrs.channel_id, lock=owner is None):
            raise unknown_reference("channel-id", "messaging channel", attrs.channel_id)
        # Locking the membership row serialises one individual's bookmark changes in a
        # channel, so two concurrent replacing bookmarks cannot both survive.
        if owner is not None and not await repo.lock_membership(ctx, attrs.channel_id, owner):
            if ctx.principal.is_individual:  # a channel it is not in is one it cannot see
                raise unknown_reference("channel-id", "messaging channel", attrs.channel_id)
            raise unprocessable(
                "individual-id is not a subscriber of the channel; subscribe it first",
                "not-a-subscriber",
            )
        if not await repo.is_posted_in(ctx, attrs.message_id, attrs.channel_id):
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
        existing = await repo.bookmarks_in(ctx, owner, attrs.channel_id)
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
    found = await individuals_repository.existing_ids(ctx, individual_ids)
    rows = await repo.badge_counts_of(ctx, individual_ids, lock=True)
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
                row = await repo.badge_count(ctx.session, org, value.individual_id, value.type)
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


async def communication_summary(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    *,
    include_senders: bool = True,
) -> CommunicationSummary:
    """Unread counts of one individual of the organization (404 for any other) in one
    statement (two with ``include_senders``), whatever its number of channels.

    Over its memberships of unarchived channels joined to those channels, from the counters
    alone (``repo.unread_summary``, never the messages): unread = last_seq - ack_seq, the total
    and the part in group channels, and of them written by providers provider_count -
    ack_provider_count (a message is a provider's when its author was a provider as it was
    posted). A channel is a *group* channel when it belongs to an individual group or has more
    than two subscribers (its ``subscriber_count``); otherwise (one-to-one, or a note to
    oneself) it is *direct*. With
    ``include_senders`` a second statement groups the unread messages by author through the
    (channel_id, seq) index (``senders``); the providers' part is the counters' either way.
    """
    senders: list[SenderCount] = []
    counted = await repo.unread_summary(session, organization_id, individual_id)
    if counted is None:
        raise not_found("individual")
    total, in_groups, provider_messages = counted
    if include_senders:
        for author_id, count in await repo.unread_by_author(
            session, organization_id, individual_id
        ):
            if author_id is not None:  # messages with no author individual (e.g. system notes)
                senders.append(SenderCount(author_id, count))
        senders.sort(key=lambda s: (-s.count, str(s.individual_id)))
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
    return await communication_summary(
        ctx.session, ctx.organization_id, individual_id, include_senders=include_senders
    )


# --- repair ----------------------------------------------------------------------------------


async def do_recalculate_communication_summary(
    ctx: Context, individual: Individual, body: EmptyBody | None
) -> Changed[Individual]:
    """Recompute the denormalised counters of the individual's channels from the messages.

    Each channel's ``last_seq`` becomes the highest seq of its posted messages (0 if none),
    ``last_message_id``/``last_message_at`` that message's id and posted time, its
    ``provider_count`` that message's ``provider_count_at`` (the record of who was a provider
    when each message was posted); then every subscriber of those channels whose ``ack_seq``
    lies beyond ``last_seq`` (or below 0) is clamped into range, every subscriber's
    ``ack_provider_count`` becomes the ``provider_count_at`` of the message at its horizon (0
    for none), and each channel's ``subscriber_count`` the count of its memberships. Only rows
    that were wrong are written.
    """
    org = ctx.organization_id
    individual_id = individual.id
    channels = await repo.lock_channels_of(ctx, individual_id)
    truth = await repo.last_posted_of(ctx, individual_id)
    repaired = 0
    for row in channels:
        seq, message_id, at, providers = truth.get(row.id, (0, None, None, 0))
        stored = (row.last_seq, row.last_message_id, row.last_message_at, row.provider_count)
        if stored != (seq, message_id, at, providers):
            row.last_seq, row.last_message_id, row.last_message_at = seq, message_id, at
            row.provider_count = providers
            repaired += 1
    await ctx.session.flush()
    clamped = await repo.clamp_horizons(ctx, individual_id)
    recounted = await repo.recount_horizons(ctx, individual_id)
    members = await repo.recount_subscribers(ctx, individual_id)

    changed = bool(repaired or clamped or recounted or members)
    recalculated = change(
        "communication-summaries",
        individual_id,
        "recalculated",
        fields=("last-seq", "ack-seq") if changed else (),
        audience=[individual_id],
        organization_id=org,
        data={
            "repaired-channels": repaired,
            "clamped-subscribers": clamped,
            "recounted-subscribers": recounted,
            "recounted-channels": members,
        },
        # Only a repair changes unread counts: then the individual's apps should refetch them.
        published=changed,
    )
    report = {
        "channels": len(channels),
        "repaired-channels": repaired,
        "clamped-subscribers": clamped,
        "recounted-subscribers": recounted,
        "recounted-channels": members,
    }
    return Changed(individual, [recalculated], meta=report)
