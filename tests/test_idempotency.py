"""Idempotency-Key on POST: a retry replays the first response and never runs twice."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import update

from courier.app import create_app
from courier.core.auth import Permission
from courier.core.db import after_commit
from courier.core.errors import ApiError
from courier.core.handlers import JsonResponse
from courier.core.idempotency import Claim, IdempotencyStore
from courier.core.time import utcnow
from courier.jsonapi.context import Context, context_dependency
from courier.models.idempotency_key import IdempotencyKey
from courier.models.organization import Organization
from tests.conftest import MASTER, Org, doc, make_settings


def new_key() -> str:
    return secrets.token_urlsafe(16)


def idem(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def key_count(client: httpx.AsyncClient, org: Org) -> int:
    response = await client.get("/v1/api-keys/", headers=org.admin)
    assert response.status_code == 200, response.text
    total: int = response.json()["meta"]["page[total]"]
    return total


async def organizations_named(client: httpx.AsyncClient, name: str) -> int:
    response = await client.get("/v1/organizations/", params={"filter[name]": name}, headers=MASTER)
    assert response.status_code == 200, response.text
    return sum(1 for item in response.json()["data"] if item["attributes"]["name"] == name)


def new_api_key(name: str = "integration") -> dict[str, Any]:
    return doc("api-keys", {"name": name, "role": "staff"})


async def test_a_retry_replays_the_first_response(client: httpx.AsyncClient, org: Org) -> None:
    key = new_key()
    before = await key_count(client, org)
    first = await client.post("/v1/api-keys/", json=new_api_key(), headers=idem(org.admin, key))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    again = await client.post("/v1/api-keys/", json=new_api_key(), headers=idem(org.admin, key))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # same id, and the secret shown once is shown again
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["x-request-id"] != first.headers["x-request-id"]

    # The same document spelled differently is the same request.
    spaced = orjson.dumps(new_api_key(), option=orjson.OPT_INDENT_2)
    third = await client.post(
        "/v1/api-keys/",
        content=spaced,
        headers={**idem(org.admin, key), "Content-Type": "application/vnd.api+json"},
    )
    assert third.status_code == 201
    assert third.json()["data"]["id"] == first.json()["data"]["id"]

    assert await key_count(client, org) == before + 1


async def test_replay_honours_the_new_requests_accept(client: httpx.AsyncClient, org: Org) -> None:
    key = new_key()
    first = await client.post("/v1/api-keys/", json=new_api_key(), headers=idem(org.admin, key))
    assert first.status_code == 201
    again = await client.post(
        "/v1/api-keys/",
        json=new_api_key(),
        headers={**idem(org.admin, key), "Accept": "application/vnd.api+json"},
    )
    assert again.headers["content-type"] == "application/vnd.api+json"
    assert again.json() == first.json()


async def test_the_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, org: Org
) -> None:
    key = new_key()
    before = await key_count(client, org)
    first = await client.post("/v1/api-keys/", json=new_api_key("a"), headers=idem(org.admin, key))
    assert first.status_code == 201
    other = await client.post("/v1/api-keys/", json=new_api_key("b"), headers=idem(org.admin, key))
    assert other.status_code == 422
    body = other.json()
    assert body["statusCode"] == 422
    assert body["errors"][0]["code"] == "idempotency-key-reused"
    # Another path is another request too.
    elsewhere = await client.post(
        "/v1/organizations/",
        json=doc("organizations", {"name": "x", "timezone": "UTC"}),
        headers=idem(org.admin, key),
    )
    assert elsewhere.status_code == 422
    assert await key_count(client, org) == before + 1


async def test_twenty_simultaneous_retries_create_one_resource(client: httpx.AsyncClient) -> None:
    key = new_key()
    name = f"Simultaneous {uuid.uuid4().hex}"
    body = doc("organizations", {"name": name, "timezone": "UTC"})
    transport = client._transport  # the session's app, reached by twenty separate clients
    clients = [
        httpx.AsyncClient(transport=transport, base_url="http://courier.test") for _ in range(20)
    ]
    try:
        responses = await asyncio.gather(
            *(
                each.post("/v1/organizations/", json=body, headers=idem(MASTER, key))
                for each in clients
            )
        )
    finally:
        for each in clients:
            await each.aclose()
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1
    assert sum(1 for r in responses if "idempotent-replayed" not in r.headers) == 1
    assert await organizations_named(client, name) == 1


async def test_credentials_do_not_share_keys(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    key = new_key()
    mine = await client.post("/v1/api-keys/", json=new_api_key(), headers=idem(org.admin, key))
    theirs = await client.post(
        "/v1/api-keys/", json=new_api_key(), headers=idem(other_org.admin, key)
    )
    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["data"]["id"] != theirs.json()["data"]["id"]
    assert theirs.json()["data"]["attributes"]["organization-id"] == other_org.id
    assert await key_count(client, org) == 4
    assert await key_count(client, other_org) == 4


async def test_client_errors_are_replayed(client: httpx.AsyncClient, org: Org) -> None:
    key = new_key()
    invalid = doc("api-keys", {"name": "k", "role": "superuser"})
    first = await client.post("/v1/api-keys/", json=invalid, headers=idem(org.admin, key))
    assert first.status_code == 400
    again = await client.post("/v1/api-keys/", json=invalid, headers=idem(org.admin, key))
    assert again.status_code == 400
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()


async def test_key_length_is_bounded(client: httpx.AsyncClient, org: Org) -> None:
    before = await key_count(client, org)
    too_long = await client.post(
        "/v1/api-keys/", json=new_api_key(), headers=idem(org.admin, "k" * 256)
    )
    assert too_long.status_code == 400
    assert too_long.json()["errors"][0]["code"] == "invalid-idempotency-key"
    longest = await client.post(
        "/v1/api-keys/", json=new_api_key(), headers=idem(org.admin, "k" * 255)
    )
    assert longest.status_code == 201
    assert await key_count(client, org) == before + 1


async def test_keys_without_valid_credentials_are_not_kept(client: httpx.AsyncClient) -> None:
    key = new_key()
    body = new_api_key()
    for _ in range(2):
        refused = await client.post(
            "/v1/api-keys/", json=body, headers=idem({"Authorization": "Bearer nope"}, key)
        )
        assert refused.status_code == 401
        assert "idempotent-replayed" not in refused.headers


# --- Failures, crashes and expiry, on apps of the tests' own ----------------------------------


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        # A 500 must reach the test as a response, as it reaches a client.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            yield http


@pytest.fixture
def own_app(database_url: str, data_dir: Path) -> FastAPI:
    return create_app(make_settings(database_url, data_dir))


async def test_a_server_error_lets_the_retry_run(own_app: FastAPI) -> None:
    attempts: list[int] = []

    async def flaky() -> JsonResponse:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            raise RuntimeError("the first attempt fails")
        return JsonResponse({"attempt": len(attempts)}, status_code=201)

    own_app.add_api_route("/v1/test-flaky/", flaky, methods=["POST"])
    key = new_key()
    async with serve(own_app) as http:
        failed = await http.post("/v1/test-flaky/", json={}, headers=idem(MASTER, key))
        assert failed.status_code == 500
        retried = await http.post("/v1/test-flaky/", json={}, headers=idem(MASTER, key))
        assert retried.status_code == 201
        assert retried.json() == {"attempt": 2}
        replayed = await http.post("/v1/test-flaky/", json={}, headers=idem(MASTER, key))
        assert replayed.json() == {"attempt": 2}
        assert replayed.headers["idempotent-replayed"] == "true"
    assert attempts == [1, 2]


async def create_then_fail(
    ctx: Context = Depends(context_dependency(Permission.MASTER)),
) -> JsonResponse:
    """Creates an organization, then fails after the commit (a notifier that is down)."""
    organization = Organization(
        id=uuid.uuid4(), name=ctx.request.query_params["name"], timezone="UTC"
    )
    ctx.session.add(organization)

    async def notifier_down() -> None:
        raise RuntimeError("the notifier is down")

    after_commit(ctx.session, notifier_down)
    return JsonResponse({"id": str(organization.id)}, status_code=201)


async def test_a_server_error_after_the_change_committed_is_not_run_again(
    own_app: FastAPI,
) -> None:
    own_app.add_api_route("/v1/test-create-then-fail/", create_then_fail, methods=["POST"])
    name = f"Committed {uuid.uuid4().hex}"
    key = new_key()
    async with serve(own_app) as http:
        url = f"/v1/test-create-then-fail/?name={name}"
        failed = await http.post(url, json={}, headers=idem(MASTER, key))
        assert failed.status_code == 500
        retried = await http.post(url, json={}, headers=idem(MASTER, key))
        assert retried.status_code == 500
        assert retried.headers["idempotent-replayed"] == "true"
        assert await organizations_named(http, name) == 1


async def test_a_claim_whose_holder_died_is_taken_over(own_app: FastAPI) -> None:
    entered = asyncio.Event()
    gate = asyncio.Event()
    attempts: list[int] = []

    async def slow() -> JsonResponse:
        attempts.append(len(attempts) + 1)
        attempt = len(attempts)
        if attempt == 1:
            entered.set()
            await gate.wait()  # stands for a request whose process has stopped responding
        return JsonResponse({"attempt": attempt}, status_code=201)

    own_app.add_api_route("/v1/test-slow/", slow, methods=["POST"])
    store: IdempotencyStore = own_app.state.idempotency
    key = new_key()
    async with serve(own_app) as http:
        stuck = asyncio.create_task(http.post("/v1/test-slow/", json={}, headers=idem(MASTER, key)))
        await entered.wait()

        store.wait = 0.05
        waited = await http.post("/v1/test-slow/", json={}, headers=idem(MASTER, key))
        assert waited.status_code == 409
        assert waited.json()["errors"][0]["code"] == "idempotency-key-in-progress"

        store.lease = timedelta(0)  # the holder's lease has run out
        took_over = await http.post("/v1/test-slow/", json={}, headers=idem(MASTER, key))
        assert took_over.status_code == 201
        assert took_over.json() == {"attempt": 2}

        gate.set()
        late = await stuck
        assert late.json() == {"attempt": 1}
        # The response stored is the one of the request that held the key at the end.
        replayed = await http.post("/v1/test-slow/", json={}, headers=idem(MASTER, key))
        assert replayed.json() == {"attempt": 2}
        assert replayed.headers["idempotent-replayed"] == "true"


async def test_a_superseded_request_cannot_commit(own_app: FastAPI) -> None:
    # The race a stalled request loses when its claim is taken over: its transaction's marker
    # finds the lease gone and aborts the commit, so the change never lands twice.
    store: IdempotencyStore = own_app.state.idempotency
    scope = f"test:{uuid.uuid4()}"
    first = await store.claim(scope, "k", "print")
    store.lease = timedelta(0)
    second = await store.claim(scope, "k", "print")
    assert isinstance(first, Claim) and isinstance(second, Claim)
    async with own_app.state.database.sessionmaker() as session:
        with pytest.raises(ApiError) as refused:
            await store.mark_committed(session, first)
        assert refused.value.status == 409
        await store.mark_committed(session, second)
        await session.commit()
    await own_app.state.database.dispose()


async def test_keys_expire_after_a_day(own_app: FastAPI) -> None:
    key = new_key()
    async with serve(own_app) as http:
        first = await http.post(
            "/v1/organizations/",
            json=doc("organizations", {"name": f"Day one {key}", "timezone": "UTC"}),
            headers=idem(MASTER, key),
        )
        assert first.status_code == 201
        async with own_app.state.database.sessionmaker() as session:
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == key)
                .values(created_at=utcnow() - timedelta(hours=25))
            )
            await session.commit()
        # A day later the key is free again: another body runs instead of being refused.
        later = await http.post(
            "/v1/organizations/",
            json=doc("organizations", {"name": f"Day two {key}", "timezone": "UTC"}),
            headers=idem(MASTER, key),
        )
        assert later.status_code == 201
        assert "idempotent-replayed" not in later.headers
        assert later.json()["data"]["id"] != first.json()["data"]["id"]
