"""Sniffers over HTTP: who is recorded, what is kept (redacted), until when, and that recording
never changes or breaks a response."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from courier.domains.sniffers import recorder as recorder_module
from courier.domains.sniffers.redaction import (
    REDACTED,
    STORED_BYTES,
    redact_body,
    redact_query,
)
from tests.conftest import Org, basic, bearer, doc
from tests.factories import individual_token, make_individual_id

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def make_user(client: httpx.AsyncClient, org: Org, individual_id: str) -> str:
    suffix = uuid.uuid4().hex[:8]
    response = await client.post(
        "/v1/users/",
        headers=org.admin,
        json=doc(
            "users",
            {
                "username": f"user{suffix}",
                "email": f"u{suffix}@example.org",
                "primary-individual-id": individual_id,
            },
        ),
    )
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def person(client: httpx.AsyncClient, org: Org) -> tuple[str, str, dict[str, str]]:
    """An individual, their user, and a token of theirs."""
    individual = await make_individual_id(client, org)
    user = await make_user(client, org, individual)
    token = bearer(await individual_token(client, org, individual))
    return individual, user, token


async def create_sniffer(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    attributes.setdefault("valid-until", later(hours=1))
    response = await client.post(
        "/v1/sniffers/", headers=org.admin, json=doc("sniffers", attributes)
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def logs(client: httpx.AsyncClient, org: Org, sniffer_id: str, query: str = "") -> Any:
    response = await client.get(f"/v1/sniffers/{sniffer_id}/get-logs/{query}", headers=org.admin)
    assert response.status_code == 200, response.text
    return response.json()


async def test_records_an_individual_tokens_requests_redacted(
    client: httpx.AsyncClient, org: Org
) -> None:
    individual, user, token = await person(client, org)
    sniffer = await create_sniffer(client, org, **{"user-id": user})
    assert sniffer["type"] == "sniffers"
    attributes = sniffer["attributes"]
    assert attributes["user-id"] == user
    assert attributes["api-key-id"] is None
    assert attributes["active"] is True
    assert attributes["created-time"].endswith("Z")

    got = await client.get(
        f"/v1/individuals/{individual}/?format=json",
        headers={**token, "traceparent": TRACEPARENT, "User-Agent": "clinic-app/1.2"},
    )
    assert got.status_code == 200
    refused = await client.post(
        "/v1/individuals/",
        headers=token,
        json=doc(
            "individuals",
            {"first-name": "Eve", "password": "hunter2", "nested": [{"api-key": "k"}]},
        ),
    )
    assert refused.status_code == 403

    body = await logs(client, org, sniffer["id"])
    assert body["meta"]["page[total]"] == 2
    newest, oldest = body["data"]
    assert newest["type"] == "sniffer-logs"
    # Newest first.
    assert newest["attributes"]["method"] == "POST"
    assert oldest["attributes"]["method"] == "GET"

    read = oldest["attributes"]
    assert read["path"] == f"/v1/individuals/{individual}/"
    assert read["query-string"] == "format=json"
    assert read["status-code"] == 200
    assert read["request-id"] == got.headers["x-request-id"]
    assert read["trace-id"] == TRACE
    assert read["user-agent"] == "clinic-app/1.2"
    assert read["response"] == got.text  # the very body the client got
    assert read["body"] == ""
    assert read["message"].startswith(f"GET /v1/individuals/{individual}/ 200 in ")
    assert read["created-time"].endswith("Z")
    assert isinstance(read["duration-ms"], int)
    assert set(read) >= {
        "body",
        "content_type",
        "created-time",
        "message",
        "method",
        "path",
        "query-string",
        "request-id",
        "response",
        "status-code",
        "trace-id",
        "user-agent",
    }

    posted = newest["attributes"]
    assert posted["status-code"] == 403
    assert posted["content_type"] == "application/json"
    assert "hunter2" not in posted["body"]
    assert '"k"' not in posted["body"]
    assert REDACTED in posted["body"]
    assert "Eve" in posted["body"]  # what is not a secret is kept
    assert "forbidden" in posted["response"] or "403" in posted["response"]
    # The credential itself is never stored, in any form.
    everything = str(body)
    assert token["Authorization"].split(" ", 1)[1] not in everything


async def test_records_an_api_keys_requests_and_redacts_secrets(
    client: httpx.AsyncClient, org: Org
) -> None:
    sniffer = await create_sniffer(client, org, **{"api-key-id": org.admin_key_id})
    refused = await client.get("/v1/api-keys/?password=swordfish&name=x", headers=org.admin)
    assert refused.status_code == 400  # unknown parameters, but recorded all the same
    created = await client.post(
        "/v1/api-keys/", headers=org.admin, json=doc("api-keys", {"name": "lab", "role": "staff"})
    )
    assert created.status_code == 201
    secret = created.json()["data"]["attributes"]["secret"]
    token = await individual_token(client, org, await make_individual_id(client, org))
    with_basic = await client.get(
        "/v1/api-keys/?filter[role]=staff", headers=basic(org.admin_key_id, org.admin_secret)
    )
    assert with_basic.status_code == 200

    body = await logs(client, org, sniffer["id"])
    recorded = [item["attributes"] for item in body["data"]]
    paths = [(a["method"], a["path"], a["status-code"]) for a in recorded]
    # The key's own requests, including reading people and minting tokens with the staff key:
    # only the admin key's requests, never the staff key's.
    assert ("POST", "/v1/api-keys/", 201) in paths
    assert ("GET", "/v1/api-keys/", 400) in paths
    assert ("POST", "/v1/individuals/", 201) in paths
    assert all(path != "/v1/access-tokens/" for _, path, _ in paths)
    assert ("GET", "/v1/api-keys/", 200) in paths  # HTTP Basic with the key's id and secret
    text = str(body)
    assert secret not in text
    assert org.admin_secret not in text
    assert token not in text
    assert "swordfish" not in text
    with_query = next(a for a in recorded if a["status-code"] == 400)
    assert with_query["query-string"] == f"password={REDACTED}&name=x"
    key_response = next(
        a for a in recorded if a["status-code"] == 201 and a["path"] == "/v1/api-keys/"
    )
    assert '"secret":"[REDACTED]"' in key_response["response"]
    assert '"name":"lab"' in key_response["response"]
    # Reading the logs is never itself recorded.
    again = await logs(client, org, sniffer["id"])
    assert again["meta"]["page[total]"] == body["meta"]["page[total]"]


async def test_other_peoples_requests_are_not_recorded(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    individual, user, token = await person(client, org)
    other_individual, _other_user, other_token = await person(client, org)
    sniffer = await create_sniffer(client, org, **{"user-id": user})
    await client.get(f"/v1/individuals/{other_individual}/", headers=other_token)
    await client.get(f"/v1/individuals/{individual}/", headers=org.admin)
    await client.get(f"/v1/individuals/{individual}/", headers=org.staff)
    await client.get("/v1/individuals/", headers=other_org.admin)
    assert (await logs(client, org, sniffer["id"]))["data"] == []
    await client.get(f"/v1/individuals/{individual}/", headers=token)
    assert (await logs(client, org, sniffer["id"]))["meta"]["page[total]"] == 1


async def test_recording_stops_after_valid_until(client: httpx.AsyncClient, org: Org) -> None:
    individual, user, token = await person(client, org)
    until = datetime.now(UTC) + timedelta(seconds=1.5)
    sniffer = await create_sniffer(
        client, org, **{"user-id": user, "valid-until": until.isoformat()}
    )
    assert (await client.get(f"/v1/individuals/{individual}/", headers=token)).status_code == 200
    assert (await logs(client, org, sniffer["id"]))["meta"]["page[total]"] == 1
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.1)
    assert (await client.get(f"/v1/individuals/{individual}/", headers=token)).status_code == 200
    assert (await logs(client, org, sniffer["id"]))["meta"]["page[total]"] == 1
    shown = await client.get(f"/v1/sniffers/{sniffer['id']}/", headers=org.admin)
    assert shown.json()["data"]["attributes"]["active"] is False


async def test_a_failing_recorder_leaves_the_response_intact(
    client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    individual, user, token = await person(client, org)
    sniffer = await create_sniffer(client, org, **{"user-id": user})
    unrecorded = await client.get(f"/v1/individuals/{individual}/", headers=token)
    calls: list[int] = []

    async def broken(database: Any, rows: list[dict[str, Any]]) -> None:
        calls.append(len(rows))
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(recorder_module, "write_logs", broken)
    response = await client.get(f"/v1/individuals/{individual}/", headers=token)
    assert calls == [1]
    assert response.status_code == 200
    assert response.content == unrecorded.content
    assert response.headers["etag"] == unrecorded.headers["etag"]
    failed = await client.post(
        "/v1/individuals/", headers=token, json=doc("individuals", {"first-name": "X"})
    )
    assert failed.status_code == 403
    assert calls == [1, 1]
    monkeypatch.undo()
    assert (await logs(client, org, sniffer["id"]))["meta"]["page[total]"] == 1


async def test_a_failing_cache_leaves_requests_alone(
    client: httpx.AsyncClient, org: Org, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = app.state.sniffer_recorder

    async def broken() -> Any:
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(recorder, "_load", broken)
    recorder.invalidate()
    response = await client.get("/v1/individuals/", headers=org.admin)
    assert response.status_code == 200
    monkeypatch.undo()
    recorder.invalidate()


async def test_logs_page_newest_first(client: httpx.AsyncClient, org: Org) -> None:
    individual, user, token = await person(client, org)
    sniffer = await create_sniffer(client, org, **{"user-id": user})
    for query in ("a=1", "a=2", "a=3"):
        await client.get(f"/v1/individuals/{individual}/?{query}", headers=token)
    first = await logs(client, org, sniffer["id"], "?page[limit]=2")
    assert first["meta"]["page[total]"] == 3
    assert first["links"]["next"] is not None
    second = await logs(client, org, sniffer["id"], "?page[limit]=2&page[offset]=2")
    order = [item["attributes"]["query-string"] for item in first["data"] + second["data"]]
    assert order == ["a=3", "a=2", "a=1"]
    bad = await client.get(
        f"/v1/sniffers/{sniffer['id']}/get-logs/?page[limit]=1001", headers=org.admin
    )
    assert bad.status_code == 400


async def test_deleting_a_sniffer_stops_it_and_removes_its_logs(
    client: httpx.AsyncClient, org: Org
) -> None:
    individual, user, token = await person(client, org)
    sniffer = await create_sniffer(client, org, **{"user-id": user})
    await client.get(f"/v1/individuals/{individual}/", headers=token)
    deleted = await client.delete(f"/v1/sniffers/{sniffer['id']}/", headers=org.admin)
    assert deleted.status_code == 200
    gone = await client.get(f"/v1/sniffers/{sniffer['id']}/get-logs/", headers=org.admin)
    assert gone.status_code == 404
    other = await create_sniffer(client, org, **{"api-key-id": org.admin_key_id})
    await client.get(f"/v1/individuals/{individual}/", headers=token)
    assert (await logs(client, org, other["id"]))["data"] == []


async def test_sniffer_validation_and_access(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    _individual, user, token = await person(client, org)

    async def post(attributes: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return await client.post(
            "/v1/sniffers/", headers=headers or org.admin, json=doc("sniffers", attributes)
        )

    past = await post({"user-id": user, "valid-until": later(seconds=-5)})
    assert past.status_code == 400
    assert past.json()["errors"][0]["source"] == {"pointer": "/data/attributes/valid-until"}
    too_far = await post({"user-id": user, "valid-until": later(days=7, hours=1)})
    assert too_far.status_code == 400
    naive = await post({"user-id": user, "valid-until": "2030-01-01T00:00:00"})
    assert naive.status_code == 400
    nobody = await post({"valid-until": later(hours=1)})
    assert nobody.status_code == 400
    _, foreign_user, _ = await person(client, other_org)
    assert (await post({"user-id": foreign_user, "valid-until": later(hours=1)})).status_code == 404
    foreign_key = {"api-key-id": other_org.admin_key_id, "valid-until": later(hours=1)}
    assert (await post(foreign_key)).status_code == 404
    assert (await post({"user-id": "nope", "valid-until": later(hours=1)})).status_code == 400
    staff = await post({"user-id": user, "valid-until": later(hours=1)}, org.staff)
    assert staff.status_code == 403
    as_token = await post({"user-id": user, "valid-until": later(hours=1)}, token)
    assert as_token.status_code == 403

    sniffer = await create_sniffer(client, org, **{"user-id": user})
    for path in (f"/v1/sniffers/{sniffer['id']}/", f"/v1/sniffers/{sniffer['id']}/get-logs/"):
        assert (await client.get(path, headers=other_org.admin)).status_code == 404
        assert (await client.get(path, headers=org.staff)).status_code == 403
        assert (await client.get(path, headers=token)).status_code == 403
    assert (
        await client.get("/v1/sniffers/not-a-uuid/get-logs/", headers=org.admin)
    ).status_code == 404
    listed = await client.get(f"/v1/sniffers/?filter[user-id]={user}", headers=org.admin)
    assert [item["id"] for item in listed.json()["data"]] == [sniffer["id"]]


# --- redaction, directly --------------------------------------------------------------------


def test_redact_body_parses_and_redacts_json_at_any_depth() -> None:
    raw = (
        b'{"a": {"Password": "x1", "list": [{"refresh_token": "x2"}]}, "secretName": 3, "ok": "y"}'
    )
    kept = redact_body(raw, complete=True)
    assert "x1" not in kept and "x2" not in kept and "3" not in kept
    assert '"ok":"y"' in kept


def test_redact_body_scrubs_text_it_cannot_parse_and_truncates() -> None:
    big = b'{"token": "abcdef", "text": "' + b"z" * 20000 + b'"'
    kept = redact_body(big[:100], complete=False)
    assert "abcdef" not in kept
    assert REDACTED in kept
    long = redact_body(b'{"text": "' + b"\xc3\xa9" * 10000 + b'"}', complete=True)
    assert len(long.encode("utf-8")) <= STORED_BYTES
    assert long.endswith("[truncated]")
    secretish = redact_body(
        b"Authorization: Bearer ck_abcdefghijklmnop and eyJa.eyJb.sig", complete=True
    )
    assert "ck_abcdefghijklmnop" not in secretish
    assert "eyJa.eyJb.sig" not in secretish


def test_redact_query() -> None:
    assert redact_query("api_key=1&page[limit]=2") == "api_key=[REDACTED]&page[limit]=2"
    assert redact_query("") == ""
