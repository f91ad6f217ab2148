"""Every index the models declare exists in a database migrated from scratch.

SQLite's batch operations copy a table from its reflected definition, and SQLAlchemy cannot
reflect an index on an expression, so a batch migration of a table silently dropped such an
index (the newest page of a channel then sorted the whole channel). The names are read from
the database's own catalogue, not by reflection, which would skip the same indexes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from courier.app import load_domains
from courier.config import Settings
from courier.core.migrate import alembic_config, upgrade
from courier.models.base import Base

ORDER_INDEX = "ix_messaging_messages_channel_order"


def declared_indexes() -> dict[str, str]:
    load_domains()  # every domain's models
    return {
        str(index.name): table.name
        for table in Base.metadata.tables.values()
        for index in table.indexes
    }


async def database_indexes(app: Any) -> set[str]:
    database = app.state.database
    catalogue = (
        "SELECT name FROM sqlite_master WHERE type = 'index'"
        if database.is_sqlite
        else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    )
    async with database.engine.connect() as connection:
        return {row[0] for row in await connection.execute(text(catalogue))}


async def test_every_declared_index_exists_after_migrating(app: Any) -> None:
    declared = declared_indexes()
    assert "ix_messaging_messages_channel_order" in declared
    missing = sorted(set(declared) - await database_indexes(app))
    assert missing == [], f"indexes the models declare but the migrations lost: {missing}"


async def channel_order_index(url: str) -> str | None:
    """The definition of the list-order index in the database at ``url`` (None: absent)."""
    engine = create_async_engine(url)
    catalogue = (
        "SELECT sql FROM sqlite_master WHERE name = :name"
        if url.startswith("sqlite")
        else "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    )
    try:
        async with engine.connect() as connection:
            found = await connection.execute(text(catalogue), {"name": ORDER_INDEX})
            return found.scalar_one_or_none()
    finally:
        await engine.dispose()


async def drop_order_index(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP INDEX {ORDER_INDEX}"))
    finally:
        await engine.dispose()


def test_a_database_that_lost_the_order_index_gets_it_back(fresh_url: str, tmp_path: Path) -> None:
    """A database the old ``0023_message_analysis`` left without the index (SQLite) has it
    again after upgrading; downgrading ``0023`` keeps it too."""
    settings = Settings(database_url=fresh_url, data_dir=tmp_path)
    config = alembic_config(fresh_url)
    upgrade(settings)
    definition = asyncio.run(channel_order_index(fresh_url))
    assert definition is not None and "2147483647" in definition
    command.downgrade(config, "0023_message_analysis")
    asyncio.run(drop_order_index(fresh_url))  # as the old revision left SQLite databases
    assert asyncio.run(channel_order_index(fresh_url)) is None
    upgrade(settings)
    assert asyncio.run(channel_order_index(fresh_url)) is not None
    command.downgrade(config, "0013")  # 0023's own downgrade (a table copy on SQLite)
    assert asyncio.run(channel_order_index(fresh_url)) is not None
    upgrade(settings)
    assert asyncio.run(channel_order_index(fresh_url)) is not None
