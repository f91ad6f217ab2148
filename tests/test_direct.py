"""Statements run on the driver's connection (courier.core.direct): the same transaction,
values, errors and observers as through SQLAlchemy, on PostgreSQL (asyncpg) and SQLite (the
``sqlite3`` connection, in its thread); statements run together (one call to SQLite's
connection thread)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.db import plans_for_values
from courier.core.direct import Direct, Together, run_together
from courier.models.base import UTCDateTime

METADATA = MetaData()
THINGS = Table(
    f"direct_things_{uuid.uuid4().hex[:8]}",
    METADATA,
    Column("id", Uuid(), primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("count", Integer, nullable=False),
    Column("rate", Float),
    Column("at", UTCDateTime()),
    Column("extra", JSON),
)

INSERT = Direct(
    insert(THINGS).values(
        {c.key: bindparam(c.key, type_=c.type) for c in THINGS.c}  # every column named
    )
)
BY_NAME = Direct(select(THINGS).where(THINGS.c.name == bindparam("name")).limit(1))
BUMP = Direct(
    update(THINGS).where(THINGS.c.count < bindparam("below")).values(count=THINGS.c.count + 1)
)
AT = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
async def database(app: Any) -> AsyncIterator[Any]:
    database = app.state.database
    async with database.engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
    try:
        yield database
    finally:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.drop_all)


def thing(name: str, count: int = 1) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "name": name,
        "count": count,
        "rate": 1.5,
        "at": AT,
        "extra": {"kind": "test", "n": [1, 2]},
    }


async def test_a_direct_statement_is_part_of_the_sessions_transaction(database: Any) -> None:
    async with database.sessionmaker() as session:
        connection = await session.connection()
        await INSERT.execute(connection, thing("rolled-back"))  # the transaction's first
        assert len(await BY_NAME.rows(connection, {"name": "rolled-back"})) == 1
        await session.rollback()
    async with database.sessionmaker() as session:
        connection = await session.connection()
        assert await BY_NAME.rows(connection, {"name": "rolled-back"}) == []
        await INSERT.execute(connection, thing("kept"))
        await session.commit()
    async with database.sessionmaker() as session:
        found = (await session.execute(select(THINGS.c.name))).scalars().all()
        assert found == ["kept"]  # what another session sees


async def test_values_come_back_as_through_sqlalchemy(database: Any) -> None:
    row = thing("typed")
    async with database.sessionmaker() as session:
        connection = await session.connection()
        await INSERT.execute(connection, row)
        (direct,) = await BY_NAME.rows(connection, {"name": "typed"})
        through = (await connection.execute(BY_NAME.statement, {"name": "typed"})).one()
        await session.commit()
    assert tuple(direct) == tuple(through)
    assert direct.id == row["id"] and isinstance(direct.id, uuid.UUID)
    assert direct.at == AT and direct.at.tzinfo is not None
    assert direct.extra == {"kind": "test", "n": [1, 2]}
    assert direct.rate == 1.5 and direct.count == 1


async def test_counts_and_observers(database: Any) -> None:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    async with database.sessionmaker() as session:
        connection = await session.connection()
        for n in range(3):
            await INSERT.execute(connection, thing(f"n{n}", count=n))
        event.listen(database.engine.sync_engine, "before_cursor_execute", record)
        try:
            assert await BUMP.count(connection, {"below": 2}) == 2
        finally:
            event.remove(database.engine.sync_engine, "before_cursor_execute", record)
        await session.commit()
    assert len(seen) == 1 and seen[0].startswith("UPDATE direct_things_")
    # run on the driver, past SQLAlchemy: asyncpg, or the sqlite3 connection in its thread
    assert BUMP._compile(database.engine.dialect) is not None


async def test_an_integrity_violation_is_sqlalchemys_and_the_session_recovers(
    database: Any,
) -> None:
    async with database.sessionmaker() as session:
        connection = await session.connection()
        await INSERT.execute(connection, thing("once"))
        await session.commit()
    session = database.sessionmaker()
    async with session:
        connection = await session.connection()
        with pytest.raises(IntegrityError):
            await INSERT.execute(connection, thing("once"))
        await session.rollback()
        connection = await session.connection()
        await INSERT.execute(connection, thing("twice"))
        await session.commit()
    async with database.sessionmaker() as check:
        names = sorted((await check.execute(select(THINGS.c.name))).scalars().all())
    assert names == ["once", "twice"]


async def test_sessions_from_the_pool_reuse_it_after_direct_statements(database: Any) -> None:
    """Many sessions in turn (the pool hands the same connections back): each begins, runs
    direct statements, commits or rolls back, and the next one starts clean."""
    for n in range(12):
        async with database.sessionmaker() as session:
            assert isinstance(session, AsyncSession)
            connection = await session.connection()
            await INSERT.execute(connection, thing(f"pooled-{n}"))
            if n % 3 == 0:
                await session.rollback()
            else:
                await session.commit()
    async with database.sessionmaker() as check:
        names = (await check.execute(select(THINGS.c.name))).scalars().all()
    assert len(names) == 8


def insert_then_bump(run: Together, row: dict[str, Any]) -> tuple[list[Any], int]:
    """Statements run together, a later one using what an earlier one returned."""
    run.count(INSERT, row)
    (found,) = run.rows(BY_NAME, {"name": row["name"]})
    return [found], run.count(BUMP, {"below": found.count + 1})


async def test_statements_run_together_in_the_transaction(database: Any) -> None:
    """One call to SQLite's connection thread (elsewhere one statement at a time): the
    values as through SQLAlchemy, the observers told of each statement, the session's
    transaction (rolled back: nothing stays)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    row = thing("together", count=4)
    async with database.sessionmaker() as session:
        connection = await session.connection()
        event.listen(database.engine.sync_engine, "before_cursor_execute", record)
        try:
            (found,), bumped = await run_together(
                connection, lambda run: insert_then_bump(run, row)
            )
        finally:
            event.remove(database.engine.sync_engine, "before_cursor_execute", record)
        assert found.id == row["id"] and found.at == AT and found.extra == row["extra"]
        assert bumped == 1
        (now,) = await BY_NAME.rows(connection, {"name": "together"})
        assert now.count == 5
        await session.rollback()
    assert [s.split()[0] for s in seen] == ["INSERT", "SELECT", "UPDATE"]
    async with database.sessionmaker() as session:
        assert await BY_NAME.rows(await session.connection(), {"name": "together"}) == []


