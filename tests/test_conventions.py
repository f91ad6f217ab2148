"""Every cross-cutting convention of CONVENTIONS.md, through real HTTP requests."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from courier.app import create_app
from tests.conftest import MASTER, Org, basic, doc, make_settings

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["statusCode"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert body["message"]
    assert body["errors"] and all(e["status"] == str(status) for e in body["errors"])
    assert response.headers["x-request-id"]
    return body


# --- error bodies for every status ----------------------------------------------------------


async def test_unknown_path_is_404_in_error_body(client: httpx.AsyncClient) -> None:
    body = assert_error(await client.get("/v1/no-such-things/"), 404)
    assert body["error"] == "Not Found"


async def test_unknown_version_is_404(client: httpx.AsyncClient, org: Org) -> None:
    assert_error(await client.get("/v3/organizations/", headers=org.admin), 404)
    # Only finalize-encounter has a v2; organizations do not.
    assert_error(await client.get("/v2/organizations/", headers=org.admin), 404)


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.put("/v1/organizations/", headers=org.admin, json={})
    body = assert_error(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
    assert "PUT" in body["message"]


async def test_validation_errors_one_message_per_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/organizations/",
        headers=MASTER,
        json=doc("organizations", {"timezone": "Mars/Olympus", "colour": "red"}),
    )
    body = assert_error(response, 400)
    assert isinstance(body["message"], list)
    pointers = {e["source"]["pointer"] for e in body["errors"]}
    assert pointers == {
        "/data/attributes/name",
        "/data/attributes/timezone",
        "/data/attributes/colour",
    }
    assert len(body["message"]) == 3
    assert any(m.startswith("timezone ") and "IANA" in m for m in body["message"])


async def test_query_errors_name_the_parameter(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.get("/v1/organizations/?page[limit]=0", headers=org.admin)
    body = assert_error(response, 400)
    assert body["errors"][0]["source"] == {"parameter": "page[limit]"}
    response = await client.get("/v1/organizations/?filter[colour]=red", headers=org.admin)
    assert assert_error(response, 400)["errors"][0]["source"] == {"parameter": "filter[colour]"}
    response = await client.get("/v1/organizations/?sort=colour", headers=org.admin)
    assert assert_error(response, 400)["errors"][0]["source"] == {"parameter": "sort"}


async def test_unexpected_error_is_500_with_request_id(settings: Any) -> None:
    app: FastAPI = create_app(settings)

    async def explode() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/v1/explode/", explode, methods=["GET"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/v1/explode/", headers={"X-Request-Id": "req-500-check"})
    body = assert_error(response, 500)
    assert body["requestId"] == "req-500-check"
    assert "secret internal detail" not in response.text


# --- request documents and content negotiation -----------------------------------------------


@pytest.mark.parametrize("media", ["application/json", "application/vnd.api+json", "text/json"])
async def test_json_media_types_accepted(client: httpx.AsyncClient, media: str) -> None:
    response = await client.post(
        "/v1/organizations/",
        headers={**MASTER, "Content-Type": f"{media}; charset=utf-8"},
        content=b'{"data": {"type": "organizations", "attributes": {"name": "Media"}}}',
    )
    assert response.status_code == 201, response.text


async def test_latin1_body_is_decoded(client: httpx.AsyncClient) -> None:
    body = '{"data": {"type": "organizations", "attributes": {"name": "Clínica São José"}}}'
    response = await client.post(
        "/v1/organizations/",
        headers={**MASTER, "Content-Type": "text/json; charset=iso-8859-1"},
        content=body.encode("iso-8859-1"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["name"] == "Clínica São José"


async def test_body_not_matching_charset_is_400(client: httpx.AsyncClient) -> None:
    body = '{"data": {"type": "organizations", "attributes": {"name": "Clínica"}}}'
    response = await client.post(
        "/v1/organizations/",
        headers={**MASTER, "Content-Type": "application/json; charset=utf-8"},
        content=body.encode("iso-8859-1"),
    )
    assert assert_error(response, 400)["errors"][0]["code"] == "invalid-encoding"


async def test_form_encoded_json_field(client: httpx.AsyncClient) -> None:
    payload = '{"data": {"type": "organizations", "attributes": {"name": "Form Clinic"}}}'
    response = await client.post("/v1/organizations/", headers=MASTER, data={"json": payload})
    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["name"] == "Form Clinic"
    missing = await client.post("/v1/organizations/", headers=MASTER, data={"other": payload})
    assert_error(missing, 400)


async def test_malformed_and_non_object_bodies(client: httpx.AsyncClient) -> None:
    headers = {**MASTER, "Content-Type": "application/json"}
    bad = await client.post("/v1/organizations/", headers=headers, content=b'{"data": ')
    assert assert_error(bad, 400)["errors"][0]["code"] == "malformed-json"
    array = await client.post("/v1/organizations/", headers=headers, content=b"[1, 2]")
    assert assert_error(array, 400)["errors"][0]["code"] == "body-not-object"


async def test_unsupported_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/organizations/",
        headers={**MASTER, "Content-Type": "application/xml"},
        content=b"<organization/>",
    )
    assert_error(response, 415)


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"data": {"type": "organizations", "attributes": {"name": "' + b"x" * (1 << 20)
    big += b'"}}}'
    response = await client.post(
        "/v1/organizations/", headers={**MASTER, "Content-Type": "application/json"}, content=big
    )
    assert_error(response, 413)


async def test_type_mismatch_is_409(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/organizations/", headers=MASTER, json=doc("individuals", {"name": "Wrong type"})
    )
    assert assert_error(response, 409)["errors"][0]["source"] == {"pointer": "/data/type"}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("application/vnd.api+json", "application/vnd.api+json"),
        ("text/json", "text/json"),
        ("text/*", "text/json"),
        ("*/*", "application/json"),
        ("text/json;q=0.5, application/vnd.api+json;q=0.9", "application/vnd.api+json"),
        ("text/html, text/json;q=0.1", "text/json"),
    ],
)
async def test_accept_negotiation(
    client: httpx.AsyncClient, org: Org, accept: str | None, expected: str
) -> None:
    headers = dict(org.admin)
    if accept is not None:
        headers["Accept"] = accept
    response = await client.get("/v1/organizations/", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == expected


async def test_unacceptable_accept_is_406_with_json_body(
    client: httpx.AsyncClient, org: Org
) -> None:
    response = await client.get(
        "/v1/organizations/", headers={**org.admin, "Accept": "text/html, application/xml"}
    )
    assert_error(response, 406)


async def test_format_parameter(client: httpx.AsyncClient, org: Org) -> None:
    ok = await client.get("/v1/organizations/?format=json", headers=org.admin)
    assert ok.status_code == 200
    bad = await client.get("/v1/organizations/?format=xml", headers=org.admin)
    assert assert_error(bad, 400)["errors"][0]["source"] == {"parameter": "format"}


# --- identifiers, times --------------------------------------------------------------------


async def test_non_uuid_path_id_is_404(client: httpx.AsyncClient, org: Org) -> None:
    assert_error(await client.get("/v1/organizations/not-a-uuid/", headers=org.admin), 404)
    assert_error(await client.get(f"/v1/organizations/{uuid.uuid4()}/", headers=org.admin), 404)


async def test_ids_are_uuid4_and_times_are_utc_millis(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.get(f"/v1/organizations/{org.id}/", headers=org.admin)
    data = response.json()["data"]
    assert uuid.UUID(data["id"]).version == 4
    assert TIMESTAMP.match(data["attributes"]["last-modified-time"])


async def test_malformed_uuid_in_body_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/api-keys/",
        headers=MASTER,
        json=doc("api-keys", {"name": "k", "role": "staff", "organization-id": "nope"}),
    )
    body = assert_error(response, 400)
    assert body["errors"][0]["source"] == {"pointer": "/data/attributes/organization-id"}


async def test_naive_time_refused_offset_time_normalised(
    client: httpx.AsyncClient, org: Org
) -> None:
    naive = await client.post(
        "/v1/api-keys/",
        headers=org.admin,
        json=doc("api-keys", {"name": "k", "role": "staff", "expires-at": "2099-01-15T10:00:00"}),
    )
    body = assert_error(naive, 400)
    assert body["errors"][0]["source"] == {"pointer": "/data/attributes/expires-at"}
    assert "offset" in body["errors"][0]["detail"]
    aware = await client.post(
        "/v1/api-keys/",
        headers=org.admin,
        json=doc(
            "api-keys", {"name": "k", "role": "staff", "expires-at": "2099-01-15T10:00:00-05:00"}
        ),
    )
    assert aware.status_code == 201, aware.text
    assert aware.json()["data"]["attributes"]["expires-at"] == "2099-01-15T15:00:00.000Z"


# --- lists ---------------------------------------------------------------------------------


async def test_paging_meta_links_and_aliases(client: httpx.AsyncClient) -> None:
    prefix = f"Paging {uuid.uuid4().hex[:6]}"
    for index in range(5):
        created = await client.post(
            "/v1/organizations/",
            headers=MASTER,
            json=doc("organizations", {"name": f"{prefix} {index}"}),
        )
        assert created.status_code == 201
    base = f"/v1/organizations/?filter[name]={prefix}&sort=-name"
    first = (await client.get(base + "&page[limit]=2", headers=MASTER)).json()
    assert [d["attributes"]["name"] for d in first["data"]] == [f"{prefix} 4", f"{prefix} 3"]
    meta = first["meta"]
    assert (meta["page[limit]"], meta["page[offset]"], meta["page[total]"]) == (2, 0, 5)
    assert meta["pagination"] == {
        "start": 1,
        "requested_size": 2,
        "returned_count": 2,
        "total": 5,
        "hasMore": True,
    }
    assert first["links"]["prev"] is None
    assert (
        "page%5Boffset%5D=2" in first["links"]["next"] or "page[offset]=2" in first["links"]["next"]
    )
    last = (await client.get(base + "&page[limit]=2&page[offset]=4", headers=MASTER)).json()
    assert [d["attributes"]["name"] for d in last["data"]] == [f"{prefix} 0"]
    assert last["links"]["next"] is None
    assert last["meta"]["pagination"]["hasMore"] is False
    aliased = (await client.get(base + "&size=2&start=3", headers=MASTER)).json()
    assert [d["attributes"]["name"] for d in aliased["data"]] == [f"{prefix} 2", f"{prefix} 1"]
    assert aliased["meta"]["pagination"]["start"] == 3


async def test_paging_out_of_range(client: httpx.AsyncClient, org: Org) -> None:
    for query, parameter in [
        ("page[limit]=1001", "page[limit]"),
        ("page[offset]=-1", "page[offset]"),
        ("page[limit]=abc", "page[limit]"),
        ("start=0", "start"),
    ]:
        response = await client.get(f"/v1/organizations/?{query}", headers=org.admin)
        body = assert_error(response, 400)
        assert body["errors"][0]["source"] == {"parameter": parameter}, query


async def test_page_parameters_win_over_their_aliases(client: httpx.AsyncClient, org: Org) -> None:
    """As the OpenAPI document says: size/start count only where page[...] is absent."""
    ids = []
    for n in range(3):
        created = await client.post(
            "/v1/individuals/",
            json=doc("individuals", {"first-name": f"P{n}", "last-name": "Page"}),
            headers=org.admin,
        )
        ids.append(created.json()["data"]["id"])
    listed = await client.get("/v1/individuals/?sort=first-name", headers=org.admin)
    order = [item["id"] for item in listed.json()["data"]]
    mixed = await client.get(
        "/v1/individuals/?sort=first-name&size=1&page[limit]=2&start=3&page[offset]=1",
        headers=org.admin,
    )
    assert mixed.status_code == 200, mixed.text
    assert [item["id"] for item in mixed.json()["data"]] == order[1:3]
    halves = await client.get(
        "/v1/individuals/?sort=first-name&page[limit]=1&start=2", headers=org.admin
    )
    assert [item["id"] for item in halves.json()["data"]] == order[1:2]
    # An alias the JSON:API parameter overrides is still checked: a bad value is a 400.
    for bad in ("size=&page[limit]=2", "start=0&page[offset]=1", "start=true&page[offset]=1"):
        answer = await client.get(f"/v1/individuals/?{bad}", headers=org.admin)
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.json()["errors"][0]["source"]["parameter"] == bad.split("=")[0]


async def test_stable_order_breaks_ties_by_id(client: httpx.AsyncClient) -> None:
    name = f"Tie {uuid.uuid4().hex[:6]}"
    ids = set()
    for _ in range(4):
        created = await client.post(
            "/v1/organizations/", headers=MASTER, json=doc("organizations", {"name": name})
        )
        ids.add(created.json()["data"]["id"])
    seen: list[str] = []
    for offset in range(4):
        page = await client.get(
            f"/v1/organizations/?filter[name]={name}&sort=name&page[limit]=1&page[offset]={offset}",
            headers=MASTER,
        )
        seen += [d["id"] for d in page.json()["data"]]
    assert len(seen) == 4 and set(seen) == ids


async def test_time_window_filter_validation(client: httpx.AsyncClient, org: Org) -> None:
    ok = await client.get(
        "/v1/audit-events/?filter[cmp-occurred-at]=>2020-01-01T00:00:00Z"
        "&filter[cmp-occurred-at]=<2999-01-01T00:00:00%2B02:00",
        headers=org.admin,
    )
    if ok.status_code == 404:
        pytest.skip("audit-events not served yet")
    assert ok.status_code == 200, ok.text
    naive = await client.get(
        "/v1/audit-events/?filter[cmp-occurred-at]=>2020-01-01T00:00:00", headers=org.admin
    )
    assert assert_error(naive, 400)["errors"][0]["source"] == {
        "parameter": "filter[cmp-occurred-at]"
    }


# --- HTTP conveniences ---------------------------------------------------------------------


async def test_etag_and_if_none_match(client: httpx.AsyncClient, org: Org) -> None:
    first = await client.get(f"/v1/organizations/{org.id}/", headers=org.admin)
    etag = first.headers["etag"]
    again = await client.get(
        f"/v1/organizations/{org.id}/", headers={**org.admin, "If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    changed = await client.patch(
        f"/v1/organizations/{org.id}/",
        headers=org.admin,
        json=doc("organizations", {"display-name": "Renamed"}, org.id),
    )
    assert changed.status_code == 200
    after = await client.get(
        f"/v1/organizations/{org.id}/", headers={**org.admin, "If-None-Match": etag}
    )
    assert after.status_code == 200 and after.headers["etag"] != etag


async def test_if_match(client: httpx.AsyncClient, org: Org) -> None:
    etag = (await client.get(f"/v1/organizations/{org.id}/", headers=org.admin)).headers["etag"]
    stale = '"0000"'
    refused = await client.patch(
        f"/v1/organizations/{org.id}/",
        headers={**org.admin, "If-Match": stale},
        json=doc("organizations", {"display-name": "Nope"}, org.id),
    )
    assert_error(refused, 412)
    accepted = await client.patch(
        f"/v1/organizations/{org.id}/",
        headers={**org.admin, "If-Match": etag},
        json=doc("organizations", {"display-name": "Yes"}, org.id),
    )
    assert accepted.status_code == 200
    assert accepted.json()["data"]["attributes"]["display-name"] == "Yes"


async def test_patch_id_mismatch_is_409(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.patch(
        f"/v1/organizations/{org.id}/",
        headers=org.admin,
        json=doc("organizations", {"display-name": "x"}, str(uuid.uuid4())),
    )
    assert assert_error(response, 409)["errors"][0]["source"] == {"pointer": "/data/id"}


async def test_method_override_on_post_only(client: httpx.AsyncClient, org: Org) -> None:
    patched = await client.post(
        f"/v1/organizations/{org.id}/",
        headers={**org.admin, "X-HTTP-Method-Override": "PATCH"},
        json=doc("organizations", {"display-name": "Overridden"}, org.id),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["attributes"]["display-name"] == "Overridden"
    via_query = await client.post(
        f"/v1/organizations/{org.id}/?method=PATCH",
        headers=org.admin,
        json=doc("organizations", {"display-name": "Query"}, org.id),
    )
    assert via_query.status_code == 200, via_query.text
    key = await client.post(
        "/v1/api-keys/", headers=org.admin, json=doc("api-keys", {"name": "t", "role": "staff"})
    )
    key_id = key.json()["data"]["id"]
    refused = await client.get(f"/v1/api-keys/{key_id}/?method=DELETE", headers=org.admin)
    assert assert_error(refused, 400)["errors"][0]["source"] == {"parameter": "method"}
    still = await client.get(f"/v1/api-keys/{key_id}/", headers=org.admin)
    assert still.json()["data"]["attributes"]["revoked-at"] is None


async def test_collection_delete_needs_delete_all(client: httpx.AsyncClient, org: Org) -> None:
    refused = await client.delete("/v1/api-keys/", headers=org.admin)
    assert assert_error(refused, 400)["errors"][0]["source"] == {"parameter": "delete_all"}
    # The staff key is still valid: nothing was revoked.
    assert (await client.get("/v1/organizations/", headers=org.staff)).status_code == 200
    done = await client.delete("/v1/api-keys/?delete_all=1", headers=org.admin)
    assert done.status_code == 200
    assert done.json()["meta"]["deleted"] == 2
    assert (await client.get("/v1/organizations/", headers=org.staff)).status_code == 401
    assert (await client.get("/v1/organizations/", headers=org.admin)).status_code == 200


async def test_request_id_echoed_or_generated(client: httpx.AsyncClient, org: Org) -> None:
    echoed = await client.get("/v1/organizations/", headers={**org.admin, "X-Request-Id": "abc-1"})
    assert echoed.headers["x-request-id"] == "abc-1"
    generated = await client.get("/v1/organizations/", headers=org.admin)
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    hostile = await client.get(
        "/v1/organizations/", headers={**org.admin, "X-Request-Id": "bad id\twith spaces"}
    )
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"


async def test_trailing_slash_optional(client: httpx.AsyncClient, org: Org) -> None:
    without = await client.get(f"/v1/organizations/{org.id}", headers=org.admin)
    assert without.status_code == 200
    assert without.json()["data"]["id"] == org.id


async def test_basic_and_bearer_credentials(client: httpx.AsyncClient, org: Org) -> None:
    assert (await client.get("/v1/organizations/", headers=org.admin)).status_code == 200
    good = await client.get("/v1/organizations/", headers=basic(org.admin_key_id, org.admin_secret))
    assert good.status_code == 200
    bad = await client.get("/v1/organizations/", headers=basic(org.admin_key_id, "wrong"))
    assert_error(bad, 401)
    assert "Basic" in bad.headers["www-authenticate"]


# --- operational endpoints -----------------------------------------------------------------


async def test_health_ready_metrics_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    await client.get("/v1/organizations/")
    metrics = await client.get("/metrics", headers={"Accept": "text/plain"})
    assert metrics.status_code == 200
    assert 'route="/v1/organizations/"' in metrics.text
    assert "courier_http_request_duration_seconds_bucket" in metrics.text
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    script = await client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


async def test_readyz_reports_unreachable_database(tmp_path: Any) -> None:
    settings = make_settings("postgresql+asyncpg://nobody@127.0.0.1:1/none", tmp_path)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/readyz")
        assert (await http.get("/healthz")).status_code == 200
    assert_error(response, 503)
    assert response.headers["retry-after"]


async def test_openapi_has_exact_resource_schemas(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "OrganizationsDocument" in schemas and "OrganizationsCreateRequest" in schemas
    listing = document["paths"]["/v1/organizations/"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"filter[name]", "page[limit]", "page[offset]", "sort"} <= names


async def test_shutting_down_answers_503_with_retry_after(settings: Any) -> None:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        app.state.shutting_down = True
        response = await http.get("/v1/organizations/")
        health = await http.get("/healthz")
    assert_error(response, 503)
    assert response.headers["retry-after"]
    assert health.status_code == 200  # the process itself is still up
