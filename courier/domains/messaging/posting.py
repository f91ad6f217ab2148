"""Posting messages: the one path every post takes, whoever asks.

The HTTP endpoints (``POST /v1/messaging-messages/``, a draft's ``PATCH draft: false``), the
bulk-message fan-out jobs and the auto-responder all post through here, given a session and an
organization rather than a request, so a message posted from a job is indistinguishable from
one posted over HTTP:

- :func:`post_messages` writes new messages (posted or drafts): the author's login, the
  channel's next ``seq``, the author's read horizon, the channel's last message, an audit row,
  the ``messaging-messages.created`` event for the channel's subscribers (a draft's: its
  author's) and the job that computes their sentiment and key phrases after the commit
  (:mod:`.analysis`);
- :func:`take_seqs` posts messages that exist already (drafts): the seq, the horizon and the
  channel's last message (the caller records the change).

Both take many messages at once, at most one per channel: a bulk fan-out posts a chunk of
recipients' messages in a fixed number of statements instead of a few per message. Channels
are locked in id order (PostgreSQL), then subscriber rows, the lock order of MESSAGING.md.

Domains that react to posts (the auto-responder) register with :func:`on_posted`: the hook runs
in the posting transaction (e.g. to enqueue a job), never the reaction itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier import events
from courier.core.auth import Principal
from courier.core.errors import ApiError, conflict
from courier.core.time import now_ms
from courier.domains.messaging import repository as repo
from courier.domains.messaging.analysis import analysis_jobs
from courier.domains.messaging.repository import CHUNK
from courier.domains.messaging.schemas import MESSAGE_TYPE
from courier.jobs.outbox import mark_enqueued
from courier.jsonapi.changes import Actor, Change, change, write_changes
from courier.models.messaging import MessagingChannel, MessagingMessage


@dataclass(frozen=True)
class AuditActor:
    """Who a post is recorded for in the audit log: a request's principal, or the job's."""

    actor_type: str  # "api-key", "individual-token", "master", "system"
    actor_id: str
    request_id: str | None = None
    fields: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, principal: Principal, request_id: str | None, fields: Iterable[str] = ()
    ) -> AuditActor:
        return cls(principal.kind.value, principal.actor_id, request_id, tuple(sorted(fields)))


@dataclass(frozen=True)
class Author:
    """What posting needs of the author: their language (for key phrases) and their login."""

    id: uuid.UUID
    locale: str | None
    user_id: uuid.UUID | None


@dataclass
class NewPost:
    """One message to write into channel ``channel_id`` as ``author_id``."""

    channel_id: uuid.UUID
    author_id: uuid.UUID
    text: str
    source: str | None = None  # e.g. "bulk-message", "auto-responder"; None: a person typed it
    bulk_message_id: uuid.UUID | None = None
    draft: bool = False
    auto_ack: bool = True  # see take_seqs
    destination: dict[str, Any] = field(default_factory=dict)
    audience: Sequence[uuid.UUID] | None = None  # the channel's subscribers, when known
    message_id: uuid.UUID | None = None  # chosen by the caller, else a new UUID


@dataclass(slots=True)
class NewMessage:
    """A message as :func:`post_messages` wrote it (a Core row: no ORM object, no flush),
    with every column; ``author_read``: its author's horizon moved to it as it was posted."""

    id: uuid.UUID
    organization_id: uuid.UUID
    channel_id: uuid.UUID
    individual_id: uuid.UUID | None
    user_id: uuid.UUID | None
    message: str
    draft: bool
    source: str | None
    destination: dict[str, Any]
    bulk_message_id: uuid.UUID | None
    created_at: datetime
    last_modified_at: datetime
    seq: int | None = None
    provider_count_at: int | None = None  # the channel's provider_count just after it
    posted_time: datetime | None = None
    removed: bool = False
    sentiment: str | None = None
    phrases: dict[str, Any] = field(default_factory=dict)
    analyzed: bool = False
    author_read: bool = False

    def row(self) -> dict[str, Any]:
        """The ``messaging_messages`` row."""
        return {
            "id": self.id,
            "organization_id": self.organization_id,
            "channel_id": self.channel_id,
            "seq": self.seq,
            "provider_count_at": self.provider_count_at,
            "individual_id": self.individual_id,
            "user_id": self.user_id,
            "message": self.message,
            "draft": self.draft,
            "removed": self.removed,
            "source": self.source,
            "destination": self.destination,
            "posted_time": self.posted_time,
            "created_at": self.created_at,
            "last_modified_at": self.last_modified_at,
            "sentiment": self.sentiment,
            "phrases": self.phrases,
            "analyzed": self.analyzed,
            "bulk_message_id": self.bulk_message_id,
        }

    @classmethod
    def of(cls, message: MessagingMessage) -> NewMessage:
        """A loaded message (a draft being posted) as the hooks see it."""
        return cls(
            id=message.id,
            organization_id=message.organization_id,
            channel_id=message.channel_id,
            individual_id=message.individual_id,
            user_id=message.user_id,
            message=message.message,
            draft=message.draft,
            source=message.source,
            destination=dict(message.destination or {}),
            bulk_message_id=message.bulk_message_id,
            created_at=message.created_at,
            last_modified_at=message.last_modified_at,
            seq=message.seq,
            provider_count_at=message.provider_count_at,
            posted_time=message.posted_time,
            removed=message.removed,
            sentiment=message.sentiment,
            phrases=dict(message.phrases or {}),
            analyzed=message.analyzed,
        )


