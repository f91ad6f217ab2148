"""Domain events: written with the change (outbox), announced after commit.

A service calls :func:`publish_many` (or :func:`publish` for one event: the same path with
one item) in the same session as its change. The rows land in the ``events`` table only if the
change commits; listeners registered with :func:`on_committed` (the real-time stream of this
process) are told once it has. Event types are ``<resource-type>.<verb>``, e.g.
``messaging-messages.created``.

Writing. Publishing is cheap and synchronous: the session keeps the transaction's events as
plain records (:class:`Published`, no ORM objects), and they are written together, in publish
order, by one multi-row Core INSERT that also hands out their ``seq`` (the table's own
sequence on PostgreSQL, the rowid on SQLite; ascending in the order of the rows, as the ORM's
batched flush did): just before the transaction commits, or earlier when the caller needs the
seqs (:func:`write_events`). Taking the seqs at the end of the transaction rather than when
each event was published also narrows the window in which a seq can commit late
(:mod:`courier.events.stream`). A commit that bypasses :func:`courier.core.db.commit` (the CLI)
still writes them (a ``before_commit`` session event); a rollback forgets them.

Just before the transaction commits (``courier.core.db.before_commit``, so it relies on the one
commit path, :func:`courier.core.db.commit`), :func:`_prepare` writes what is still unwritten
(the audit rows of :func:`courier.jsonapi.changes.write_changes` too, in one INSERT of their
own) and adds two things to the transaction:

- on PostgreSQL, ``pg_notify('courier_events', '<organization id>:<highest seq>,...')``, one
  for the transaction's organizations: delivered to every replica's listener on commit,
  never on rollback, so streams on other replicas wake at once (:mod:`courier.events.stream`);
  the workers' notification (``courier_jobs``) rides with it when the transaction enqueued
  jobs. Usually (no seqs asked for earlier, at most :data:`MAX_FOLDED_ROWS` rows) the audit
  rows, the events and these notifications are one statement (writable CTEs, prepared once per
  shape); else an INSERT each and one ``SELECT pg_notify(...)``;
- a transaction whose only pending write is one event (and its audit row), such as a message
  post, can have them written by a statement it sends anyway: :func:`ride` hands them to that
  statement as CTEs (:func:`rider_parts`, with both notifications), and :func:`_prepare` then
  neither writes nor notifies them again (on SQLite they are written in the same call to the
  connection's thread as the caller's statements, :func:`ride_together`);
- the jobs of the event's consumers (:func:`on_publishing`): a ``webhooks.fanout`` job when an
  active webhook subscribes to one of the events (:mod:`courier.events.webhooks`), an
  ``announcers.evaluate`` job when an active announcer listens for one
  (:mod:`courier.domains.announcers`): what consumes the events is as durable as the events.
  Which webhooks and announcers an organization has is kept per process on PostgreSQL
  (:mod:`courier.events.interest`): a write usually asks nothing about them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Select,
    Text,
    bindparam,
    event,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.elements import BindParameter

from courier.core.bulk import insert_of
from courier.core.db import after_commit, before_commit
from courier.core.direct import Direct, Together
from courier.core.notified import changed_in
from courier.core.tenancy import scoped_parts
from courier.core.time import utcnow
from courier.events import webhooks
from courier.events.interest import INTEREST_CHANNEL, interest_cache
from courier.events.published import NewEvent, Published
from courier.models.event import Event

MAX_DATA_KEYS = 32
NOTIFY_CHANNEL = "courier_events"
_OUTBOX = "courier_events_outbox"  # session.info: the transaction's events and audit rows


@dataclass
class _Outbox:
    """A session's transaction: events not yet written, every event of it (in publish order),
    and audit rows not yet written."""

    transaction: SessionTransaction
    unwritten: list[Published] = field(default_factory=list)
    events: list[Published] = field(default_factory=list)
    audit_rows: list[dict[str, Any]] = field(default_factory=list)
    consumed: int = 0  # events[:consumed] were handed to the consumers
    announced: int = 0  # events[:announced] were written and notified by a rider (Riding)


Listener = Callable[[list[Published]], Awaitable[None]]
_LISTENERS: list[Listener] = []


@dataclass(frozen=True)
class Consumer:
    """What acts on an organization's events as they are published (webhooks, announcers).

    ``interest(organization id)``: what of the organization may want events, as a SELECT of
    one text column labelled ``value`` whose tenant tables are filtered with
    :func:`~courier.core.tenancy.in_organization`. Its rows depend on the organization only,
    never on the events: they are kept per process (:mod:`courier.events.interest`), so the
    consumer declares what changes them (:func:`courier.core.notified.watch` on
    :data:`~courier.events.interest.INTEREST_CHANNEL`), and the statement is built only when
    they are not kept. What is not kept is asked in one statement per transaction and
    organization, for every consumer, whatever the number of events.
    ``act(session, organization id, events, values)``: given the values found (never empty),
    enqueue the jobs that act on those of the events they want (perhaps none).
    ``relevant(events)``: whether any of ``events`` can be wanted at all (False: no query, no
    act; by default every event can be)."""

    interest: Callable[[uuid.UUID], Select[Any]]
    act: Callable[[AsyncSession, uuid.UUID, Sequence[Published], list[str]], Awaitable[None]]
    relevant: Callable[[Sequence[Published]], bool] = lambda _events: True


_CONSUMERS: list[Consumer] = [Consumer(webhooks.subscriptions, webhooks.enqueue_fanout)]


def on_committed(listener: Listener) -> None:
    """Call ``listener`` with the events of each transaction once it has committed."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def on_publishing(consumer: Consumer) -> None:
    """Have ``consumer`` act on every publishing transaction's events, just before it commits
    (see :class:`Consumer`): the jobs it enqueues commit with the events or not at all."""
    if consumer not in _CONSUMERS:
        _CONSUMERS.append(consumer)


