"""Hot statements run on the driver's connection, past SQLAlchemy's execution layer.

A statement through ``AsyncConnection.execute`` costs about 60 µs of Python besides the
database's work (the compiled-cache look-up, the execution context, the cursor adapter, the
greenlet hop, the result object): against 15 to 20 µs for asyncpg alone, measured on this
project's machines. For the few statements every text accept or message post runs, a
:class:`Direct` statement is compiled once per dialect (its SQL, its parameters' order and
bind processors, its result columns' processors), and on PostgreSQL through asyncpg runs
on the session's own connection and transaction with ``fetch``. Everything else stays as it
was:

- the same transaction: SQLAlchemy's asyncpg adapter sends the ``BEGIN`` of the transaction
  SQLAlchemy began on the connection's first statement; a direct statement that comes first
  has the adapter send it (the adapter's own method), so it and everything after it are one
  transaction, committed or rolled back by SQLAlchemy as before;
- the same values: each parameter passes through its type's bind processor and each result
  column through its result processor, as SQLAlchemy would have done;
- the same errors: asyncpg's errors reach callers as SQLAlchemy's (an integrity violation is
  :class:`sqlalchemy.exc.IntegrityError`, so a request's 409 is unchanged);
- the same observers: ``before_cursor_execute`` listeners of the engine (the tests' statement
  counts) see the statement;
- other drivers, statements a direct run cannot take (expanding ``IN`` parameters; on SQLite
  ``text()``) and a connection not in a transaction yet run through SQLAlchemy.

asyncpg keeps each statement prepared on its connection, and after five runs PostgreSQL may
settle on one *generic* plan for it, made without the parameters' values. For a statement
whose best plan depends on how many rows its parameters select (a person in 5 channels or
in 5,000), ``Direct(..., replan=True)`` runs it as an unnamed statement instead, which
PostgreSQL plans for the values it is given, every time (one more round trip: the statement
is parsed, then run).

On SQLite (:mod:`courier.core.sqlite`'s connection, the engine's) a direct statement is one
call to the connection's thread, run there on the ``sqlite3`` connection (SQLAlchemy's
execution layer and its cursor adapter left out), in the transaction that thread's
connection is in (the session's: its ``BEGIN IMMEDIATE`` goes with the first statement);
errors are SQLAlchemy's as above (``sqlite3`` errors wrapped as SQLAlchemy wraps them).
:func:`run_together` runs several statements, later ones using what earlier ones returned,
in one such call: a message post's writes (courier.domains.messaging.repository); elsewhere
it runs them one by one through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeEngine

from courier.core import sqlite

Processor = Callable[[Any], Any] | None
T = TypeVar("T")
_DRIVERS = ("asyncpg", "aiosqlite")


@dataclass
class _Compiled:
    sql: str
    names: tuple[str, ...]
    binds: tuple[Processor, ...]
    columns: tuple[TypeEngine[Any], ...]
    fixed: dict[str, Any]
    # Rows by position and by column name, as SQLAlchemy's (None: a text() statement's rows
    # come as asyncpg's records, by position and by key)
    row: Any
    # The result columns' processors: some depend on the type the database reports for the
    # column (e.g. a float), so they are worked out on the first run, from its prepared form.
    results: tuple[Processor, ...] | None = None


class Direct:
    """A Core statement run on the driver's connection where it can be (module docstring)."""

    def __init__(self, statement: Executable, *, replan: bool = False) -> None:
        self.statement: Any = statement  # a Core statement or text(): both compile
        self.replan = replan  # PostgreSQL plans it for each run's values (module docstring)
        self._compiled: dict[str, _Compiled | None] = {}

    def _compile(self, dialect: Dialect) -> _Compiled | None:
        key = f"{dialect.name}+{dialect.driver}"
        if key in self._compiled:
            return self._compiled[key]
        compiled: _Compiled | None = None
        on_sqlite = dialect.driver == "aiosqlite"
        # (SQLite: a text() statement's rows would come by position only)
        text = isinstance(self.statement, TextClause)
        if dialect.driver in _DRIVERS and not (on_sqlite and text):
            sql = self.statement.compile(dialect=dialect)
            assert isinstance(sql, SQLCompiler)
            names = tuple(sql.positiontup or ())
            binds = [sql.binds[name] for name in names]
            if not any(bind.expanding or bind.literal_execute for bind in binds):
                compiled = _Compiled(
                    sql.string,
                    names,
                    tuple(bind.type._cached_bind_processor(dialect) for bind in binds),
                    tuple(column[3] for column in sql._result_columns),
                    # Values the statement carries itself (a LIMIT's): bound as given.
                    {
                        name: bind.effective_value
                        for name, bind in zip(names, binds, strict=True)
                        if not bind.required
                    },
                    namedtuple("Row", [c[0] for c in sql._result_columns], rename=True)
                    if sql._result_columns
                    else None,
                )
                if on_sqlite:  # (SQLite's processors depend on the column type alone)
                    compiled.results = tuple(
                        type_._cached_result_processor(dialect, None) for type_ in compiled.columns
                    )
        self._compiled[key] = compiled
        return compiled

    def _args(self, compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
        """The statement's parameters in order, each through its bind processor."""
        fixed = compiled.fixed
        return [
            value if process is None else process(value)
            for value, process in zip(
                (params[name] if name in params else fixed[name] for name in compiled.names),
                compiled.binds,
                strict=True,
            )
        ]

    async def rows(self, connection: AsyncConnection, params: Mapping[str, Any]) -> Sequence[Any]:
        """The statement's rows (none for a statement that returns none), by position and by
        column name."""
        ran = await self._run(connection, params, count=False)
        if isinstance(ran, CursorResult):
            return ran.all()
        assert not isinstance(ran, int)
        return ran

    async def execute(self, connection: AsyncConnection, params: Mapping[str, Any]) -> None:
        await self._run(connection, params, count=False)

    async def count(self, connection: AsyncConnection, params: Mapping[str, Any]) -> int:
        """How many rows the statement (an UPDATE or DELETE) changed."""
        ran = await self._run(connection, params, count=True)
        if isinstance(ran, CursorResult):
            return int(ran.rowcount)
        assert isinstance(ran, int)
        return ran

    async def _run(
        self, connection: AsyncConnection, params: Mapping[str, Any], *, count: bool
    ) -> CursorResult[Any] | Sequence[Sequence[Any]] | int:
        compiled = self._compile(connection.dialect)
        sync = connection.sync_connection
        fairy = sync.connection if sync is not None else None
        adapter = fairy.dbapi_connection if fairy is not None else None
        driver: Any = fairy.driver_connection if fairy is not None else None
        run: Any = None
        if isinstance(driver, sqlite.Connection) and compiled is not None:
            assert sync is not None
            if sync.in_transaction():
                run = self._run_sqlite
        elif compiled is not None and fairy is not None and await _in_transaction(adapter):
            run = self._run_asyncpg
        if run is not None:
            assert sync is not None and compiled is not None
            args = self._args(compiled, params)
            _tell(sync, compiled.sql, args)
            ran: Sequence[Sequence[Any]] | int = await run(
                sync, driver, compiled, args, count=count
            )
            return ran
        result: CursorResult[Any] = await connection.execute(self.statement, dict(params))
        return result

    async def _run_sqlite(
        self,
        sync: Connection,
        driver: sqlite.Connection,
        compiled: _Compiled,
        args: list[Any],
        *,
        count: bool,
    ) -> Sequence[Sequence[Any]] | int:
        ran = await driver.in_thread(partial(_sqlite_run, compiled.sql, args, sync.dialect))
        records, rowcount = ran
        return rowcount if count else _made(compiled, records)

    async def _run_asyncpg(
        self,
        sync: Connection,
        driver: Any,
        compiled: _Compiled,
        args: list[Any],
        *,
        count: bool,
    ) -> Sequence[Sequence[Any]] | int:
        try:
            if count:
                status: str = await driver.execute(compiled.sql, *args)
                return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0
            # Replanned: an unnamed statement, parsed now and planned for these values (never
            # a generic plan, never kept prepared). Otherwise asyncpg's, kept on the connection.
            prepared = await driver.prepare(compiled.sql, name="") if self.replan else None
            if compiled.results is None:
                # The result columns' types, known once the statement is prepared, once per
                # process: unnamed, so nothing is left prepared (a text() statement names no
                # result columns: its rows come as asyncpg's).
                described = prepared or await driver.prepare(compiled.sql, name="")
                compiled.results = tuple(
                    type_._cached_result_processor(sync.dialect, attribute.type.oid)
                    for type_, attribute in zip(
                        compiled.columns, described.get_attributes(), strict=False
                    )
                )
            if prepared is not None:
                records = await prepared.fetch(*args)
            else:
                records = await driver.fetch(compiled.sql, *args)
        except Exception as error:
            raise _translated(error, compiled.sql, args) from error
        return _made(compiled, records)


def _made(compiled: _Compiled, records: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """The driver's rows as SQLAlchemy's: each value through its result processor, by
    position and by column name."""
    processors = compiled.results
    make = compiled.row
    if make is None:
        return records
    if not processors or not any(processors):
        return [make._make(record) for record in records]
    return [
        make._make(
            value if process is None else process(value)
            for value, process in zip(record, processors, strict=True)
        )
        for record in records
    ]


def _tell(sync: Connection, sql: str, args: Sequence[Any]) -> None:
    """The engine's ``before_cursor_execute`` listeners hear of the statement."""
    if sync._has_events or sync.engine._has_events:
        for listener in sync.dispatch.before_cursor_execute:
            listener(sync, None, sql, tuple(args), None, False)


def _sqlite_run(
    sql: str, args: Sequence[Any], dialect: Dialect, raw: sqlite3.Connection
) -> tuple[list[Any], int]:
    """In SQLite's connection thread: the statement's rows and row count; its error as
    SQLAlchemy's."""
    cursor = raw.cursor()
    try:
        cursor.execute(sql, args)
        return cursor.fetchall(), cursor.rowcount
    except sqlite3.Error as error:
        raise sa_exc.DBAPIError.instance(
            sql, args, error, sqlite3.Error, hide_parameters=True, dialect=dialect
        ) from error
    finally:
        cursor.close()


class Together:
    """What :func:`run_together`'s function runs its statements with: each call runs one
    :class:`Direct` statement now and returns as :meth:`Direct.rows` / :meth:`Direct.count`
    would."""

    def rows(self, direct: Direct, params: Mapping[str, Any]) -> Sequence[Any]:
        raise NotImplementedError

    def count(self, direct: Direct, params: Mapping[str, Any]) -> int:
        raise NotImplementedError


class _InThread(Together):
    """On SQLite's connection thread, on the ``sqlite3`` connection."""

    def __init__(self, sync: Connection, raw: sqlite3.Connection) -> None:
        self.sync = sync
        self.raw = raw
        self.ran: list[tuple[str, list[Any]]] = []

    def _run(self, direct: Direct, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled = direct._compile(self.sync.dialect)
        if compiled is None:
            raise ValueError("a statement run together must compile for the driver")
        args = direct._args(compiled, params)
        self.ran.append((compiled.sql, args))
        return compiled, _sqlite_run(compiled.sql, args, self.sync.dialect, self.raw)

    def rows(self, direct: Direct, params: Mapping[str, Any]) -> Sequence[Any]:
        compiled, (records, _count) = self._run(direct, params)
        return _made(compiled, records)

    def count(self, direct: Direct, params: Mapping[str, Any]) -> int:
        _compiled, (_records, rowcount) = self._run(direct, params)
        return int(rowcount)


class _Through(Together):
    """Through SQLAlchemy's (sync) connection, one statement at a time."""

    def __init__(self, sync: Connection) -> None:
        self.sync = sync

    def rows(self, direct: Direct, params: Mapping[str, Any]) -> Sequence[Any]:
        return self.sync.execute(direct.statement, dict(params)).all()

    def count(self, direct: Direct, params: Mapping[str, Any]) -> int:
        return int(self.sync.execute(direct.statement, dict(params)).rowcount)


async def run_together(connection: AsyncConnection, work: Callable[[Together], T]) -> T:
    """``work(together)``, whose statements run one after another in the connection's
    transaction, each able to use what the earlier ones returned: on SQLite in one call to the
    connection's thread (the engine's observers hear of them once it returns), elsewhere
    through SQLAlchemy. ``work`` runs no other code that waits."""
    sync = connection.sync_connection
    fairy = sync.connection if sync is not None else None
    driver = fairy.driver_connection if fairy is not None else None
    if sync is None or not isinstance(driver, sqlite.Connection) or not sync.in_transaction():
        return await connection.run_sync(lambda through: work(_Through(through)))

    def in_thread(raw: sqlite3.Connection) -> tuple[T, list[tuple[str, list[Any]]]]:
        together = _InThread(sync, raw)
        try:
            return work(together), together.ran
        except BaseException as error:
            error.__dict__["courier_ran"] = together.ran
            raise

    try:
        done, ran = await driver.in_thread(in_thread)
    except BaseException as error:
        for sql, args in error.__dict__.pop("courier_ran", ()):
            _tell(sync, sql, args)
        raise
    for sql, args in ran:
        _tell(sync, sql, args)
    return done


async def _in_transaction(adapter: Any) -> bool:
    """Whether the driver connection is in the transaction SQLAlchemy began for it, which
    SQLAlchemy's asyncpg adapter starts (``BEGIN``) only on the connection's first statement:
    if this is that statement, it starts it here, as that statement would have. False when the
    adapter is not the one this was written against (then SQLAlchemy runs the statement)."""
    if getattr(adapter, "_transaction", None) is not None:
        return True
    start = getattr(adapter, "_start_transaction", None)
    if start is None or getattr(adapter, "isolation_level", None) == "autocommit":
        return False
    await start()
    return getattr(adapter, "_transaction", None) is not None


def _translated(error: Exception, sql: str, args: list[Any]) -> Exception:
    """asyncpg's error as SQLAlchemy's: what SQLAlchemy's own execution would have raised."""
    import asyncpg  # type: ignore[import-untyped]

    if not isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError):
        return error
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return sa_exc.IntegrityError(sql, args, error, hide_parameters=True)
    return sa_exc.DBAPIError(sql, args, error, hide_parameters=True)