@dataclass(frozen=True)
class Posted:
    """A message that has just taken its seq, as the :func:`on_posted` hooks see it."""

    message: NewMessage
    individual_group_id: uuid.UUID | None  # the channel's group
    with_sms: bool = False  # the channel's SMS path is on (set-sms)


PostedHook = Callable[[AsyncSession, uuid.UUID, Sequence[Posted]], Awaitable[None]]
_HOOKS: list[PostedHook] = []


def on_posted(hook: PostedHook) -> PostedHook:
    """Call ``hook(session, organization_id, posted)`` in every transaction that posts
    messages, after they took their seqs. It may read and enqueue jobs; it must be cheap."""
    if hook not in _HOOKS:
        _HOOKS.append(hook)
    return hook


def channel_gone(channel_id: uuid.UUID) -> ApiError:
    """A channel deleted between the post's look-up and its write (another request's delete
    committed meanwhile): 404, as a post to it a moment later is; the transaction rolls back."""
    return repo.no_such_channel(channel_id, "/data/attributes/channel-id")


def refuse_archived(channel: MessagingChannel) -> None:
    if channel.archived:
        raise conflict("the channel is archived: nothing can be posted in it", "archived")


async def load_authors(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Author]:
    """Each author's locale and the login whose primary individual they are (the oldest)."""
    wanted = list(dict.fromkeys(ids))
    authors: dict[uuid.UUID, Author] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        locales = await repo.author_locales(session, organization_id, chunk)
        rows = await repo.logins_newest_first(session, organization_id, chunk)
        users: dict[uuid.UUID, uuid.UUID] = {}
        for individual_id, user_id in rows:
            users[individual_id] = user_id  # the last written is the oldest
        for ident, locale in locales:
            authors[ident] = Author(ident, locale, users.get(ident))
    return authors


