"""Database engine and sessions: SQLite (WAL) by default, PostgreSQL in production.

A request gets one session that commits exactly once, after the endpoint has run, so a change,
its audit row and the jobs it enqueues land together or not at all.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from courier.config import Settings
from courier.core import sqlite

AfterCommit = Callable[[], Coroutine[Any, Any, None]]


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = settings.resolved_database_url
        self.is_sqlite = url.startswith("sqlite")
        # hide_parameters: a failing statement's message (and so any log line or traceback
        # that carries it) never shows the bound values, which are patient data.
        if self.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            busy = settings.database_statement_timeout_seconds
            self.engine: AsyncEngine = create_async_engine(
                url,
                # aiosqlite's connection in fewer calls to its thread (courier.core.sqlite)
                async_creator=lambda: _sqlite_connect(self.engine, busy),
                json_deserializer=json_loads,
                hide_parameters=True,
            )
            event.listen(
                self.engine.sync_engine,
                "connect",
                lambda conn, _record: _sqlite_pragmas(conn, int(busy * 1000)),
            )
            # aiosqlite starts transactions lazily; BEGIN IMMEDIATE on write sessions avoids the
            # SQLITE_BUSY upgrade deadlock between two readers that both decide to write. It
            # is sent with the transaction's first statement (courier.core.sqlite).
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            connect_args: dict[str, Any] = {}
            if url.startswith("postgresql+asyncpg"):
                # Requests run short queries: compiling one with LLVM (above jit_above_cost)
                # takes 10-40 ms, more than the query itself.
                connect_args["server_settings"] = {"jit": "off"}
                # A database that drops packets never refuses: without these a request hangs
                # for minutes; with them it fails fast (503) and is retried by its client.
                connect_args["timeout"] = settings.database_connect_timeout_seconds
                connect_args["command_timeout"] = settings.database_statement_timeout_seconds
            self.engine = create_async_engine(
                url,
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_max_overflow,
                pool_timeout=settings.database_pool_timeout_seconds,
                connect_args=connect_args,
                json_deserializer=json_loads,
                hide_parameters=True,
            )
            _ping_when_idle(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Requests of this process take turns at the database, in arrival order
        # (request_concurrency at once). SQLite: one, as every request's transaction holds the
        # write lock (BEGIN IMMEDIATE); waiting here rather than in SQLite's busy handler,
        # which sleeps up to 100 ms between tries and lets newcomers overtake, took the p99 of
        # 16 concurrent clients from 3 s to 0.6 s. PostgreSQL: 16, for a CPU-bound process; 30
        # at once (the pool's size) cost a third of the throughput at 64 clients, and the pool
        # hands connections over unfairly (newcomers overtake the waiting).
        self._turns = asyncio.Semaphore(1 if self.is_sqlite else settings.request_concurrency)

    @asynccontextmanager
    async def request_turn(self) -> AsyncIterator[None]:
        """Wait for a request's turn at the database (see ``request_concurrency``)."""
        async with self._turns:
            yield

    async def ping(self) -> None:
        """``SELECT 1``, within the connect and statement timeouts (for ``/readyz``)."""
        limit = (
            self.settings.database_connect_timeout_seconds
            + self.settings.database_statement_timeout_seconds
        )
        async with asyncio.timeout(limit), self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def json_loads(text: str | bytes) -> Any:
    """JSON columns as read: orjson (a page of messages reads hundreds of small documents),
    and the standard library for what orjson refuses but it accepts (NaN, integers beyond
    64 bits), so every stored value reads back as before."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


# A pooled connection is pinged before use only when it has been idle this long: a busy
# process (requests, a worker's claims) does not pay a round trip per checkout, and one that
# sat idle (a server restarted meanwhile, a firewall dropped it) still finds out before use.
# A connection lost while in steady use fails its statement once (503, "database
# unavailable"); SQLAlchemy then invalidates the pool and the next checkout connects afresh.
PING_AFTER_IDLE_SECONDS = 10.0
_IDLE_SINCE = "courier_idle_since"


def _ping_when_idle(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # a new connection, or one in steady use
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and hands out a fresh one instead.
            raise sa_exc.DisconnectionError("the pooled connection was lost") from exc

    event.listen(sync_engine, "checkin", checkin)
    event.listen(sync_engine, "checkout", checkout)


# Each SQLite connection's page cache, in KiB (SQLite's default is 2,000). A pooled connection
# is a thread of its own and fills its cache in its thread's malloc arena, which keeps the
# memory once freed: with the default a server worker held ~3 MB per connection (5 to 7 of
# them under mixed load), ~17 MB of its growth. In WAL mode a connection's cache is dropped
# whenever another connection has committed since its last read, so with posts arriving the
# cache only ever serves the transaction that filled it; 512 KiB holds a request's pages
# (issue 17, memory: ~1.7 MB per connection).
SQLITE_CACHE_KIB = 512


def _sqlite_pragmas(dbapi_conn: Any, busy_timeout_ms: int) -> None:
    # Take over transaction control from the sqlite3 module so BEGIN IMMEDIATE is ours to emit.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")  # negative: KiB, not pages
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.close()


async def _sqlite_connect(engine: AsyncEngine, busy_timeout: float) -> sqlite.Connection:
    """A :class:`courier.core.sqlite.Connection` to the engine's file (what SQLAlchemy's
    dialect makes of the URL), waiting up to ``busy_timeout`` seconds for a lock."""
    args, options = engine.sync_engine.dialect.create_connect_args(engine.sync_engine.url)
    return await sqlite.connect(*args, **{**options, "timeout": busy_timeout})


def _sqlite_begin(conn: Connection) -> None:
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite.Connection)
    driver.begin_immediate()
    # (statement observers, e.g. the tests' counts, see it as before)
    if conn._has_events or conn.engine._has_events:
        for listener in conn.dispatch.before_cursor_execute:
            listener(conn, None, sqlite.BEGIN, (), None, False)


async def commit(session: AsyncSession) -> None:
    """Commit the unit of work, then run what waited for it (events, notifications).

    ``before_commit`` hooks run inside the transaction (their writes land with the change);
    ``after_commit`` hooks run once it has committed.
    """
    # A hook may register another (an event published by one): run until none is left.
    while early_hooks := session.info.pop("before_commit", None):
        for early in early_hooks:
            await early()
    hooks: list[AfterCommit] = session.info.pop("after_commit", [])
    await session.commit()
    for hook in hooks:
        await hook()


def is_postgres(session: AsyncSession) -> bool:
    """Whether the session's database is PostgreSQL (the other one is SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


