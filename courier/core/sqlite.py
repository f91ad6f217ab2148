"""SQLite's driver connection: aiosqlite's, with one hop to its thread per statement.

aiosqlite runs every call on a connection's own thread: each call is a queue put, a thread
wake-up and a callback into the event loop. SQLAlchemy's aiosqlite adapter makes four such
calls for a statement that returns rows (create a cursor, execute, fetch all, close) and
three for one that does not, and a transaction's ``BEGIN IMMEDIATE`` is a statement of its
own: a message post was 37 calls. On a machine whose cores are busy each wake-up waits for a
core, and the request (every request of a process takes its turn at SQLite's one write lock)
waits with it.

:class:`Connection` is aiosqlite's connection with the same behaviour in fewer calls:

- a statement is one call: its cursor is created, executed, its rows (all of them: the
  adapter fetches them all at once anyway) and ``description``, ``rowcount`` and
  ``lastrowid`` read, and closed, in the thread;
- ``BEGIN IMMEDIATE`` (:meth:`Connection.begin_immediate`, from the engine's ``begin``
  event) runs in the same call as the transaction's first statement, just before it, as it
  did just before it in a call of its own; a transaction that ran nothing sends neither it
  nor its ``COMMIT``;
- ``COMMIT`` and ``ROLLBACK`` when there is no transaction and no call is waiting or running
  in the thread (the pool's rollback of a connection returned after its commit) are no
  calls: SQLite had nothing to do for them. (A call whose caller was cancelled still runs, its
  ``BEGIN`` too: the connection's rollback then waits for it, as aiosqlite's did.)

Statements, their order, their transaction and their errors are SQLite's as before.
:func:`in_thread` runs a function on the connection's thread (after a pending ``BEGIN``):
:class:`courier.core.direct.Direct` runs a post's statements in one call with it.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")

BEGIN = "BEGIN IMMEDIATE"


class Connection(aiosqlite.Connection):
    """aiosqlite's connection, one thread call per statement (module docstring)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._thread.daemon = True  # as SQLAlchemy's adapter makes aiosqlite's
        self.begin_pending = False
        # Calls handed to the thread, and calls it has finished: each counted by one thread
        # only. A call whose caller was cancelled still runs (its BEGIN too).
        self._sent = 0
        self._done = 0

    def begin_immediate(self) -> None:
        """Begin a transaction with ``BEGIN IMMEDIATE``, sent with the next call."""
        self.begin_pending = True

    async def _execute(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        run: Any = super()._execute  # (untyped in aiosqlite)
        work: Callable[[], T] = partial(fn, *args, **kwargs)
        if self.begin_pending:
            self.begin_pending = False
            work = partial(_begun, self._conn, work)
        self._sent += 1
        done: T = await run(self._counted, work)
        return done

    def _counted(self, work: Callable[[], T]) -> T:
        try:
            return work()
        finally:
            self._done += 1

    def _idle(self) -> bool:
        """No call waiting or running in the thread, and no transaction open: a COMMIT or
        ROLLBACK would do nothing."""
        return self._sent == self._done and not self._conn.in_transaction

    async def in_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(the sqlite3 connection)`` on the connection's thread, in one call."""
        return await self._execute(fn, self._conn)

    def cursor(self) -> Any:  # aiosqlite's: an awaitable context manager of a cursor
        return aiosqlite.context.Result(self._cursor())

    async def _cursor(self) -> Cursor:
        return Cursor(self)

    async def close(self) -> None:
        self.begin_pending = False
        await super().close()

    async def commit(self) -> None:
        self.begin_pending = False  # (nothing sent since: nothing began)
        if not self._idle():
            await self._execute(self._conn.commit)

    async def rollback(self) -> None:
        self.begin_pending = False
        if not self._idle():
            await self._execute(self._conn.rollback)


def _begun(connection: sqlite3.Connection, then: Callable[[], T]) -> T:
    connection.execute(BEGIN).close()
    return then()


Ran = tuple[list[Any] | None, Any, int, int | None]


def _run(connection: sqlite3.Connection, sql: str, parameters: Any, many: bool) -> Ran:
    """One statement, in the thread: its rows (None: it returns none), description,
    rowcount and lastrowid; the cursor closed."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description is not None else None
        return rows, description, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class Cursor:
    """What SQLAlchemy's adapter asks of an aiosqlite cursor, each statement one call: the
    rows are read as it runs and kept here."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def _run(self, sql: str, parameters: Any, many: bool) -> Cursor:
        ran: Ran = await self._connection._execute(
            _run, self._connection._conn, sql, parameters, many
        )
        rows, self.description, self.rowcount, self.lastrowid = ran
        self._rows = deque(rows or ())
        return self

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> Cursor:
        return await self._run(sql, () if parameters is None else parameters, False)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> Cursor:
        return await self._run(sql, parameters, True)

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    async def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


async def connect(database: str, **kwargs: Any) -> Connection:
    """A :class:`Connection` to ``database`` (``sqlite3.connect``'s arguments)."""
    connection = Connection(partial(sqlite3.connect, database, **kwargs))
    await connection  # starts its thread, connects there
    return connection
