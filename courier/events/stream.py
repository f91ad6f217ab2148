"""The real-time stream: ``GET /v1/events/`` as Server-Sent Events, on every replica.

Reading. A stream reads the ``events`` table, never trusting a notification's payload: a
notification only says "look now". Each read uses a short session of its own, so no
connection is held between reads and none while a slow client is sent its events.

Waking. A stream waits on its :class:`StreamHub` until it is woken or ``poll`` seconds pass.
It is woken by

- the in-process :func:`courier.events.on_committed` listener (every backend);
- on PostgreSQL, a :class:`PostgresListener` holding ``LISTEN courier_events`` on a dedicated
  asyncpg connection: :func:`courier.events.publish` sends ``pg_notify`` in the committing
  transaction, so every replica hears of every commit;
- a poll of the table as the safety net: every second on SQLite or while the listener is
  down, every :data:`LISTENING_POLL_SECONDS` while it listens.

Order. Sequence numbers are handed out when a row is inserted, but transactions commit in any
order, so an event with a lower seq can appear after one with a higher seq has been sent.
The :class:`Cursor` therefore re-reads a window behind its position and de-duplicates: every
read also asks which seqs between its *floor* and its position it has not seen yet. The floor
is the position the stream had :data:`SETTLE_SECONDS` ago; below it the stream assumes every
transaction has committed or rolled back. An event whose transaction commits more than
:data:`SETTLE_SECONDS` after inserting it can be missed by live streams (webhooks still get it).

Resuming. Each message's ``id:`` is the stream's resume point: the event's seq, or, for an
event that committed late (below the highest seq already sent), that highest seq, so that a
client resuming with ``Last-Event-ID`` gets neither a gap nor a duplicate. Replays reach back
:data:`REPLAY_WINDOW` at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import Select, String, cast, func, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.auth import authenticate
from courier.core.db import Database
from courier.core.errors import ApiError
from courier.core.key_cache import KeyCache
from courier.core.notified import NotifiedCache, file_board
from courier.core.tenancy import scoped
from courier.core.time import format_timestamp, utcnow
from courier.events import NOTIFY_CHANNEL, Published, on_committed
from courier.events.interest import interest_cache
from courier.events.patterns import matches
from courier.models.event import Event

log = logging.getLogger("courier.events")

SETTLE_SECONDS = 15.0
REPLAY_WINDOW = timedelta(hours=24)
POLL_SECONDS = 1.0
LISTENING_POLL_SECONDS = 5.0
REVALIDATE_SECONDS = 60.0
# Events of this resource type make every stream of the organization re-check its credentials
# at once: revoking a key (or the key that issued a token) ends its open streams.
CREDENTIAL_EVENTS = "api-keys"
READ_BATCH = 500
RETRY_MILLISECONDS = 3000
LISTENER_PING_SECONDS = 30.0
LISTENER_RETRY_SECONDS = 2.0

T = TypeVar("T")


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a stream that left does not care


async def shielded(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end even if the stream is cancelled meanwhile (the client left).

    A database session interrupted in the middle of a query can leak its connection with the
    transaction open; on SQLite that keeps the write lock, and every writer waits.
    """
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


# --- waking ----------------------------------------------------------------------------------


class StreamHub:
    """The streams of one application, by organization; wakes them when events may be new."""

    def __init__(self) -> None:
        self._waiters: dict[uuid.UUID, set[asyncio.Event]] = {}
        self.listening = False  # a PostgreSQL listener hears other replicas' commits
        self.closed = False

    def subscribe(self, organization_id: uuid.UUID) -> asyncio.Event:
        wake = asyncio.Event()
        self._waiters.setdefault(organization_id, set()).add(wake)
        return wake

    def unsubscribe(self, organization_id: uuid.UUID, wake: asyncio.Event) -> None:
        waiters = self._waiters.get(organization_id)
        if waiters is not None:
            waiters.discard(wake)
            if not waiters:
                del self._waiters[organization_id]

    def streams(self, organization_id: uuid.UUID | None = None) -> int:
        """How many streams are open (of one organization)."""
        if organization_id is not None:
            return len(self._waiters.get(organization_id, ()))
        return sum(len(w) for w in self._waiters.values())

    def wake(self, organization_id: uuid.UUID) -> None:
        for wake in list(self._waiters.get(organization_id, ())):
            wake.set()

    def wake_all(self) -> None:
        for waiters in list(self._waiters.values()):
            for wake in list(waiters):
                wake.set()

    def close(self) -> None:
        """End every stream (the server is stopping); clients reconnect elsewhere."""
        self.closed = True
        self.wake_all()

    @property
    def poll_seconds(self) -> float:
        return LISTENING_POLL_SECONDS if self.listening else POLL_SECONDS


