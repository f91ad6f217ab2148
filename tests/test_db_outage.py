"""Database outages answer 503 with Retry-After, fail fast, and recover by themselves.

PostgreSQL is reached through a TCP proxy on 127.0.0.1 that the test controls: ``refuse``
closes every connection and refuses new ones (the server is down); ``blackhole`` accepts and
keeps connections but forwards nothing (packets dropped: nothing is ever refused, so only the
connect, statement and pool timeouts end a request). SQLite's outage is a write lock held by
another process longer than the statement timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from courier.app import create_app
from courier.core import db as db_module
from courier.core.db import Database, is_database_unavailable
from tests.conftest import create_org, doc, make_settings

# A bound on each request of the test, far above the configured timeouts: a request that
# hangs fails the test instead of hanging the suite.
BOUND_SECONDS = 60.0
TIMEOUTS = {
    "database_connect_timeout_seconds": 1.0,
    "database_statement_timeout_seconds": 2.0,
    "database_pool_timeout_seconds": 1.0,
}


class Proxy:
    """A TCP proxy to ``target`` with three modes: forward, refuse, blackhole."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "forward"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._links.add(writer)
        if self.mode == "blackhole":
            await self._hold(reader)
            self._close(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._close(writer)
            return
        self._links.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._close(writer)
        self._close(up_writer)

    async def _hold(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(65536):
                pass  # dropped

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if self.mode == "blackhole":
                    continue  # dropped on the floor, the connection stays open
                writer.write(data)
                await writer.drain()

    def _close(self, writer: asyncio.StreamWriter) -> None:
        self._links.discard(writer)
        with contextlib.suppress(Exception):
            writer.close()

    def _close_all(self) -> None:
        for writer in list(self._links):
            self._close(writer)

    async def refuse(self) -> None:
        self.mode = "refuse"
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._close_all()

    async def blackhole(self) -> None:
        self.mode = "blackhole"

    async def forward(self) -> None:
        # Connections from the outage are dead to both ends (as after a real partition).
        self._close_all()
        self.mode = "forward"
        if self._server is None:
            await self.start()

    async def stop(self) -> None:
        await self.refuse()


async def bounded(request: Any) -> httpx.Response:
    response: httpx.Response = await asyncio.wait_for(request, BOUND_SECONDS)
    return response


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["statusCode"] == 503


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[Proxy]:
    if database_url.startswith("sqlite"):
        pytest.skip("the TCP outage needs PostgreSQL (SQLite has its own test below)")
    url = make_url(database_url)
    running = Proxy(url.host or "127.0.0.1", url.port or 5432)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def test_postgresql_refused_and_blackholed(
    proxy: Proxy, database_url: str, data_dir: Path
) -> None:
    proxied = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    settings = make_settings(proxied.render_as_string(hide_password=False), data_dir, **TIMEOUTS)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            org = await create_org(http)
            ready = await bounded(http.get("/readyz"))
            assert ready.status_code == 200, ready.text

            async def add(name: str) -> httpx.Response:
                return await bounded(
                    http.post(
                        "/v1/individuals/",
                        json=doc("individuals", {"first-name": name, "last-name": "Outage"}),
                        headers=org.admin,
                    )
                )

            assert (await add("before")).status_code == 201

            # Refused: the server is down.
            await proxy.refuse()
            assert_unavailable(await bounded(http.get("/v1/individuals/", headers=org.admin)))
            assert_unavailable(await add("refused"))
            assert_unavailable(await bounded(http.get("/readyz")))

            await proxy.forward()
            assert (await add("after refusal")).status_code == 201
            assert (await bounded(http.get("/readyz"))).status_code == 200

            # Blackholed: nothing is refused, nothing answers.
            await proxy.blackhole()
            assert_unavailable(await bounded(http.get("/v1/individuals/", headers=org.admin)))
            assert_unavailable(await add("blackholed"))
            assert_unavailable(await bounded(http.get("/readyz")))

            await proxy.forward()
            assert (await add("after blackhole")).status_code == 201
            listing = await bounded(http.get("/v1/individuals/?page[limit]=100", headers=org.admin))
            assert listing.status_code == 200, listing.text
            names = sorted(i["attributes"]["first-name"] for i in listing.json()["data"])
            # Every write that was answered 201 is there; none answered 503 is.
            assert names == ["after blackhole", "after refusal", "before"]
            assert (await bounded(http.get("/readyz"))).status_code == 200


async def test_sqlite_locked_longer_than_the_statement_timeout(
    database_url: str, data_dir: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's outage: its write lock held by another process")
    settings = make_settings(database_url, data_dir, database_statement_timeout_seconds=0.5)
    app = create_app(settings)
    path = make_url(database_url).database
    assert path
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            org = await create_org(http)
            other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                other.execute("BEGIN IMMEDIATE")  # another process writing, for too long
                locked = await bounded(
                    http.post(
                        "/v1/individuals/",
                        json=doc("individuals", {"first-name": "Lock", "last-name": "Ed"}),
                        headers=org.admin,
                    )
                )
                assert_unavailable(locked)
            finally:
                other.execute("ROLLBACK")
                other.close()
            again = await bounded(
                http.post(
                    "/v1/individuals/",
                    json=doc("individuals", {"first-name": "Lock", "last-name": "Ed"}),
                    headers=org.admin,
                )
            )
            assert again.status_code == 201, again.text


async def test_a_pooled_connection_is_pinged_only_after_sitting_idle(
    database_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No round trip per checkout: a connection in steady use is not pinged; one that sat idle
    longer than ``PING_AFTER_IDLE_SECONDS`` is, and is replaced if it was lost meanwhile."""
    if database_url.startswith("sqlite"):
        pytest.skip("a pool of server connections is PostgreSQL's")
    settings = make_settings(database_url, data_dir, database_pool_size=1, database_max_overflow=0)
    database = Database(settings)
    admin = create_async_engine(database_url, poolclass=NullPool)

    async def backend() -> int:
        async with database.engine.connect() as connection:
            return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    async def terminate(pid: int) -> None:
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await connection.commit()

    try:
        # In steady use (idle less than the threshold): no ping, so a connection the server
        # dropped fails one statement (a 503 for a request), and the pool starts afresh.
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
        first = await backend()
        await terminate(first)
        with pytest.raises(DBAPIError) as failed:
            await backend()
        assert is_database_unavailable(failed.value)
        second = await backend()
        assert second != first

        # Idle past the threshold (here: any idle time): pinged at checkout, found dead,
        # replaced before the statement runs; nothing fails.
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
        await terminate(second)
        third = await backend()
        assert third not in (first, second)
        assert await backend() == third  # a live connection passes its ping and is reused
    finally:
        await database.dispose()
        await admin.dispose()
