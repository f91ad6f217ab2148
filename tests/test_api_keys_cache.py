"""Authenticated keys are kept briefly (issue 17), yet a revoked key is refused by the very next
request, by every Courier process sharing the database: the one that revoked it, another
application in the same process, and another process (PostgreSQL tells it as the revoking
transaction commits; on SQLite the revoking process appends a notice to the file beside the
database before it answers)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from courier.app import create_app
from courier.config import Settings
from courier.core.key_cache import KEY_CACHE_SECONDS
from tests.conftest import Org, bearer
from tests.sms_support import another_process
from tests.test_api_keys import PATH, WHO_AM_I, create_key


async def status(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await client.get(WHO_AM_I, headers=headers)).status_code


async def refused_within(
    client: httpx.AsyncClient, headers: dict[str, str], seconds: float
) -> bool:
    """Whether the key is refused (401) by a request sent within ``seconds`` from now; once
    refused, it stays refused."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    code = await status(client, headers)
    for _ in range(1000):
        if code != 200 or loop.time() >= deadline:
            break
        await asyncio.sleep(0.05)
        code = await status(client, headers)
    return code == 401 and await status(client, headers) == 401


async def test_a_key_revoked_on_one_application_is_refused_by_another_at_once(
    client: httpx.AsyncClient, org: Org, settings: Settings
) -> None:
    other = create_app(settings)
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="http://courier.test"
        ) as second,
    ):
        key = await create_key(client, org.admin)
        headers = bearer(key["attributes"]["secret"])
        for _ in range(3):  # authenticated, and kept by both applications where they cache
            assert await status(client, headers) == 200
            assert await status(second, headers) == 200
        revoked = await client.delete(f"{PATH}{key['id']}/", headers=org.admin)
        assert revoked.status_code == 200, revoked.text
        assert await status(second, headers) == 401
        assert await status(client, headers) == 401


async def test_a_key_revoked_is_refused_at_once_by_another_process(
    client: httpx.AsyncClient,
    org: Org,
    app: Any,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    async with another_process(database_url, data_dir, tmp_path) as process:
        key = await create_key(client, org.admin)
        headers = bearer(key["attributes"]["secret"])
        for _ in range(3):
            assert await status(process, headers) == 200
        revoked = await client.delete(f"{PATH}{key['id']}/", headers=org.admin)
        assert revoked.status_code == 200, revoked.text
        if app.state.database.is_sqlite:
            # The revoking process appended its notice beside the database file before it
            # answered: the other process reads it before its next use of the cache.
            assert await status(process, headers) == 401
            return
        # The other process learns of it when PostgreSQL delivers the revoking transaction's
        # NOTIFY to its listener, which may come a moment after our next request on a busy
        # machine; its cache would keep the key 10 s (KEY_CACHE_SECONDS) without it, so
        # refusals within half that show the notification at work.
        assert await refused_within(process, headers, KEY_CACHE_SECONDS / 2)
