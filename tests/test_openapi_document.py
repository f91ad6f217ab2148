"""The OpenAPI document tells the truth (issue 10, point 7), and the response check that every
test runs through (``tests/openapi_check.py``) does catch what it should."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from courier.app import create_app
from courier.config import Settings
from tests.conftest import Org
from tests.openapi_check import ResponseChecker


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


async def test_every_operation_documents_the_error_body_and_credentials(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert set(document["components"]["securitySchemes"]) == {"bearer", "basic"}
    for method, path, operation in _operations(document):
        if path in {"/healthz", "/readyz", "/metrics"}:
            assert operation["security"] == []
            continue
        errors = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
        assert errors == {"$ref": "#/components/schemas/Error"}, (method, path)
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            assert {"type": "null"} not in body["schema"].get("anyOf", []), (method, path)


async def test_operation_ids_are_unique_names(client: httpx.AsyncClient) -> None:
    """Client generators and the fuzz configuration address operations by id: each is a
    verb-and-resource name (an action on the resource's own path is named by its method)."""
    document = (await client.get("/openapi.json")).json()
    ids = [operation["operationId"] for _m, _p, operation in _operations(document)]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if not re.fullmatch(r"[a-z][a-z0-9-]*", i)] == []


async def test_metrics_are_documented_as_text(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert list(document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == [
        "text/plain"
    ]
    metrics = await client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")


async def test_upload_form_and_its_415_are_documented(client: httpx.AsyncClient) -> None:
    upload = (await client.get("/openapi.json")).json()["paths"]["/uploads/{key}"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "415" in upload["responses"]
    refused = await client.post(
        "/uploads/some-key", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 415


async def test_delete_all_takes_exactly_1(client: httpx.AsyncClient, org: Org) -> None:
    for value in ("true", "yes", "0", ""):
        refused = await client.delete(f"/v1/api-keys/?delete_all={value}", headers=org.admin)
        assert refused.status_code == 400, value
        assert refused.json()["errors"][0]["source"] == {"parameter": "delete_all"}
    # Still there: nothing was deleted.
    assert (await client.get("/v1/api-keys/", headers=org.admin)).status_code == 200


async def test_empty_individual_id_is_refused(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.get("/v1/individuals/?individual-id=", headers=org.admin)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "individual-id"}


async def test_a_null_body_on_an_action_is_refused_as_documented(
    client: httpx.AsyncClient, org: Org
) -> None:
    document = (await client.get("/openapi.json")).json()
    archive = document["paths"]["/v1/messaging-channels/{id}/archive/"]["post"]
    assert archive["requestBody"].get("required", False) is False  # send an object, or nothing
    person = await client.post(
        "/v1/individuals/",
        json={"data": {"type": "individuals", "attributes": {"first-name": "N", "last-name": "B"}}},
        headers=org.admin,
    )
    channel = await client.post(
        "/v1/messaging-channels/",
        json={
            "data": {
                "type": "messaging-channels",
                "attributes": {"individual-ids": [person.json()["data"]["id"]]},
            }
        },
        headers=org.admin,
    )
    assert channel.status_code == 201, channel.text
    url = f"/v1/messaging-channels/{channel.json()['data']['id']}/archive/"
    null = await client.post(
        url, content=b"null", headers={**org.admin, "Content-Type": "application/json"}
    )
    assert null.status_code == 400
    assert (await client.post(url, headers=org.admin)).status_code == 201


async def test_the_response_check_catches_undocumented_answers(client: httpx.AsyncClient) -> None:
    checker = ResponseChecker((await client.get("/openapi.json")).json())
    request = httpx.Request("GET", "http://courier.test/v1/organizations")

    def problems(status: int, body: Any, content_type: str = "application/json") -> list[str]:
        raw = orjson.dumps(body)
        response = httpx.Response(
            status, content=raw, headers={"content-type": content_type}, request=request
        )
        return checker.problems(response, raw)

    assert problems(500, {"statusCode": 500})  # 5XX is not documented
    assert problems(200, {"meta": {}})  # no data
    assert problems(200, {"data": []}, "text/plain")  # not the documented type
    assert problems(404, {"oops": True})  # not the error body
    error = {
        "statusCode": 404,
        "error": "Not Found",
        "message": "organization not found",
        "errors": [{"status": "404", "code": "not-found", "title": "Not Found", "detail": "x"}],
    }
    assert problems(404, error) == []
    # An operation the document does not describe is not checked.
    other = httpx.Request("GET", "http://courier.test/v1/no-such-thing/")
    response = httpx.Response(500, content=b"{}", request=other)
    assert checker.problems(response, b"{}") == []


async def test_the_document_is_the_same_when_built_after_requests(settings: Settings) -> None:
    """The response documents of the declared resources are built with the document
    (courier.core.openapi.add_documented_route): also once requests have been served, through
    the copies of the routes FastAPI built for them without those models."""
    fresh = create_app(settings).openapi()
    served = create_app(settings)
    async with (
        served.router.lifespan_context(served),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served), base_url="http://courier.test"
        ) as http,
    ):
        paths = ("/v1/messaging-messages/", "/v1/texts/", "/v1/organizations/")
        before = [(await http.get(path)).status_code for path in paths]
        assert served.openapi() == fresh
        assert fresh["paths"]["/v1/texts/"]["get"]["responses"]["200"]["content"]
        # The routes serve as before once rebuilt with the models.
        assert [(await http.get(path)).status_code for path in paths] == before == [401] * 3


async def _served_document(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, after_start: dict[str, str]
) -> tuple[Any, dict[str, Any], int]:
    """A worker as ``courier serve`` builds it (settings from the environment, its document
    built elsewhere), asked for /openapi.json twice: the app, the document, and how many
    processes it started; ``after_start``: environment set once the app is built."""
    import asyncio

    from courier.core.openapi import BUILT_ELSEWHERE

    for name in [n for n in os.environ if n.startswith("COURIER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COURIER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'doc.db'}")
    monkeypatch.setenv("COURIER_DATA_DIR", str(tmp_path))
    app = create_app(Settings())
    setattr(app.state, BUILT_ELSEWHERE, True)
    for name, value in after_start.items():
        monkeypatch.setenv(name, value)
    started = 0
    spawn = asyncio.create_subprocess_exec

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal started
        started += 1
        return await spawn(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", counted)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
        first, second = await asyncio.gather(http.get("/openapi.json"), http.get("/openapi.json"))
    assert first.status_code == second.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    assert first.content == second.content
    return app, first.json(), started


async def test_a_served_worker_has_its_document_built_by_a_process_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``courier openapi`` with the worker's environment builds it, once; the worker builds
    none of it (every model's schema and validator: 46 MB it would keep), and it is the
    document the same settings build in process."""
    app, served, started = await _served_document(monkeypatch, tmp_path, {})
    assert started == 1
    assert app.openapi_schema is None  # not built here
    assert served == create_app(Settings()).openapi()


async def test_a_failing_builder_process_leaves_the_worker_to_build_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(tmp_path / "no-such-config.env")  # the child's settings cannot load
    app, served, started = await _served_document(
        monkeypatch, tmp_path, {"COURIER_CONFIG_FILE": missing}
    )
    assert started == 1
    assert app.openapi_schema is not None and served == app.openapi_schema
    assert "courier openapi failed" in caplog.text


def test_courier_serve_s_workers_have_their_document_built_elsewhere(tmp_path: Path) -> None:
    """``courier.cli.app_factory`` (what ``courier serve`` runs) says so to the application."""
    from tests.support import probe

    code = (
        "import json; from courier.cli import app_factory;"
        "from courier.core.openapi import BUILT_ELSEWHERE;"
        "print(json.dumps(getattr(app_factory().state, BUILT_ELSEWHERE, False)))"
    )
    database = f"sqlite+aiosqlite:///{tmp_path / 'factory.db'}"
    env = {"COURIER_DATABASE_URL": database, "COURIER_DATA_DIR": str(tmp_path)}
    assert probe(code, env=env) is True
