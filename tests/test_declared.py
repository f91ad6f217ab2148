"""The generic layer as a user meets it: declared actions (plain and JSON:API bodies),
organization-id in bodies, kebab-case attribute names, errors that say what would have worked."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Org, doc
from tests.factories import make_group, make_individual_id, make_job, make_user


async def _failed_job(client: httpx.AsyncClient, org: Org, app: Any) -> str:
    import uuid

    from sqlalchemy import update

    from courier.core.tenancy import unscoped
    from courier.models.job import Job

    ident = await make_job(client, org)
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            unscoped(update(Job).where(Job.id == uuid.UUID(ident)).values(state="failed"), "test")
        )
        await session.commit()
    return ident


async def test_action_body_plain_or_json_api_document(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    plain = await _failed_job(client, org, app)
    answer = await client.post(f"/v1/jobs/{plain}/retry/", headers=org.admin, json={})
    assert answer.status_code == 201, answer.text
    assert answer.json()["data"]["attributes"]["state"] == "queued"

    wrapped = await _failed_job(client, org, app)
    answer = await client.post(
        f"/v1/jobs/{wrapped}/retry/", headers=org.admin, json=doc("jobs", {})
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["data"]["id"] == wrapped

    # Not a known attribute, plain or wrapped: 400.
    answer = await client.post(
        f"/v1/jobs/{wrapped}/retry/", headers=org.admin, json=doc("jobs", {"soon": True})
    )
    assert answer.status_code == 400
    # The wrapper's own parts keep their JSON:API types: meta an object, type and id strings.
    for broken in (
        {"data": {"type": "jobs", "attributes": {}}, "meta": [None]},
        {"data": {"type": 5, "attributes": {}}},
        {"data": {"type": "jobs", "id": 7, "attributes": {}}},
        {"data": {"type": "jobs", "attributes": {}, "relationships": {}}},
    ):
        answer = await client.post(f"/v1/jobs/{wrapped}/retry/", headers=org.admin, json=broken)
        assert answer.status_code == 400, (broken, answer.text)
        assert answer.json()["errors"][0]["code"] == "invalid-envelope"
    # The audit log shows each retry once.
    events = await client.get("/v1/audit-events/?filter[action]=retried", headers=org.admin)
    if events.status_code == 200:
        retried = {e["attributes"]["resource-id"] for e in events.json()["data"]}
        assert {plain, wrapped} <= retried


async def test_declared_action_in_openapi(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/jobs/{id}/retry/"]["post"]
    assert operation["operationId"] == "retry-v1-jobs"
    assert "201" in operation["responses"]
    deliveries = spec["paths"]["/v1/webhooks/{id}/get-deliveries/"]["get"]
    assert {p["name"] for p in deliveries["parameters"]} >= {"page[limit]", "page[offset]"}


async def test_organization_id_accepted_in_create_and_update_bodies(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    own = {"first-name": "Ada", "last-name": "Lovelace", "organization-id": org.id}
    created = await client.post("/v1/individuals/", headers=org.admin, json=doc("individuals", own))
    assert created.status_code == 201, created.text
    ident = created.json()["data"]["id"]

    patched = await client.patch(
        f"/v1/individuals/{ident}/",
        headers=org.admin,
        json=doc("individuals", {"preferred-name": "Ada", "organization-id": org.id}, ident),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["attributes"]["preferred-name"] == "Ada"

    foreign = {"first-name": "Eve", "last-name": "Other", "organization-id": other_org.id}
    refused = await client.post(
        "/v1/individuals/", headers=org.admin, json=doc("individuals", foreign)
    )
    assert refused.status_code == 404
    assert refused.json()["errors"][0]["source"] == {"pointer": "/data/attributes/organization-id"}
    moved = await client.patch(
        f"/v1/individuals/{ident}/",
        headers=org.admin,
        json=doc("individuals", {"organization-id": other_org.id}, ident),
    )
    assert moved.status_code == 404

    # Users and groups take it too.
    for path, type_name, make in (
        ("/v1/users/", "users", make_user),
        ("/v1/individual-groups/", "individual-groups", make_group),
    ):
        existing = await make(client, org)
        same = await client.patch(
            f"{path}{existing}/",
            headers=org.admin,
            json=doc(type_name, {"organization-id": org.id}, existing),
        )
        assert same.status_code == 200, (path, same.text)
        other = await client.patch(
            f"{path}{existing}/",
            headers=org.admin,
            json=doc(type_name, {"organization-id": other_org.id}, existing),
        )
        assert other.status_code == 404, (path, other.text)


async def test_snake_case_attribute_refused_naming_kebab_case(
    client: httpx.AsyncClient, org: Org
) -> None:
    answer = await client.post(
        "/v1/individuals/",
        headers=org.admin,
        json=doc("individuals", {"first_name": "Ada", "last-name": "Lovelace"}),
    )
    assert answer.status_code == 400
    error = answer.json()["errors"][0]
    assert error["source"] == {"pointer": "/data/attributes/first_name"}
    assert "first-name" in error["detail"]
    # Nothing was created under either spelling.
    listing = await client.get("/v1/individuals/?page[limit]=1000", headers=org.admin)
    assert all(i["attributes"].get("last-name") != "Lovelace" for i in listing.json()["data"])


async def test_errors_say_what_would_have_worked(client: httpx.AsyncClient, org: Org) -> None:
    # The role a credential lacks.
    refused = await client.post(
        "/v1/individuals/",
        headers=org.staff,
        json=doc("individuals", {"first-name": "A", "last-name": "B"}),
    )
    assert refused.status_code == 403
    assert "admin" in refused.json()["errors"][0]["detail"]
    # The filters an endpoint allows.
    bogus = await client.get("/v1/individuals/?filter[nope]=1", headers=org.admin)
    assert bogus.status_code == 400
    detail = bogus.json()["errors"][0]["detail"]
    assert "filter[nope]" in detail and "filter[" in detail.split("filter[nope]", 1)[1]


async def test_individual_action_rules(client: httpx.AsyncClient, org: Org) -> None:
    individual = await make_individual_id(client, org)
    answer = await client.post(
        f"/v1/individuals/{individual}/recalculate-communication-summary/",
        headers=org.staff,
        json={"data": {"type": "individuals", "attributes": {}}},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["meta"] == {
        "channels": 0,
        "repaired-channels": 0,
        "clamped-subscribers": 0,
        "recounted-subscribers": 0,
        "recounted-channels": 0,
    }


def test_one_of_each_shared_helper() -> None:
    """Issue 9: one `now_ms`, one `require_individual` (and `require_individuals`), one
    `paginate` in `courier/`: a domain needing one imports it instead of writing its own."""
    import courier

    defined: dict[str, list[str]] = {}
    root = Path(courier.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                defined.setdefault(node.name, []).append(str(path.relative_to(root)))
    for name in ("now_ms", "require_individual", "require_individuals", "paginate"):
        assert len(defined.get(name, [])) == 1, (name, defined.get(name))
