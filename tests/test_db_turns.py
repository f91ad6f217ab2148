"""Requests take turns at the database: at most ``request_concurrency`` at once per process
(one on SQLite), the others in arrival order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event, text

from courier.config import Settings
from courier.core.db import Database
from tests.conftest import make_settings


async def holders_and_order(database: Database, requests: int) -> tuple[int, list[int]]:
    inside = 0
    most = 0
    order: list[int] = []

    async def request(n: int) -> None:
        nonlocal inside, most
        async with database.request_turn():
            inside += 1
            most = max(most, inside)
            order.append(n)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(request(n) for n in range(requests)))
    return most, order


async def test_turns(database_url: str, data_dir: Path) -> None:
    settings = make_settings(database_url, data_dir, request_concurrency=3)
    database = Database(settings)
    try:
        most, order = await holders_and_order(database, 12)
    finally:
        await database.dispose()
    assert most == (1 if database.is_sqlite else 3)
    assert order == list(range(12))  # first come, first served


async def test_the_default_pool_keeps_every_connection_the_turns_use(
    database_url: str, data_dir: Path
) -> None:
    """With the default settings, requests in their turns (and the embedded worker's jobs)
    each holding a connection never need one beyond the pool: under a steady load the process
    opens its connections once, not again for every busy moment (a connection beyond the pool
    is closed when it is returned, and the next busy moment opens a new one: a PostgreSQL
    backend started, every statement prepared again)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a pool of server connections is PostgreSQL's")
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    settings = make_settings(
        database_url,
        data_dir,
        **{
            name: defaults[name]
            for name in (
                "database_pool_size",
                "database_max_overflow",
                "request_concurrency",
                "job_concurrency",
            )
        },
    )
    holders = settings.request_concurrency + settings.job_concurrency
    database = Database(settings)
    opened = 0

    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    event.listen(database.engine.sync_engine.pool, "connect", count)

    async def hold(everyone_in: asyncio.Barrier) -> None:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            await everyone_in.wait()  # all of them hold a connection at once

    rounds = []
    try:
        for _ in range(3):
            before = opened
            everyone_in = asyncio.Barrier(holders)
            # (a holder that fails cancels the others, which give their connections back)
            async with asyncio.timeout(60), asyncio.TaskGroup() as group:
                for _ in range(holders):
                    group.create_task(hold(everyone_in))
            rounds.append(opened - before)
    finally:
        await database.dispose()
    assert rounds == [holders, 0, 0]
