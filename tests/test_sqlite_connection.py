"""SQLite's driver connection (courier.core.sqlite): aiosqlite's, with a statement one call to
its thread, ``BEGIN IMMEDIATE`` sent with the transaction's first statement, and nothing sent
for a COMMIT or ROLLBACK with no transaction open; and a call whose caller was cancelled
still leaves the connection clean once rolled back."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from courier.core import sqlite


class Counted(sqlite.Connection):
    calls = 0

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await super()._execute(fn, *args, **kwargs)


async def connected(path: Path) -> Counted:
    connection = Counted(lambda: sqlite3.connect(str(path), isolation_level=None, timeout=0.2))
    await connection
    return connection


async def test_one_call_per_statement_and_begin_with_the_first(tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    connection = await connected(path)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("CREATE TABLE t (n INTEGER)")
        connection.calls = 0
        connection.begin_immediate()
        assert not connection.in_transaction  # nothing sent yet
        cursor = await connection.cursor()
        await cursor.execute("INSERT INTO t VALUES (?), (?) RETURNING n", (1, 2))
        assert connection.in_transaction and connection.calls == 1  # BEGIN with it
        assert await cursor.fetchall() == [(1,), (2,)] and cursor.rowcount == 2
        await cursor.execute("SELECT n FROM t ORDER BY n")
        assert await cursor.fetchone() == (1,)
        assert await cursor.fetchmany(5) == [(2,)]
        await cursor.close()
        assert connection.calls == 2
        await connection.commit()
        assert connection.calls == 3 and not connection.in_transaction
        await connection.rollback()  # nothing open: nothing to send
        connection.begin_immediate()
        await connection.commit()  # began, ran nothing: nothing was sent
        assert connection.calls == 3
    finally:
        await connection.close()


async def test_a_cancelled_call_still_runs_and_the_rollback_waits_for_it(tmp_path: Path) -> None:
    path = tmp_path / "cancel.db"
    connection = await connected(path)
    other = sqlite3.connect(str(path), isolation_level=None, timeout=0.2)
    try:
        busy = asyncio.ensure_future(connection.in_thread(lambda _raw: time.sleep(0.3)))
        await asyncio.sleep(0.05)
        connection.begin_immediate()
        queued = asyncio.ensure_future(connection.in_thread(lambda _raw: None))  # with BEGIN
        await asyncio.sleep(0.01)
        queued.cancel()  # (a request cancelled: its connection goes back to the pool)
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert not connection.in_transaction  # the BEGIN has not run yet, but it will
        await connection.rollback()  # waits for it, then rolls back
        await busy
        assert not connection.in_transaction
        other.execute("BEGIN IMMEDIATE")  # the write lock is free
        other.execute("ROLLBACK")
    finally:
        other.close()
        await connection.close()
