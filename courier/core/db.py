"""Database engine and sessions: SQLite (WAL) by default, PostgreSQL in production.

A request gets one session that commits exactly once, after the endpoint has run, so a change,
its audit row and the jobs it enqueues land together or not at all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from courier.config import Settings

AfterCommit = Callable[[], Coroutine[Any, Any, None]]


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = settings.resolved_database_url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(
                url, connect_args={"timeout": 30}, json_deserializer=json_loads
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            # aiosqlite starts transactions lazily; BEGIN IMMEDIATE on write sessions avoids the
            # SQLITE_BUSY upgrade deadlock between two readers that both decide to write.
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            connect_args: dict[str, Any] = {}
            if url.startswith("postgresql+asyncpg"):
                # Requests run short queries: compiling one with LLVM (above jit_above_cost)
                # takes 10-40 ms, more than the query itself.
                connect_args["server_settings"] = {"jit": "off"}
            self.engine = create_async_engine(
                url,
                pool_size=10,
                max_overflow=20,
                pool_pre_ping=True,
                connect_args=connect_args,
                json_deserializer=json_loads,
            )
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
        async with self.engine.connect() as conn:
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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Take over transaction control from the sqlite3 module so BEGIN IMMEDIATE is ours to emit.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


async def commit(session: AsyncSession) -> None:
    """Commit the unit of work, then run what waited for it (events, notifications).

    ``before_commit`` hooks run inside the transaction (their writes land with the change);
    ``after_commit`` hooks run once it has committed.
    """
    for early in session.info.pop("before_commit", []):
        await early()
    hooks: list[AfterCommit] = session.info.pop("after_commit", [])
    await session.commit()
    for hook in hooks:
        await hook()


def before_commit(session: AsyncSession, hook: AfterCommit) -> None:
    """Run ``hook`` inside the transaction, just before it commits."""
    session.info.setdefault("before_commit", []).append(hook)


def after_commit(session: AsyncSession, hook: AfterCommit) -> None:
    """Run ``hook`` once the session's transaction has committed (never if it rolls back)."""
    session.info.setdefault("after_commit", []).append(hook)
