"""Many rows into (or updated in) one table in one statement (a multicast's chunk writes
hundreds per table).

On PostgreSQL ``INSERT ... SELECT * FROM unnest($1::uuid[], $2::varchar[], ...)``: one
parameter per column, whatever the number of rows, so the server parses and plans one small
statement (prepared once and reused) instead of a ``VALUES`` list of thousands of parameters,
and the driver encodes each column as one array. On SQLite the multi-row ``INSERT`` as before.
Every row names the same columns; the caller's rows name their organization (as every Core
insert through the connection does: the tenancy guard reasons about queries, not these).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Dialect,
    Insert,
    Table,
    Text,
    Update,
    bindparam,
    cast,
    column,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

ROWS_PER_STATEMENT = 5000


def insert_of(table: Table, prefix: str) -> Insert:
    """``INSERT`` of one row naming every column of ``table``, each value the parameter
    ``prefix + column`` (None for a column the row leaves empty): a statement built once, for
    a row written in a statement with others (data-modifying CTEs, :mod:`courier.core.direct`)."""
    return insert(table).values({c.key: bindparam(prefix + c.key, type_=c.type) for c in table.c})


def prefixed(table: Table, prefix: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row``'s values as :func:`insert_of`'s parameters (None for the columns it lacks)."""
    return {prefix + c.key: row.get(c.key) for c in table.c}


def _unnest(
    dialect: Dialect, table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> tuple[Any, dict[str, ColumnElement[Any]], dict[str, list[Any]]]:
    """``unnest($1::type[], ...)`` over ``rows``' columns ``names`` (PostgreSQL): the derived
    table, each column as the table's type (JSON cast back from its text), each column's
    values by name."""
    arrays = []
    columns = []
    values: dict[str, list[Any]] = {}
    as_json: set[str] = set()
    for name in names:
        kind = table.c[name].type
        impl = kind.dialect_impl(dialect)
        if isinstance(impl, JSON):
            # A JSON list would read as an array dimension: each value goes as its JSON text
            # (the column type's own serializer, so stored exactly as a VALUES list stores it).
            processor: Any = impl.bind_processor  # untyped in SQLAlchemy's JSON types
            serialize = processor(dialect)
            assert serialize is not None
            as_json.add(name)
            arrays.append(bindparam(f"a_{name}", type_=ARRAY(Text())))
            columns.append(column(name, Text()))
            values[name] = [serialize(row[name]) for row in rows]
        else:
            arrays.append(bindparam(f"a_{name}", type_=ARRAY(kind)))
            columns.append(column(name, kind))
            values[name] = [row[name] for row in rows]
    source = func.unnest(*arrays).table_valued(*columns).render_derived(with_types=False)
    picked: dict[str, ColumnElement[Any]] = {
        name: cast(source.c[name], table.c[name].type) if name in as_json else source.c[name]
        for name in names
    }
    return source, picked, values


def _slices(
    names: Sequence[str], values: Mapping[str, list[Any]], count: int
) -> list[dict[str, list[Any]]]:
    return [
        {f"a_{name}": values[name][start : start + ROWS_PER_STATEMENT] for name in names}
        for start in range(0, count, ROWS_PER_STATEMENT)
    ]


async def insert_rows(
    connection: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (each with the same keys) into ``table``."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        await connection.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    _source, picked, values = _unnest(connection.dialect, table, names, rows)
    stmt = insert(table).from_select(
        names, select(*(picked[name] for name in names)), include_defaults=False
    )
    for params in _slices(names, values, len(rows)):
        await connection.execute(stmt, params)


async def update_rows(
    connection: AsyncConnection,
    stmt: Update,
    key: str,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Set, on each row of ``stmt``'s table whose ``key`` column equals a row's ``key``, that
    row's other columns (each of ``rows`` names the same columns, ``key`` among them).

    ``stmt`` is the ``update(table)`` with the batch's own conditions and the values every row
    gets (e.g. ``scoped(update(table), Model, org).where(...).values(done_at=now)``). On
    PostgreSQL one ``UPDATE ... FROM unnest($1::uuid[], ...) WHERE table.key = src.key``
    per 5,000 rows (the same statement whatever the batch: compiled and prepared once); on
    SQLite one executemany of ``UPDATE ... WHERE key = ?`` (one compiled statement too).
    """
    if not rows:
        return
    table: Any = stmt.table
    names = list(rows[0])
    if connection.dialect.name != "postgresql":
        each = stmt.where(table.c[key] == bindparam(f"k_{key}", type_=table.c[key].type)).values(
            {
                name: bindparam(f"v_{name}", type_=table.c[name].type)
                for name in names
                if name != key
            }
        )
        await connection.execute(
            each,
            [
                {(f"k_{name}" if name == key else f"v_{name}"): row[name] for name in names}
                for row in rows
            ],
        )
        return
    source, picked, values = _unnest(connection.dialect, table, names, rows)
    many = stmt.where(table.c[key] == source.c[key]).values(
        {name: picked[name] for name in names if name != key}
    )
    for params in _slices(names, values, len(rows)):
        await connection.execute(many, params)
