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
- other dialects (SQLite) and statements a direct run cannot take (expanding ``IN``
  parameters) run through SQLAlchemy.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

Processor = Callable[[Any], Any] | None


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

    def __init__(self, statement: Executable) -> None:
        self.statement: Any = statement  # a Core statement or text(): both compile
        self._compiled: dict[str, _Compiled | None] = {}

    def _compile(self, dialect: Dialect) -> _Compiled | None:
        key = f"{dialect.name}+{dialect.driver}"
        if key in self._compiled:
            return self._compiled[key]
        compiled: _Compiled | None = None
        if dialect.driver == "asyncpg":
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
        self._compiled[key] = compiled
        return compiled

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
        if compiled is None or fairy is None or not await _in_transaction(adapter):
            result: CursorResult[Any] = await connection.execute(self.statement, dict(params))
            return result
        assert sync is not None
        fixed = compiled.fixed
        args = [
            value if process is None else process(value)
            for value, process in zip(
                (params[name] if name in params else fixed[name] for name in compiled.names),
                compiled.binds,
                strict=True,
            )
        ]
        if sync._has_events or sync.engine._has_events:
            for listener in sync.dispatch.before_cursor_execute:
                listener(sync, None, compiled.sql, tuple(args), None, False)
        driver: Any = fairy.driver_connection
        try:
            if count:
                status: str = await driver.execute(compiled.sql, *args)
                return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0
            if compiled.results is None:
                # (a text() statement names no result columns: its rows come as asyncpg's)
                attributes = (await driver.prepare(compiled.sql)).get_attributes()
                compiled.results = tuple(
                    type_._cached_result_processor(connection.dialect, attribute.type.oid)
                    for type_, attribute in zip(compiled.columns, attributes, strict=False)
                )
            records = await driver.fetch(compiled.sql, *args)
        except Exception as error:
            raise _translated(error, compiled.sql, args) from error
        processors = compiled.results
        make = compiled.row
        if make is None:
            return records  # type: ignore[no-any-return]
        if not any(processors):
            return [make._make(record) for record in records]
        return [
            make._make(
                value if process is None else process(value)
                for value, process in zip(record, processors, strict=True)
            )
            for record in records
        ]


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