_HUBS: weakref.WeakSet[StreamHub] = weakref.WeakSet()


async def _wake_local(events: list[Published]) -> None:
    organizations = {event.organization_id for event in events}
    for hub in list(_HUBS):
        for organization_id in organizations:
            hub.wake(organization_id)


on_committed(_wake_local)


class PostgresListener:
    """``LISTEN courier_events`` on a dedicated connection; reconnects when it drops."""

    def __init__(
        self,
        settings: Settings,
        hub: StreamHub,
        keys: KeyCache | None = None,
        caches: Sequence[NotifiedCache[Any, Any]] = (),
    ) -> None:
        url = make_url(settings.resolved_database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._hub = hub
        # Also told of the changes to what the process caches: API keys
        # (courier.core.key_cache), consumers' interest (courier.events.interest), ...
        self._caches: list[NotifiedCache[Any, Any]] = [keys] if keys is not None else []
        self._caches.extend(c for c in caches if c not in self._caches)

    def notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        """``<organization id>:<seq>``, comma-separated (one notification per transaction)."""
        for part in payload.split(","):
            organization, _, _seq = part.partition(":")
            try:
                self._hub.wake(uuid.UUID(organization))
            except ValueError:
                log.warning("malformed event notification ignored")

    async def run(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        while True:
            try:
                connection = await asyncpg.connect(self._dsn)
            except Exception:
                log.warning("event listener could not connect; streams poll meanwhile")
                await asyncio.sleep(LISTENER_RETRY_SECONDS)
                continue
            closed = asyncio.Event()
            try:
                connection.add_termination_listener(lambda _c, done=closed: done.set())
                await connection.add_listener(NOTIFY_CHANNEL, self.notified)
                for cache in self._caches:
                    await connection.add_listener(cache.channel, cache.notified)
                for cache in self._caches:
                    cache.set_listening(True)
                self._hub.listening = True
                self._hub.wake_all()  # whatever committed while nobody listened
                while not closed.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), LISTENER_PING_SECONDS)
                    if not closed.is_set():  # a silently dead connection fails this
                        await connection.execute("SELECT 1", timeout=LISTENER_PING_SECONDS)
                log.warning("event listener lost its connection; reconnecting")
            except Exception:
                log.warning("event listener failed; reconnecting", exc_info=True)
            finally:
                self._hub.listening = False
                for cache in self._caches:
                    cache.set_listening(False)
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)
            await asyncio.sleep(LISTENER_RETRY_SECONDS)