def _outbox(session: AsyncSession | Session) -> _Outbox:
    """The session's outbox; the first use in a transaction registers its commit hooks."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    # Begun as adding an ORM object begins it, so a rollback ends it (and this outbox with it).
    root = sync._autobegin_t()
    while root.parent is not None:
        root = root.parent
    outbox: _Outbox | None = session.info.get(_OUTBOX)
    if outbox is None or outbox.transaction is not root:
        outbox = session.info[_OUTBOX] = _Outbox(root)
    if isinstance(session, AsyncSession) and not session.info.get(_OUTBOX + ".hooked"):
        session.info[_OUTBOX + ".hooked"] = True

        async def prepare() -> None:
            session.info.pop(_OUTBOX + ".hooked", None)
            await _prepare(session)

        async def announce() -> None:
            done: _Outbox | None = session.info.pop(_OUTBOX + ".committed", None)
            if done is None or not done.events:
                return
            for listener in list(_LISTENERS):
                await listener(list(done.events))

        before_commit(session, prepare)
        after_commit(session, announce)
    return outbox


def publish_many(session: AsyncSession, items: Iterable[NewEvent]) -> list[Published]:
    """Record each of ``items`` in the session's transaction, in order (see the module's
    docstring: written by one INSERT with the transaction's other events)."""
    made: list[Published] = []
    now = utcnow()
    for item in items:
        payload = dict(item.data or {})
        if len(payload) > MAX_DATA_KEYS or any(
            not isinstance(v, str | int | bool | None | list) for v in payload.values()
        ):
            raise ValueError("event data holds ids and small scalars only")
        made.append(
            Published(
                id=uuid.uuid4(),
                organization_id=item.organization_id,
                type=f"{item.resource_type}.{item.verb}",
                resource_type=item.resource_type,
                resource_id=item.resource_id,
                individual_ids=sorted({str(i) for i in item.individual_ids}),
                data=payload,
                occurred_at=now,
            )
        )
    if made:
        outbox = _outbox(session)
        outbox.unwritten.extend(made)
        outbox.events.extend(made)
    return made


def publish(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    resource_type: str,
    verb: str,
    resource_id: uuid.UUID | None,
    individual_ids: Iterable[uuid.UUID] = (),
    data: dict[str, Any] | None = None,
) -> Published:
    """Record ``<resource_type>.<verb>`` for the individuals it concerns (ids only):
    :func:`publish_many` of one event."""
    item = NewEvent(organization_id, resource_type, verb, resource_id, individual_ids, data)
    return publish_many(session, [item])[0]