async def channel_audiences(
    session: AsyncSession, organization_id: uuid.UUID, channel_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    wanted = list(dict.fromkeys(channel_ids))
    audiences: dict[uuid.UUID, list[uuid.UUID]] = {ident: [] for ident in wanted}
    for start in range(0, len(wanted), CHUNK):
        rows = await repo.subscriber_pairs(session, organization_id, wanted[start : start + CHUNK])
        for channel_id, individual_id in rows:
            audiences[channel_id].append(individual_id)
    return audiences


async def post_messages(
    session: AsyncSession,
    organization_id: uuid.UUID,
    posts: Sequence[NewPost],
    *,
    actor: AuditActor,
    authors: Mapping[uuid.UUID, Author] | None = None,
) -> list[NewMessage]:
    """Write ``posts`` (at most one per channel) and return their messages, in order.

    The caller has decided that each author may post in each channel (a subscriber, the
    channel not archived); texts of posted messages are not blank. ``authors``: what is known
    of them already (the rest is read). Core statements only, a fixed number whatever the
    number of posts: the seqs (one UPDATE; on SQLite one per channel, all in one call to its
    connection's thread), the messages with their analysis jobs, the authors' horizons (one
    UPDATE), then the audit rows and events (one post: the first three together,
    :func:`repository.post_one`). Never commits.
    """
    if not posts:
        return []
    known = dict(authors or {})
    missing = {p.author_id for p in posts} - set(known)
    if missing:
        known.update(await load_authors(session, organization_id, missing))
    now = now_ms()
    messages: list[NewMessage] = []
    for post in posts:
        author = known.get(post.author_id)
        messages.append(
            NewMessage(
                id=post.message_id or uuid.uuid4(),
                organization_id=organization_id,
                channel_id=post.channel_id,
                individual_id=post.author_id,
                user_id=author.user_id if author else None,
                message=post.text,
                draft=post.draft,
                source=post.source,
                destination=dict(post.destination),
                bulk_message_id=post.bulk_message_id,
                created_at=now,
                last_modified_at=now,
            )
        )
    to_post = [(m, p) for m, p in zip(messages, posts, strict=True) if not p.draft]
    jobs = analysis_jobs(organization_id, [m.id for m in messages])
    # The audit rows and events first (they name nothing the writes return), so that one post
    # writes them with its own statement on PostgreSQL, in its own call to the connection's
    # thread on SQLite (courier.events.Riding).
    unknown = [p.channel_id for _, p in to_post if p.audience is None]
    audiences = await channel_audiences(session, organization_id, unknown) if unknown else {}
    changes: list[Change] = []
    for message, post in zip(messages, posts, strict=True):
        if post.draft:
            audience: Sequence[uuid.UUID] = [post.author_id]
        elif post.audience is not None:
            audience = post.audience
        else:
            audience = audiences[post.channel_id]
        data: dict[str, Any] = {"channel-id": str(message.channel_id)}
        if message.source is not None:
            data["source"] = message.source
        if message.bulk_message_id is not None:
            data["bulk-message-id"] = str(message.bulk_message_id)
        changes.append(
            change(
                MESSAGE_TYPE,
                message.id,
                "created",
                fields=actor.fields,
                audience=audience,
                organization_id=organization_id,
                data=data,
            )
        )
    write_changes(
        session,
        changes,
        actor=Actor(actor.actor_type, actor.actor_id),
        request_id=actor.request_id,
        organization_id=organization_id,
    )
    mark_enqueued(session)
    if len(messages) == len(to_post) == 1:
        # One post: the seq, the message with its analysis job and the author's horizon
        # together; on PostgreSQL in one statement with its audit row, its event and the
        # notifications, on SQLite in one call to its connection's thread.
        ((message, post),) = to_post
        await _post_one(session, organization_id, message, post, jobs[0], now)
    else:
        taken = await _take(session, organization_id, [m for m, _ in to_post], now)
        await repo.insert_messages(session, organization_id, [m.row() for m in messages], jobs)
        await _posted(session, organization_id, [(m, p.auto_ack) for m, p in to_post], taken, now)
    return messages


async def take_seqs(
    session: AsyncSession,
    organization_id: uuid.UUID,
    messages: Sequence[MessagingMessage],
    *,
    auto_ack: bool = True,
) -> None:
    """Post drafts (loaded messages; at most one per channel): each takes its channel's next
    seq, becomes the channel's last message, and moves its author's horizon (they have read
    what they wrote).

    ``auto_ack``: the horizon moves to the new message, acknowledging everything before it;
    without, it moves only if the author had read everything, so nothing unread is lost.
    Channel objects loaded in this session are kept in step; subscriber objects too for a
    single message. Never commits.
    """
    if not messages:
        return
    now = now_ms()
    posted = [NewMessage.of(m) for m in messages]
    taken = await _take(session, organization_id, posted, now)
    for message, new in zip(messages, posted, strict=True):
        message.seq = new.seq
        message.provider_count_at = new.provider_count_at
        message.posted_time = now
        message.draft = False
    await session.flush()
    await _posted(session, organization_id, [(m, auto_ack) for m in posted], taken, now)


async def _take(
    session: AsyncSession, organization_id: uuid.UUID, messages: Sequence[NewMessage], now: datetime
) -> repo.Taken:
    """Each message takes its channel's next seq (set on it) and is posted ``now``."""
    if not messages:
        return []
    by_channel = {m.channel_id: m.id for m in messages}
    if len(by_channel) != len(messages):
        raise ValueError("take_seqs posts at most one message per channel at a time")
    authors = {m.channel_id: m.individual_id for m in messages}
    rows = await repo.take_seqs_of_channels(session, organization_id, by_channel, now, authors)
    seqs = {channel_id: (seq, providers) for channel_id, seq, _group, _sms, providers in rows}
    if len(seqs) != len(by_channel):
        raise channel_gone(min(set(by_channel) - set(seqs)))
    for message in messages:
        message.seq, message.provider_count_at = seqs[message.channel_id]
        message.posted_time = now
        message.draft = False
    return rows


async def _posted(
    session: AsyncSession,
    organization_id: uuid.UUID,
    messages: Sequence[tuple[NewMessage, bool]],
    taken: repo.Taken,
    now: datetime,
) -> None:
    """The messages are in their channels: their authors' horizons move (with each one's
    auto-ack), and the :func:`on_posted` hooks run."""
    if not messages:
        return
    moves = [
        repo.AuthorHorizon(
            m.channel_id, m.individual_id, m.seq, m.id, auto, m.provider_count_at or 0
        )
        for m, auto in messages
        if m.individual_id is not None and m.seq is not None
    ]
    moved = await repo.move_author_horizons(session, organization_id, moves, now)
    if len(messages) == 1:
        messages[0][0].author_read = moved == 1
    await _hooks(session, organization_id, [m for m, _ in messages], taken)


async def _post_one(
    session: AsyncSession,
    organization_id: uuid.UUID,
    message: NewMessage,
    post: NewPost,
    job: dict[str, Any],
    now: datetime,
) -> None:
    """:func:`_take`, the INSERT and :func:`_posted` of one message, the first three
    together (:func:`repository.post_one`: one statement on PostgreSQL, one call to the
    connection's thread on SQLite)."""
    message.posted_time = now
    message.draft = False
    taken, moved = await repo.post_one(
        session,
        organization_id,
        message.row(),
        job,
        auto_ack=post.auto_ack,
        riding=events.ride(session),
    )
    if not taken:
        raise channel_gone(message.channel_id)
    message.seq, message.provider_count_at = taken[0][1], taken[0][4]
    message.author_read = moved
    await _hooks(session, organization_id, [message], taken)


async def _hooks(
    session: AsyncSession,
    organization_id: uuid.UUID,
    messages: Sequence[NewMessage],
    taken: repo.Taken,
) -> None:
    """The :func:`on_posted` hooks, told of the messages just posted."""
    if _HOOKS:
        found = {channel_id: (group, sms) for channel_id, _seq, group, sms, _providers in taken}
        posted = [Posted(m, *found[m.channel_id]) for m in messages]
        for hook in list(_HOOKS):
            await hook(session, organization_id, posted)
