"""Domain events: written with the change (outbox), announced after commit.

A service calls :func:`publish` in the same session as its change. The row lands in the
``events`` table only if the change commits; listeners registered with :func:`on_committed`
(the real-time stream of this process) are told once it has. Event types are
``<resource-type>.<verb>``, e.g. ``messaging-messages.created``.

Just before the transaction commits (``courier.core.db.before_commit``, so it relies on the one
commit path, :func:`courier.core.db.commit`), :func:`_prepare` adds two things to it:

- on PostgreSQL, ``pg_notify('courier_events', '<organization id>:<highest seq>')`` per
  organization: delivered to every replica's listener on commit, never on rollback, so streams
  on other replicas wake at once (:mod:`courier.events.stream`); the workers' notification
  (``courier_jobs``) rides in the same ``SELECT`` when the transaction enqueued jobs;
- the jobs of the event's consumers (:func:`on_publishing`): a ``webhooks.fanout`` job when an
  active webhook subscribes to one of the events (:mod:`courier.events.webhooks`), an
  ``announcers.evaluate`` job when an active announcer listens for one
  (:mod:`courier.domains.announcers`): what consumes the events is as durable as the events.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, literal, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.db import after_commit, before_commit
from courier.core.tenancy import scoped_parts
from courier.events import webhooks
from courier.models.event import Event

Listener = Callable[[list[Event]], Awaitable[None]]
_LISTENERS: list[Listener] = []


@dataclass(frozen=True)
class Consumer:
    """What acts on an organization's events as they are published (webhooks, announcers).

    ``interest(organization id, events)``: what of the organization may want the events, as a
    SELECT of one text column labelled ``value`` whose tenant tables are filtered with
    :func:`~courier.core.tenancy.in_organization` (None when nothing can: no query). The
    interests of every consumer are asked in one statement per transaction and organization.
    ``act(session, organization id, events, values)``: given the values found (never empty),
    enqueue the jobs that act on the events."""

    interest: Callable[[uuid.UUID, Sequence[Event]], Select[Any] | None]
    act: Callable[[AsyncSession, uuid.UUID, Sequence[Event], list[str]], Awaitable[None]]


_CONSUMERS: list[Consumer] = [Consumer(webhooks.subscriptions, webhooks.enqueue_fanout)]

MAX_DATA_KEYS = 32
NOTIFY_CHANNEL = "courier_events"


def on_committed(listener: Listener) -> None:
    """Call ``listener`` with the events of each transaction once it has committed."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def on_publishing(consumer: Consumer) -> None:
    """Have ``consumer`` act on every publishing transaction's events, just before it commits
    (see :class:`Consumer`): the jobs it enqueues commit with the events or not at all."""
    if consumer not in _CONSUMERS:
        _CONSUMERS.append(consumer)


def publish(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    resource_type: str,
    verb: str,
    resource_id: uuid.UUID | None,
    individual_ids: Iterable[uuid.UUID] = (),
    data: dict[str, Any] | None = None,
) -> Event:
    """Record ``<resource_type>.<verb>`` for the individuals it concerns (ids only)."""
    payload = dict(data or {})
    if len(payload) > MAX_DATA_KEYS or any(
        not isinstance(v, str | int | bool | None | list) for v in payload.values()
    ):
        raise ValueError("event data holds ids and small scalars only")
    event = Event(
        id=uuid.uuid4(),
        organization_id=organization_id,
        type=f"{resource_type}.{verb}",
        resource_type=resource_type,
        resource_id=resource_id,
        individual_ids=sorted({str(i) for i in individual_ids}),
        data=payload,
    )
    session.add(event)
    pending: list[Event] = session.info.setdefault("events", [])
    if not pending:

        async def announce() -> None:
            events = list(pending)
            pending.clear()
            for listener in list(_LISTENERS):
                await listener(events)

        async def prepare() -> None:
            await _prepare(session, list(pending))

        before_commit(session, prepare)
        after_commit(session, announce)
    pending.append(event)
    return event


async def _prepare(session: AsyncSession, events: list[Event]) -> None:
    """Inside the publishing transaction, just before it commits: notify replicas, fan out."""
    if not events:
        return
    await session.flush()  # the events get their seq
    by_organization: dict[uuid.UUID, list[Event]] = {}
    for event in events:
        by_organization.setdefault(event.organization_id, []).append(event)
    for organization_id, batch in by_organization.items():
        await _consume(session, organization_id, batch)
    if session.get_bind().dialect.name != "postgresql":
        return
    from courier.jobs import outbox  # (jobs import the events' consumers)

    # One statement notifies the replicas of every organization's new events and, when this
    # transaction enqueued jobs (its own or its consumers'), the workers too.
    notices = [
        (NOTIFY_CHANNEL, f"{organization_id}:{max(e.seq for e in batch)}")
        for organization_id, batch in by_organization.items()
    ]
    if outbox.take_notice(session):
        notices.append((outbox.CHANNEL, ""))
    calls = ", ".join(f"pg_notify(:c{i}, :p{i})" for i in range(len(notices)))
    params: dict[str, str] = {}
    for index, (channel, payload) in enumerate(notices):
        params[f"c{index}"], params[f"p{index}"] = channel, payload
    await session.execute(text(f"SELECT {calls}"), params)


async def _consume(session: AsyncSession, organization_id: uuid.UUID, batch: list[Event]) -> None:
    """One statement asks every consumer's interest in ``batch``; each that has any acts."""
    asked = [
        (consumer, stmt)
        for consumer in list(_CONSUMERS)
        if (stmt := consumer.interest(organization_id, batch)) is not None
    ]
    if not asked:
        return
    parts = [
        stmt.add_columns(literal(index).label("consumer")) for index, (_c, stmt) in enumerate(asked)
    ]
    query = parts[0] if len(parts) == 1 else union_all(*parts)
    found: dict[int, list[str]] = {}
    for value, index in await session.execute(scoped_parts(query, organization_id)):
        found.setdefault(int(index), []).append(str(value))
    for index, (consumer, _stmt) in enumerate(asked):
        if index in found:
            await consumer.act(session, organization_id, batch, found[index])
