"""Many rows into one table in one statement (a multicast's chunk writes hundreds per table).

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

from sqlalchemy import JSON, Table, Text, bindparam, cast, column, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

ROWS_PER_STATEMENT = 5000


async def insert_rows(
    connection: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (each with the same keys) into ``table``."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        await connection.execute(insert(table), list(rows))
        return
    dialect = connection.dialect
    names = list(rows[0])
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
    picked = [
        cast(source.c[name], table.c[name].type) if name in as_json else source.c[name]
        for name in names
    ]
    stmt = insert(table).from_select(names, select(*picked), include_defaults=False)
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        await connection.execute(
            stmt,
            {f"a_{name}": values[name][start : start + ROWS_PER_STATEMENT] for name in names},
        )