def _chain_exit_signals(hub: StreamHub) -> Callable[[], None]:
    """Close the streams as soon as uvicorn is told to stop.

    uvicorn waits for open responses before it shuts the application down, and a stream never
    ends by itself; so its SIGTERM/SIGINT handlers are wrapped to end the streams first.
    Returns the function that puts the handlers back.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    installed: list[tuple[int, Any, Any]] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        owner = getattr(previous, "__self__", None)
        if not callable(previous) or not type(owner).__module__.startswith("uvicorn."):
            continue

        def handler(sig: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has already stopped
                loop.call_soon_threadsafe(hub.close)
            previous(sig, frame)

        signal.signal(signum, handler)
        installed.append((signum, handler, previous))

    def restore() -> None:
        for signum, handler, previous in installed:
            if signal.getsignal(signum) is handler:
                signal.signal(signum, previous)

    return restore


def install(app: Any) -> None:
    """Give ``app`` a stream hub, and on PostgreSQL a listener for other replicas' events."""
    hub = StreamHub()
    _HUBS.add(hub)
    app.state.event_hub = hub
    settings: Settings = app.state.settings

    def caches() -> list[NotifiedCache[Any, Any]]:
        found: list[NotifiedCache[Any, Any]] = [
            interest_cache(app.state.database.engine.sync_engine)
        ]
        if (keys := getattr(app.state, "key_cache", None)) is not None:
            found.append(keys)
        return found

    async def start(app: Any) -> None:
        app.state.event_signals_restore = _chain_exit_signals(hub)
        if settings.is_sqlite:
            # Every process on the file tells the others of its changes through the board.
            board = file_board(app.state.database.engine.sync_engine)
            if board is not None:
                for cache in caches():
                    cache.set_listening(True, board)
        elif app.state.start_background:
            listener = PostgresListener(settings, hub, caches=caches())
            app.state.event_listener_task = asyncio.create_task(
                listener.run(), name="event-listener"
            )

    async def stop(app: Any) -> None:
        hub.close()
        if settings.is_sqlite:
            for cache in caches():
                cache.set_listening(False)
        restore = getattr(app.state, "event_signals_restore", None)
        if restore is not None:
            restore()
        task: asyncio.Task[None] | None = getattr(app.state, "event_listener_task", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)


# --- reading ---------------------------------------------------------------------------------


@dataclass
class Cursor:
    """What a stream has read: its position, and the recent seqs it must not send again."""

    position: int
    floor: int = -1
    seen: set[int] = field(default_factory=set)
    marks: deque[tuple[float, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.floor < 0:
            self.floor = self.position

    def is_new(self, seq: int) -> bool:
        return seq > self.floor and seq not in self.seen

    def note(self, seq: int) -> None:
        if seq > self.floor:
            self.seen.add(seq)
        self.position = max(self.position, seq)

    def settle(self, now: float) -> None:
        """Move the floor to the position of :data:`SETTLE_SECONDS` ago; forget below it."""
        if not self.marks or self.marks[-1][1] != self.position:
            self.marks.append((now, self.position))
        floor = self.floor
        while self.marks and self.marks[0][0] <= now - SETTLE_SECONDS:
            floor = max(floor, self.marks.popleft()[1])
        if floor != self.floor:
            self.floor = floor
            self.seen = {seq for seq in self.seen if seq > floor}


async def newest_seq(session: AsyncSession, organization_id: uuid.UUID) -> int:
    """The resume id of the organization's newest event (0 when it has none): a stream
    that starts after it sends what happens from now on."""
    stmt = scoped(select(func.max(Event.seq)), Event, organization_id)
    return int((await session.execute(stmt)).scalar_one_or_none() or 0)


def sse_message(event: Event, resume_id: int) -> bytes:
    data = orjson.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "resource-type": event.resource_type,
            "resource-id": str(event.resource_id) if event.resource_id else None,
            "occurred-at": format_timestamp(event.occurred_at),
            "data": event.data,
        }
    )
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (resume_id, event.type.encode(), data)