def add_audit_rows(session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
    """Audit rows (``audit_events`` values, every column named) written with the
    transaction's events; for :func:`courier.jsonapi.changes.write_changes` only."""
    _outbox(session).audit_rows.extend(rows)


_EVENTS: Any = Event.__table__


_EVENT_COLUMNS = (
    "id",
    "organization_id",
    "type",
    "resource_type",
    "resource_id",
    "individual_ids",
    "data",
    "occurred_at",
)


def _event_row(e: Published) -> dict[str, Any]:
    return {
        "id": e.id,
        "organization_id": e.organization_id,
        "type": e.type,
        "resource_type": e.resource_type,
        "resource_id": e.resource_id,
        "individual_ids": e.individual_ids,
        "data": e.data,
        "occurred_at": e.occurred_at,
    }


def _audit_table() -> Any:
    from courier.models.audit_event import AuditEvent

    return AuditEvent.__table__


def _write(connection: Connection, outbox: _Outbox) -> None:
    """Write what ``outbox`` holds unwritten: one INSERT for the audit rows, one for the
    events (their seqs, ascending in publish order, returned with them)."""
    audit = _audit_table()
    rows, outbox.audit_rows = outbox.audit_rows, []
    events, outbox.unwritten = outbox.unwritten, []
    if rows:
        connection.execute(insert(audit), rows)
    if not events:
        return
    # The seqs come back by id. Their order follows the rows': on PostgreSQL the INSERT
    # ... SELECT ... ORDER BY of SQLAlchemy's ordered form (what the ORM's batched flush
    # of the events used), on SQLite the one writer's rowids, given in the order of the
    # VALUES (its ordered form would be one statement per row).
    ordered = connection.dialect.name != "sqlite"
    stmt = insert(_EVENTS).returning(_EVENTS.c.id, _EVENTS.c.seq, sort_by_parameter_order=ordered)
    _take_seqs(events, connection.execute(stmt, [_event_row(e) for e in events]))


async def _write_folded(connection: AsyncConnection, outbox: _Outbox, notify_jobs: bool) -> None:
    """PostgreSQL: what ``outbox`` holds unwritten, and the notifications, in one statement
    (:func:`_written_and_notified`), run on the driver's connection
    (:class:`courier.core.direct.Direct`)."""
    rows, outbox.audit_rows = outbox.audit_rows, []
    events, outbox.unwritten = outbox.unwritten, []
    statement, params = _written_and_notified(
        connection.dialect, _audit_table(), rows, events, notify_jobs
    )
    _take_seqs(events, await statement.rows(connection, params))


def _take_seqs(events: list[Published], found: Iterable[Sequence[Any]]) -> None:
    seqs = {ident: int(seq) for ident, seq in found}
    for e in events:
        e.seq = seqs[e.id]


# Folded statements by shape (audit rows, events, whether the workers are notified too):
# prepared once, so a commit only binds its values.
_FOLDED: dict[tuple[int, int, bool], Direct] = {}
MAX_FOLDED_ROWS = 32  # more audit rows or events: the statements apart


def _folded(
    dialect: Dialect, audit: Any, audit_count: int, event_count: int, notify_jobs: bool
) -> Direct:
    """The statement of :func:`_written_and_notified` for a shape."""
    shape = (audit_count, event_count, notify_jobs)
    found = _FOLDED.get(shape)
    if found is not None:
        return found
    from courier.jobs import outbox as jobs

    binds: list[BindParameter[Any]] = []

    def row(table: Any, prefix: str, names: Sequence[str]) -> str:
        values = []
        for name in names:
            column = table.c[name]
            binds.append(bindparam(f"{prefix}_{name}", type_=column.type))
            values.append(f"CAST(:{prefix}_{name} AS {column.type.compile(dialect)})")
        return ", ".join(values)

    audit_names = [c.name for c in audit.columns]
    ctes = []
    if audit_count:
        rows = ", ".join(f"({row(audit, f'a{i}', audit_names)})" for i in range(audit_count))
        ctes.append(
            f"courier_audit AS (INSERT INTO audit_events ({', '.join(audit_names)}) VALUES {rows})"
        )
    columns = ", ".join(_EVENT_COLUMNS)
    given = ", ".join(f"({i}, {row(_EVENTS, f'e{i}', _EVENT_COLUMNS)})" for i in range(event_count))
    ctes.append(
        f"courier_written AS (INSERT INTO events ({columns}) SELECT {columns} FROM (VALUES "
        f"{given}) AS courier_given (courier_order, {columns}) ORDER BY courier_order "
        "RETURNING id, seq, organization_id)"
    )
    calls = [f"pg_notify('{NOTIFY_CHANNEL}', string_agg(part, ','))"]
    if notify_jobs:
        calls.append(f"pg_notify('{jobs.CHANNEL}', '')")
    ctes.append(
        f"courier_notified AS (SELECT {', '.join(calls)} FROM (SELECT "
        "CAST(organization_id AS TEXT) || ':' || max(seq) AS part FROM courier_written "
        "GROUP BY organization_id) AS courier_parts)"
    )
    statement = Direct(
        text(
            f"WITH {', '.join(ctes)} SELECT courier_written.id, courier_written.seq "
            "FROM courier_written, courier_notified"
        ).bindparams(*binds)
    )
    _FOLDED[shape] = statement
    return statement


def _written_and_notified(
    dialect: Dialect,
    audit: Any,
    audit_rows: list[dict[str, Any]],
    events: list[Published],
    notify_jobs: bool,
) -> tuple[Direct, dict[str, Any]]:
    """PostgreSQL, one statement: INSERT the audit rows, INSERT the events in publish order
    (``INSERT ... SELECT ... ORDER BY``: their seqs ascend in that order) returning their
    seqs, and ``pg_notify('courier_events', '<organization id>:<highest seq>,...')`` (and
    ``pg_notify('courier_jobs', '')`` with ``notify_jobs``), once, from what was inserted."""
    params: dict[str, Any] = {}
    for index, values in enumerate(audit_rows):
        for column in audit.columns:  # every column named (courier.core.audit.row)
            params[f"a{index}_{column.name}"] = values[column.name]
    for index, e in enumerate(events):
        for name, value in _event_row(e).items():
            params[f"e{index}_{name}"] = value
    return _folded(dialect, audit, len(audit_rows), len(events), notify_jobs), params


@dataclass
class Riding:
    """The transaction's one unwritten event (and its audit row, if any), written by a
    statement the caller sends anyway instead of by one of their own at commit: the
    caller's SELECT takes :attr:`ctes` and :attr:`columns` (built once per shape, see
    :func:`rider_parts`) and binds :attr:`params`, then hands the event's seq (the first of
    those columns) to :meth:`done`. The notifications ride too (PostgreSQL delivers them on
    commit, never on rollback). A statement that fails fails its transaction: nothing is
    left half-written."""

    shape: tuple[bool, bool]  # (an audit row, the workers notified too)
    params: dict[str, Any]
    outbox: _Outbox
    event: Published

    def done(self, seq: int) -> None:
        self.event.seq = int(seq)
        self.outbox.announced = len(self.outbox.events)


def ride(session: AsyncSession) -> Riding | None:
    """The transaction's pending writes as a :class:`Riding` when they are one event and at
    most one audit row (a single change, as a message post has), taken from the outbox (the
    caller must then run its statement: on PostgreSQL with :func:`rider_parts`, on SQLite
    :func:`ride_together` in its :func:`courier.core.direct.run_together` call); else None and
    nothing changes. (SQLite has no notifications: the shape's second part is False there.)"""
    outbox: _Outbox | None = session.info.get(_OUTBOX)
    if (
        outbox is None
        or len(outbox.unwritten) != 1
        or len(outbox.audit_rows) > 1
        or outbox.consumed != len(outbox.events) - 1
        or outbox.events[-1] is not outbox.unwritten[0]
    ):
        return None
    from courier.jobs import outbox as jobs

    (event,) = outbox.unwritten
    rows = outbox.audit_rows
    params = {f"re_{name}": value for name, value in _event_row(event).items()}
    if rows:
        params |= {f"ra_{c.name}": rows[0][c.name] for c in _audit_table().columns}
    outbox.unwritten, outbox.audit_rows = [], []
    postgres = session.get_bind().dialect.name == "postgresql"
    return Riding((bool(rows), postgres and jobs.take_notice(session)), params, outbox, event)


# SQLite: a Riding's INSERTs (the audit row's when ``audited``, then the event's returning its
# seq), built once.
_RIDERS_TOGETHER: dict[bool, tuple[Direct | None, Direct]] = {}


def ride_together(run: Together, riding: Riding) -> int:
    """SQLite: write ``riding``'s audit row and event with ``run`` (in the caller's call to
    the connection's thread, after its own statements); returns the event's seq, for
    :meth:`Riding.done`."""
    audited = riding.shape[0]
    found = _RIDERS_TOGETHER.get(audited)
    if found is None:
        event, audit = _rider_inserts(audited)
        found = _RIDERS_TOGETHER[audited] = (
            None if audit is None else Direct(audit),
            Direct(event.returning(_EVENTS.c.seq)),
        )
    audit_insert, event_insert = found
    if audit_insert is not None:
        run.count(audit_insert, riding.params)
    ((seq,),) = run.rows(event_insert, riding.params)
    return int(seq)


def _rider_inserts(audited: bool) -> tuple[Any, Any | None]:
    """A :class:`Riding`'s INSERTs, of its ``re_`` and ``ra_`` parameters: the event's and,
    when ``audited``, the audit row's (None otherwise)."""
    events = _EVENTS
    event = insert(events).values(
        {n: bindparam(f"re_{n}", type_=events.c[n].type) for n in _EVENT_COLUMNS}
    )
    return event, insert_of(_audit_table(), "ra_") if audited else None


_RIDERS: dict[tuple[bool, bool], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}


def rider_parts(shape: tuple[bool, bool]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The CTEs (the audit row, the event returning its seq, the notifications) and the
    columns (the event's seq, then a count that has the notifications sent) a statement adds
    to carry a :class:`Riding` of ``shape``."""
    found = _RIDERS.get(shape)
    if found is not None:
        return found
    from courier.jobs import outbox as jobs

    audited, notify_jobs = shape
    event, audit = _rider_inserts(audited)
    written = event.returning(_EVENTS.c.seq, _EVENTS.c.organization_id).cte("courier_rider_event")
    ctes: list[Any] = [written]
    if audit is not None:
        ctes.append(audit.cte("courier_rider_audit"))
    part = (
        sql_cast(written.c.organization_id, Text).concat(":").concat(sql_cast(written.c.seq, Text))
    )
    calls = [func.pg_notify(literal_column(f"'{NOTIFY_CHANNEL}'"), part)]
    if notify_jobs:
        calls.append(func.pg_notify(literal_column(f"'{jobs.CHANNEL}'"), literal_column("''")))
    notified = select(*calls).select_from(written).cte("courier_rider_notified")
    ctes.append(notified)
    columns = (
        select(written.c.seq).scalar_subquery().label("rider_seq"),
        select(func.count()).select_from(notified).scalar_subquery().label("rider_notified"),
    )
    found = _RIDERS[shape] = (tuple(ctes), columns)
    return found


async def write_events(session: AsyncSession) -> None:
    """Write the transaction's events (and audit rows) now rather than just before it
    commits: they take their seqs (e.g. to name them in a job's payload)."""
    outbox: _Outbox | None = session.info.get(_OUTBOX)
    if outbox is None or not (outbox.unwritten or outbox.audit_rows):
        return
    await session.flush()  # what the rows refer to (their organization) first
    connection = await session.connection()
    await connection.run_sync(lambda sync: _write(sync, outbox))


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    """A commit outside :func:`courier.core.db.commit` (the CLI) still writes the rows."""
    outbox: _Outbox | None = session.info.get(_OUTBOX)
    if outbox is not None and (outbox.unwritten or outbox.audit_rows):
        session.flush()
        _write(session.connection(), outbox)


@event.listens_for(Session, "after_commit")
def _keep_for_announce(session: Session) -> None:
    outbox: _Outbox | None = session.info.get(_OUTBOX)
    if outbox is None or session.in_nested_transaction():
        return  # nothing published, or a savepoint released: the transaction goes on
    if outbox.transaction is session.get_transaction():
        session.info[_OUTBOX + ".committed"] = outbox  # for the announce hook


@event.listens_for(Session, "after_transaction_end")
def _forget_when_it_ends(session: Session, transaction: SessionTransaction) -> None:
    """The outbox ends with its transaction (rolled back, closed, or committed: then the
    announce hook has it)."""
    outbox: _Outbox | None = session.info.get(_OUTBOX)
    if outbox is not None and outbox.transaction is transaction:
        del session.info[_OUTBOX]


async def _prepare(session: AsyncSession) -> None:
    """Inside the publishing transaction, just before it commits: write the events, notify
    replicas, fan out."""
    outbox: _Outbox | None = session.info.get(_OUTBOX)
    if outbox is None:
        return
    from courier.jobs import outbox as jobs  # (jobs import the events' consumers)

    events = outbox.events[outbox.consumed :]
    # Events a rider wrote and notified already (Riding) are neither written nor told again.
    fresh = outbox.events[max(outbox.consumed, outbox.announced) :]
    postgres = session.get_bind().dialect.name == "postgresql"
    # On PostgreSQL the writes and the notification are one statement when this is the first
    # write of these events (nothing asked for their seqs earlier) and the organizations'
    # parts fit in one notification.
    folded = (
        postgres
        and bool(fresh)
        and len(outbox.unwritten) == len(fresh) <= MAX_FOLDED_ROWS
        and len(outbox.audit_rows) <= MAX_FOLDED_ROWS
        and len({e.organization_id for e in fresh}) <= MAX_FOLDED_ORGANIZATIONS
    )
    if folded:
        await session.flush()  # what the rows refer to (their organization) first
        notify_jobs = jobs.take_notice(session)
        await _write_folded(await session.connection(), outbox, notify_jobs)
    else:
        await write_events(session)
    outbox.consumed = len(outbox.events)
    if not events:
        return
    by_organization: dict[uuid.UUID, list[Published]] = {}
    for item in events:
        by_organization.setdefault(item.organization_id, []).append(item)
    await session.flush()  # the transaction's own changes to consumers are known (interest)
    for organization_id, batch in by_organization.items():
        await _consume(session, organization_id, batch)
    if not postgres or folded:
        return  # (jobs the consumers enqueue notify the workers when the session commits)
    # One statement, one notification per channel: the replicas hear of every organization's
    # new events and, when this transaction enqueued jobs (its own or its consumers'), the
    # workers too.
    told: dict[uuid.UUID, list[Published]] = {}
    for item in fresh:
        told.setdefault(item.organization_id, []).append(item)
    notices = [(NOTIFY_CHANNEL, payload) for payload in notice_payloads(told)]
    if jobs.take_notice(session):
        notices.append((jobs.CHANNEL, ""))
    if not notices:
        return
    calls = ", ".join(f"pg_notify(:c{i}, :p{i})" for i in range(len(notices)))
    params: dict[str, str] = {}
    for index, (channel, payload) in enumerate(notices):
        params[f"c{index}"], params[f"p{index}"] = channel, payload
    await session.execute(text(f"SELECT {calls}"), params)


# A payload of 8000 bytes or more is refused: organizations' parts are 35-55 characters.
MAX_FOLDED_ORGANIZATIONS = 100
NOTIFY_PAYLOAD_LIMIT = 7900  # PostgreSQL refuses a payload of 8000 bytes or more


def notice_payloads(by_organization: dict[uuid.UUID, list[Published]]) -> list[str]:
    """The payloads of the events' notification: ``<organization id>:<highest seq>`` per
    organization, comma-separated; one payload unless they would not fit in one."""
    payloads: list[str] = []
    current = ""
    for organization_id, batch in by_organization.items():
        part = f"{organization_id}:{max(e.seq for e in batch)}"
        if current and len(current) + 1 + len(part) > NOTIFY_PAYLOAD_LIMIT:
            payloads.append(current)
            current = ""
        current = f"{current},{part}" if current else part
    if current:
        payloads.append(current)
    return payloads


async def _consume(
    session: AsyncSession, organization_id: uuid.UUID, batch: list[Published]
) -> None:
    """Each consumer with an interest in ``batch`` acts. What the organization's consumers
    want is kept per process (:mod:`courier.events.interest`); what is not known is asked in
    one statement for every consumer."""
    asked = [consumer for consumer in list(_CONSUMERS) if consumer.relevant(batch)]
    if not asked:
        return
    cache = interest_cache(session.get_bind())
    # Reads of a transaction that changed the organization's consumers see what others don't.
    own = changed_in(session.sync_session, INTEREST_CHANNEL, str(organization_id))
    generation = cache.generation
    known = {} if own else dict(cache.get(organization_id) or {})
    unknown = [consumer for consumer in asked if consumer not in known]
    if unknown:
        parts = [
            consumer.interest(organization_id).add_columns(literal(index).label("consumer"))
            for index, consumer in enumerate(unknown)
        ]
        query = parts[0] if len(parts) == 1 else union_all(*parts)
        found: dict[int, list[str]] = {}
        for value, index in await session.execute(scoped_parts(query, organization_id)):
            found.setdefault(int(index), []).append(str(value))
        for index, consumer in enumerate(unknown):
            known[consumer] = tuple(found.get(index, ()))
        if not own:
            cache.keep(organization_id, known, generation)
    for consumer in asked:
        if values := known[consumer]:
            await consumer.act(session, organization_id, batch, list(values))


__all__ = [
    "MAX_DATA_KEYS",
    "NOTIFY_CHANNEL",
    "Consumer",
    "NewEvent",
    "Published",
    "add_audit_rows",
    "on_committed",
    "on_publishing",
    "publish",
    "publish_many",
    "write_events",
]
