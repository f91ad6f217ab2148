"""Every SQLite connection of the engine is set up the same way: WAL, foreign keys, NORMAL
sync, the busy timeout, and a page cache of ``SQLITE_CACHE_KIB`` (issue 17, memory)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from courier.core.db import SQLITE_CACHE_KIB, Database
from tests.conftest import make_settings


async def test_every_connection_gets_the_pragmas(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}"
    database = Database(make_settings(url, tmp_path, database_statement_timeout_seconds=7))
    try:
        for _ in range(2):  # a new connection after the pool is emptied: set up the same
            async with database.engine.connect() as conn:
                values = [
                    (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                    for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
                ]
                assert values == ["wal", 1, 1, 7000]
                cache = (await conn.execute(text("PRAGMA cache_size"))).scalar()
                assert cache == -SQLITE_CACHE_KIB  # negative: KiB
            await database.engine.dispose()
    finally:
        await database.dispose()
