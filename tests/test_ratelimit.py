"""Rate limits: a budget per API key (or individual token), shared by replicas through Redis."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from courier.app import create_app
from tests.conftest import Org, basic, create_org, doc, make_settings

REDIS_URL = "redis://127.0.0.1:6379/0"


@asynccontextmanager
async def serve(
    database_url: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An app of the test's own (e.g. a low limit) on the session's database."""
    app = create_app(make_settings(database_url, data_dir, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            yield http


def budget(response: httpx.Response) -> tuple[int, int, int]:
    headers = response.headers
    return (
        int(headers["ratelimit-limit"]),
        int(headers["ratelimit-remaining"]),
        int(headers["ratelimit-reset"]),
    )


async def test_fourth_request_in_a_minute_is_refused(
    org: Org, database_url: str, data_dir: Path
) -> None:
    async with serve(database_url, data_dir, rate_limit="3/minute") as http:
        for remaining in (2, 1, 0):
            response = await http.get("/v1/organizations/", headers=org.admin)
            assert response.status_code == 200, response.text
            limit, left, reset = budget(response)
            assert (limit, left) == (3, remaining)
            assert 0 < reset <= 60

        refused = await http.get("/v1/organizations/", headers=org.admin)
        assert refused.status_code == 429
        body = refused.json()
        assert body["statusCode"] == 429
        assert body["error"] == "Too Many Requests"
        assert body["errors"][0]["code"] == "rate-limited"
        assert "x-request-id" in refused.headers
        limit, left, reset = budget(refused)
        assert (limit, left) == (3, 0)
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert 1 <= reset <= 60

        # Another key of the same organization has a budget of its own.
        other = await http.get("/v1/organizations/", headers=org.staff)
        assert other.status_code == 200
        assert budget(other)[:2] == (3, 2)


async def test_bearer_and_basic_spend_the_same_key_budget(
    org: Org, database_url: str, data_dir: Path
) -> None:
    as_basic = basic(org.admin_key_id, org.admin_secret)
    async with serve(database_url, data_dir, rate_limit="3/minute") as http:
        assert (await http.get("/v1/organizations/", headers=org.admin)).status_code == 200
        assert (await http.get("/v1/organizations/", headers=as_basic)).status_code == 200
        assert (await http.get("/v1/organizations/", headers=org.admin)).status_code == 200
        assert (await http.get("/v1/organizations/", headers=as_basic)).status_code == 429


async def test_every_authenticated_response_carries_the_budget(
    org: Org, database_url: str, data_dir: Path
) -> None:
    async with serve(database_url, data_dir, rate_limit="10/minute") as http:
        missing = await http.get(f"/v1/organizations/{uuid.uuid4()}/", headers=org.admin)
        assert missing.status_code == 404
        assert budget(missing)[:2] == (10, 9)

        forbidden = await http.post(
            "/v1/organizations/",
            json=doc("organizations", {"name": "Nope", "timezone": "UTC"}),
            headers=org.readonly,
        )
        assert forbidden.status_code == 403
        assert budget(forbidden)[:2] == (10, 9)  # the readonly key's own budget

        anonymous = await http.get("/v1/organizations/")
        assert anonymous.status_code == 401
        assert "ratelimit-limit" not in anonymous.headers


async def test_the_tightest_of_several_limits_is_reported(
    org: Org, database_url: str, data_dir: Path
) -> None:
    async with serve(database_url, data_dir, rate_limit="100/hour;2/minute") as http:
        first = await http.get("/v1/organizations/", headers=org.admin)
        assert budget(first)[:2] == (2, 1)
        assert (await http.get("/v1/organizations/", headers=org.admin)).status_code == 200
        refused = await http.get("/v1/organizations/", headers=org.admin)
        assert refused.status_code == 429
        assert budget(refused)[:2] == (2, 0)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A namespace of the test's own in the shared Redis, removed afterwards."""
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, aioredis.ConnectionError):
        await client.aclose()
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    prefix = f"courier-test-{secrets.token_hex(6)}"
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_replicas_share_one_budget_through_redis(
    client: httpx.AsyncClient, database_url: str, data_dir: Path, redis_prefix: str
) -> None:
    org = await create_org(client)
    url = f"{REDIS_URL}?key_prefix={redis_prefix}"
    async with (
        serve(database_url, data_dir, rate_limit="3/minute", redis_url=url) as one,
        serve(database_url, data_dir, rate_limit="3/minute", redis_url=url) as two,
    ):
        assert budget(await one.get("/v1/organizations/", headers=org.admin))[:2] == (3, 2)
        assert budget(await two.get("/v1/organizations/", headers=org.admin))[:2] == (3, 1)
        assert budget(await one.get("/v1/organizations/", headers=org.admin))[:2] == (3, 0)
        refused = await two.get("/v1/organizations/", headers=org.admin)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1

        # The budget is per key on every replica.
        assert (await two.get("/v1/organizations/", headers=org.staff)).status_code == 200

    # And it lives in Redis, under the configured prefix only.
    raw = aioredis.from_url(REDIS_URL)
    try:
        stored = [key async for key in raw.scan_iter(match=f"{redis_prefix}*")]
    finally:
        await raw.aclose()
    assert stored


async def test_an_unreachable_redis_does_not_take_the_api_down(
    org: Org, database_url: str, data_dir: Path
) -> None:
    # Port 1 on the loopback refuses connections at once.
    async with serve(
        database_url, data_dir, rate_limit="1/minute", redis_url="redis://127.0.0.1:1/0"
    ) as http:
        for _ in range(3):
            response = await http.get("/v1/organizations/", headers=org.admin)
            assert response.status_code == 200
            assert "ratelimit-limit" not in response.headers


async def test_the_in_process_budget_never_hands_work_to_a_thread_and_forgets_old_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The in-process counters spend a request on the event loop (no thread hand-off per
    request, which the limits library's own storage does), refuse past the budget, and drop
    what expired once a window has passed, so memory does not grow with the keys seen."""
    import asyncio

    from courier.core.ratelimit import RateLimiter, WindowMemory

    handed: list[Any] = []

    async def no_thread(function: Any, *args: Any, **_kwargs: Any) -> Any:
        handed.append(function)  # (a task's failure would not reach the test)
        return function(*args)

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    limiter = RateLimiter(make_settings("sqlite+aiosqlite://", Path("."), rate_limit="2/second"))
    storage: Any = limiter.storage
    assert isinstance(storage, WindowMemory)
    first, second, third = [await limiter.spend("key:a") for _ in range(3)]
    assert first is not None and not first.exceeded and first.remaining == 1
    assert second is not None and not second.exceeded and second.remaining == 0
    assert third is not None and third.exceeded and third.reset >= 1
    for n in range(50):
        assert await limiter.spend(f"key:{n}") is not None
    assert len(storage.events) == 51
    storage.prune(time_after(storage, seconds=2))
    assert storage.events == {}
    again = await limiter.spend("key:a")  # a new window: the budget is whole again
    assert again is not None and not again.exceeded
    await asyncio.sleep(0.01)  # any housekeeping task the spending started has run
    assert handed == []


def time_after(storage: Any, seconds: float) -> float:
    """A clock ``seconds`` after the newest entry ``storage`` holds."""
    newest = max(entries[0].atime for entries in storage.events.values())
    return float(newest) + seconds