# What PostgreSQL plans statements with inside :func:`plans_for_values`, and after it.
CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"
DEFAULT_PLANS = "SET LOCAL plan_cache_mode TO DEFAULT"


@asynccontextmanager
async def plans_for_values(session: AsyncSession) -> AsyncIterator[None]:
    """Inside the block PostgreSQL plans each statement for the values it runs with.

    asyncpg keeps statements prepared on their connection, and after five runs PostgreSQL may
    settle on one generic plan, made without the values. For a statement whose best plan
    depends on how many rows a value selects (a person in 5 channels or in 5,000), that plan
    is right for one and wrong for the other. Here ``plan_cache_mode`` is ``force_custom_plan``
    for the session's transaction, and back to the default after the block; an error inside
    leaves the transaction to its rollback, which undoes the setting. For a statement built
    per request through SQLAlchemy (a :class:`~courier.core.direct.Direct` statement has
    ``replan``). Two more round trips; nothing on SQLite."""
    if not is_postgres(session):
        yield
        return
    connection = await session.connection()
    await connection.exec_driver_sql(CUSTOM_PLANS)
    yield
    await connection.exec_driver_sql(DEFAULT_PLANS)


def before_commit(session: AsyncSession, hook: AfterCommit) -> None:
    """Run ``hook`` inside the transaction, just before it commits."""
    session.info.setdefault("before_commit", []).append(hook)


def after_commit(session: AsyncSession, hook: AfterCommit) -> None:
    """Run ``hook`` once the session's transaction has committed (never if it rolls back)."""
    session.info.setdefault("after_commit", []).append(hook)


# --- the database is down: 503, not 500 -------------------------------------------------------

# PostgreSQL SQLSTATEs that mean "not now" rather than "wrong": connection exceptions (08…),
# too many connections, shutting down or starting, a statement cancelled by its timeout.
_UNAVAILABLE_SQLSTATES = ("08", "53300", "57P01", "57P02", "57P03", "57014")
_UNAVAILABLE_SQLITE = frozenset(
    {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL"}
)
_UNREACHABLE_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ETIMEDOUT, errno.EPIPE}
)
_UNAVAILABLE_SQLITE_TEXT = ("database is locked", "unable to open database", "disk i/o error")


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database cannot be reached right now:
    refused or dropped connections, timeouts (connect, statement, pool), a busy SQLite file."""

    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sa_exc.TimeoutError | TimeoutError | ConnectionError):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, socket.gaierror) or (
            isinstance(current, OSError) and current.errno in _UNREACHABLE_ERRNOS
        ):
            return True
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        name = getattr(current, "sqlite_errorname", None)
        if isinstance(name, str) and name in _UNAVAILABLE_SQLITE:
            return True
        module = type(current).__module__
        if module.startswith(("sqlite3", "aiosqlite")) and str(current).lower().startswith(
            _UNAVAILABLE_SQLITE_TEXT
        ):
            return True
        if module.startswith("asyncpg") and type(current).__name__ in (
            "ConnectionDoesNotExistError",
            "ConnectionFailureError",
            "CannotConnectNowError",
        ):
            return True
        pending.extend([current.__cause__, current.__context__, getattr(current, "orig", None)])
    return False