@dataclass
class EventStream:
    """One client's stream: the organization's events it may see, from a cursor on."""

    database: Database
    settings: Settings
    hub: StreamHub
    organization_id: uuid.UUID
    authorization: str
    individual_id: uuid.UUID | None = None
    types: Sequence[str] | None = None
    last_event_id: int | None = None

    def _visible(self, stmt: Select[Any]) -> Select[Any]:
        stmt = scoped(stmt, Event, self.organization_id).where(
            Event.occurred_at >= utcnow() - REPLAY_WINDOW
        )
        if self.individual_id is not None:
            # A cheap pre-filter on the JSON text (ids are quoted in it); checked exactly below.
            # Key events are read too (never sent): they trigger the credentials check.
            pattern = f'%"{self.individual_id}"%'
            stmt = stmt.where(
                or_(
                    cast(Event.individual_ids, String).like(pattern),
                    Event.resource_type == CREDENTIAL_EVENTS,
                )
            )
        return stmt

    def _wanted(self, event: Event) -> bool:
        if self.individual_id is not None and str(self.individual_id) not in event.individual_ids:
            return False
        return self.types is None or matches(self.types, event.type)

    async def start_cursor(self) -> Cursor:
        if self.last_event_id is not None:
            return Cursor(self.last_event_id)
        async with self.database.sessionmaker() as session:
            newest = await newest_seq(session, self.organization_id)
            await session.commit()
        return Cursor(newest)

    async def read(self, cursor: Cursor) -> tuple[list[bytes], bool, bool]:
        """Messages for the events the cursor has not seen; whether more are waiting; and
        whether one of them changed an API key (a revocation must end this stream now)."""
        async with self.database.sessionmaker() as session:
            late: list[int] = []
            if cursor.floor < cursor.position:
                window = self._visible(select(Event.seq)).where(
                    Event.seq > cursor.floor, Event.seq <= cursor.position
                )
                late = [s for s in (await session.execute(window)).scalars() if cursor.is_new(s)]
            newer = (
                self._visible(select(Event))
                .where(Event.seq > cursor.position)
                .order_by(Event.seq)
                .limit(READ_BATCH)
            )
            rows = list((await session.execute(newer)).scalars())
            if late:
                found = self._visible(select(Event)).where(Event.seq.in_(late[:READ_BATCH]))
                rows = list((await session.execute(found)).scalars()) + rows
            await session.commit()
        messages = []
        keys_changed = False
        for event in rows:
            if not cursor.is_new(event.seq):
                continue
            cursor.note(event.seq)
            keys_changed = keys_changed or event.resource_type == CREDENTIAL_EVENTS
            if self._wanted(event):
                messages.append(sse_message(event, cursor.position))
        return messages, len(rows) >= READ_BATCH, keys_changed

    async def _still_authorized(self) -> bool:
        try:
            async with self.database.sessionmaker() as session:
                await authenticate(session, self.settings, self.authorization)
                await session.commit()
        except ApiError:
            return False
        except Exception:
            log.warning("could not re-check a stream's credentials", exc_info=True)
        return True

    async def messages(self) -> AsyncIterator[bytes]:
        """The response body: until the client leaves, its credentials lapse or we stop."""
        wake = self.hub.subscribe(self.organization_id)
        heartbeat = self.settings.event_stream_heartbeat_seconds
        try:
            cursor = await shielded(self.start_cursor())
            yield b"retry: %d\n: connected\n\n" % RETRY_MILLISECONDS
            last_write = time.monotonic()
            recheck_at = last_write + REVALIDATE_SECONDS
            while not self.hub.closed:
                wake.clear()
                try:
                    messages, more, keys_changed = await shielded(self.read(cursor))
                except Exception:
                    log.warning("event stream could not read; retrying", exc_info=True)
                    messages, more, keys_changed = [], False, False
                cursor.settle(time.monotonic())
                now = time.monotonic()
                if keys_changed or now >= recheck_at:
                    # A key of the organization changed (revoked, expired): check this
                    # stream's credentials before it sends anything more.
                    if not await shielded(self._still_authorized()):
                        yield b": the credentials of this stream are no longer valid\n\n"
                        return
                    recheck_at = now + REVALIDATE_SECONDS
                if messages:
                    yield b"".join(messages)
                    last_write = time.monotonic()
                now = time.monotonic()
                if now >= recheck_at:
                    if not await shielded(self._still_authorized()):
                        yield b": the credentials of this stream are no longer valid\n\n"
                        return
                    recheck_at = now + REVALIDATE_SECONDS
                if now - last_write >= heartbeat:
                    yield b": keep-alive\n\n"
                    last_write = now
                if more:
                    continue
                timeout = min(self.hub.poll_seconds, max(0.0, last_write + heartbeat - now))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=timeout)
        finally:
            self.hub.unsubscribe(self.organization_id, wake)