async def test_an_error_in_statements_run_together_is_sqlalchemys(database: Any) -> None:
    async with database.sessionmaker() as session:
        connection = await session.connection()
        await INSERT.execute(connection, thing("taken"))
        await session.commit()
    async with database.sessionmaker() as session:
        connection = await session.connection()
        with pytest.raises(IntegrityError):
            await run_together(connection, lambda run: insert_then_bump(run, thing("taken")))
        await session.rollback()
        await INSERT.execute(await session.connection(), thing("after"))
        await session.commit()
    async with database.sessionmaker() as check:
        names = sorted((await check.execute(select(THINGS.c.name))).scalars().all())
    assert names == ["after", "taken"]


BY_COUNT = select(THINGS.c.name).where(THINGS.c.count == bindparam("count")).order_by("name")


async def test_a_replanned_statement_is_planned_for_its_values(database: Any) -> None:
    """``replan``: the same rows, but on PostgreSQL never a statement kept prepared on the
    connection (whose plan PostgreSQL may fix after five runs, whatever the values): an
    unnamed one, planned for each run's values. Without it, asyncpg keeps it prepared."""
    replanned, kept = Direct(BY_COUNT, replan=True), Direct(BY_COUNT)
    async with database.sessionmaker() as session:
        connection = await session.connection()
        for n in range(30):
            await INSERT.execute(connection, thing(f"many-{n:02}", count=7))
        await INSERT.execute(connection, thing("alone", count=1))

        async def prepared() -> list[Any]:
            if database.engine.dialect.name != "postgresql":
                return []
            stmt = "SELECT generic_plans + custom_plans FROM pg_prepared_statements"
            found = await connection.exec_driver_sql(f"{stmt} WHERE statement = $1", (sql,))
            return list(found.scalars())

        compiled = replanned._compile(database.engine.dialect)
        sql = compiled.sql if compiled is not None else ""
        for _ in range(4):
            assert [r.name for r in await replanned.rows(connection, {"count": 1})] == ["alone"]
            many = await replanned.rows(connection, {"count": 7})
            assert [r.name for r in many] == [f"many-{n:02}" for n in range(30)]
        assert await prepared() == []
        for _ in range(4):
            assert [tuple(r) for r in await kept.rows(connection, {"count": 7})] == [
                tuple(r) for r in many
            ]
        if database.engine.dialect.name == "postgresql":
            assert await prepared() == [4]
        await session.rollback()


async def test_statements_in_plans_for_values_are_planned_for_their_values(
    database: Any,
) -> None:
    """Inside ``plans_for_values`` a statement kept prepared (through SQLAlchemy, which
    prepares it with asyncpg) is planned for each run's values, never once for all; after the
    block the setting is the default again. An error inside reaches the caller as itself (the
    rollback undoes the setting)."""
    statement = select(THINGS.c.name.label("planned_name")).where(
        THINGS.c.count == bindparam("count")
    )
    async with database.sessionmaker() as session:
        connection = await session.connection()
        for n in range(8):
            await INSERT.execute(connection, thing(f"planned-{n}", count=n % 2))
        async with plans_for_values(session):
            for n in range(8):
                found = (await session.execute(statement, {"count": n % 2})).scalars().all()
                assert len(found) == 4
        if database.engine.dialect.name == "postgresql":
            plans = await session.execute(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE statement LIKE '%planned_name%'"
                    " AND statement NOT LIKE '%pg_prepared_statements%'"  # this one
                )
            )
            assert [tuple(row) for row in plans] == [(0, 8)]
            shown = await session.execute(text("SHOW plan_cache_mode"))
            assert shown.scalar_one() == "auto"
        with pytest.raises(IntegrityError):
            async with plans_for_values(session):
                await INSERT.execute(await session.connection(), thing("planned-0"))
        await session.rollback()
