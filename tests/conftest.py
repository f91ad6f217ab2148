"""Test fixtures: a real database built by the real migrations, and HTTP clients over ASGI.

Every test runs on SQLite; set ``COURIER_TEST_DATABASE_URL`` (e.g.
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``) to run the same tests on PostgreSQL.
Each test session gets a database of its own (a fresh SQLite file, or a fresh PostgreSQL
database created next to the one named), so parallel runs never meet. Tests isolate themselves
by creating their own organizations: every row is tenant-scoped.
"""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from courier.app import create_app
from courier.config import Settings
from courier.core.migrate import upgrade
from courier.providers.common import Providers, close_providers, providers_for
from tests.openapi_check import OpenAPIMismatchError, ResponseChecker, needs_body

MASTER_KEY = "test-master-" + secrets.token_hex(8)
JSONAPI = "application/vnd.api+json"


def _create_pg_database(base_url: str) -> str:
    import asyncio

    import asyncpg

    url = make_url(base_url)
    name = f"courier_test_{secrets.token_hex(6)}"

    async def create() -> None:
        conn = await asyncpg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            database=url.database or "postgres",
        )
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(base_url: str, test_url: str) -> None:
    import asyncio

    import asyncpg

    url = make_url(base_url)
    name = make_url(test_url).database

    async def drop() -> None:
        conn = await asyncpg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            database=url.database or "postgres",
        )
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("courier-data")


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> Iterator[str]:
    base = os.environ.get("COURIER_TEST_DATABASE_URL")
    if base:
        url = _create_pg_database(base)
        upgrade(Settings(database_url=url, data_dir=data_dir))
        yield url
        _drop_pg_database(base, url)
    else:
        url = f"sqlite+aiosqlite:///{data_dir / 'courier.db'}"
        upgrade(Settings(database_url=url, data_dir=data_dir))
        yield url


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    """A database of the test's own, not migrated: a fresh SQLite file, or a fresh PostgreSQL
    database next to ``COURIER_TEST_DATABASE_URL`` (dropped afterwards)."""
    base = os.environ.get("COURIER_TEST_DATABASE_URL")
    if base:
        url = _create_pg_database(base)
        yield url
        _drop_pg_database(base, url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'migration.db'}"


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Settings:
    return make_settings(database_url, data_dir)


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "master_key": MASTER_KEY,
        "rate_limit": "100000/minute",
        "webhook_allow_private": True,
        "run_worker": False,
        "auto_migrate": False,
        "allowed_hosts": ".test,127.0.0.1,localhost",
        # The in-process app shares PostgreSQL with the processes tests start (see
        # tests/support.PROCESS_POOL) and with the other database's suite in CI. Up to 15
        # connections at once, but only 2 kept idle: an app a test never shuts down (its
        # pool is not disposed) holds no more than that for the rest of the run.
        "database_pool_size": 2,
        "database_max_overflow": 13,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def own_providers() -> AsyncIterator[Callable[[Settings], Providers]]:
    """``providers_for`` the test's own settings (e.g. a copy naming another adapter), closed
    when the test ends: the adapters' clients and the sandboxes' database engine would
    otherwise stay open, one set per settings object, for the rest of the run."""
    made: list[Settings] = []

    def providers(settings: Settings) -> Providers:
        made.append(settings)
        return providers_for(settings)

    yield providers
    for settings in made:
        await close_providers(settings)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


class _OpenAPICheck:
    """Whether the current test's responses are checked against the OpenAPI document."""

    enabled = True
    # COURIER_OPENAPI_REPORT=FILE lists every mismatch there instead of failing the test.
    report = os.environ.get("COURIER_OPENAPI_REPORT")


@pytest.fixture(autouse=True)
def _openapi_check(request: pytest.FixtureRequest) -> None:
    _OpenAPICheck.enabled = request.node.get_closest_marker("no_openapi_check") is None


def openapi_checked(app: Any, **kwargs: Any) -> httpx.AsyncClient:
    """An ASGI client whose every response must match the app's OpenAPI document."""
    checker = ResponseChecker(app.openapi())

    async def check(response: httpx.Response) -> None:
        if not _OpenAPICheck.enabled:
            return
        body = None
        if needs_body(response):
            body = await response.aread()
        problems = checker.problems(response, body)
        if not problems:
            return
        if _OpenAPICheck.report:
            with Path(_OpenAPICheck.report).open("a", encoding="utf-8") as out:  # noqa: ASYNC230
                out.writelines(line + "\n" for line in problems)
            return
        raise OpenAPIMismatchError("; ".join(problems))

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), event_hooks={"response": [check]}, **kwargs
    )


@pytest.fixture(scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with openapi_checked(app, base_url="http://courier.test") as http:
        yield http


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def basic(key_id: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


MASTER = bearer(MASTER_KEY)


def doc(type_name: str, attributes: dict[str, Any], ident: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": type_name, "attributes": attributes}
    if ident is not None:
        data["id"] = ident
    return {"data": data, "meta": {}}


@dataclass
class Org:
    """An organization of the test's own, with one key per role."""

    id: str
    admin: dict[str, str]
    staff: dict[str, str]
    readonly: dict[str, str]
    admin_key_id: str
    admin_secret: str


async def create_org(client: httpx.AsyncClient, name: str | None = None) -> Org:
    name = name or f"Clinic {uuid.uuid4().hex[:8]}"
    response = await client.post(
        "/v1/organizations/",
        json=doc("organizations", {"name": name, "timezone": "America/New_York"}),
        headers=MASTER,
    )
    assert response.status_code == 201, response.text
    org_id = response.json()["data"]["id"]
    keys: dict[str, tuple[str, str]] = {}
    for role in ("admin", "staff", "readonly"):
        created = await client.post(
            "/v1/api-keys/",
            json=doc("api-keys", {"name": f"{role} key", "role": role, "organization-id": org_id}),
            headers=MASTER,
        )
        assert created.status_code == 201, created.text
        body = created.json()["data"]
        keys[role] = (body["id"], body["attributes"]["secret"])
    return Org(
        org_id,
        bearer(keys["admin"][1]),
        bearer(keys["staff"][1]),
        bearer(keys["readonly"][1]),
        keys["admin"][0],
        keys["admin"][1],
    )


@pytest.fixture
async def org(client: httpx.AsyncClient) -> Org:
    return await create_org(client)


@pytest.fixture
async def other_org(client: httpx.AsyncClient) -> Org:
    return await create_org(client)
