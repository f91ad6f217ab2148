"""Requests take turns at the database: at most ``request_concurrency`` at once per process
(one on SQLite), the others in arrival order."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
