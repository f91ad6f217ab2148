"""Badge counts: set (create or replace), read, list, and bulk all-or-nothing sets."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from courier.core.tenancy import unscoped
from courier.models.audit_event import AuditEvent
from tests.conftest import Org, doc
from tests.test_inbox_support import error_source, individual, token


def badge(individual_id: str, kind: str = "appointment", count: Any = 3, **extra: Any) -> Any:
    return {"individual-id": individual_id, "type": kind, "count": count, **extra}


async def set_badge(
    client: httpx.AsyncClient, headers: dict[str, str], attributes: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        "/v1/badge-counts/", json=doc("badge-counts", attributes), headers=headers
    )


async def bulk(
    client: httpx.AsyncClient, headers: dict[str, str], values: list[dict[str, Any]]
) -> httpx.Response:
    return await client.post(
        "/v1/bulk-badge-counts/",
        json=doc("bulk-badge-counts", {"values": values}),
        headers=headers,
    )


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], individual_id: str | None = None
) -> dict[str, dict[str, Any]]:
    params = {} if individual_id is None else {"individual-id": individual_id}
    response = await client.get("/v1/badge-counts/", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return {item["attributes"]["type"]: item for item in response.json()["data"]}


async def test_set_creates_then_replaces_keeping_id_and_timestamp(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    patient = await individual(client, org)
    first = await set_badge(
        client, org.staff, badge(patient, count=2, timestamp="2024-01-15T05:00:00-05:00")
    )
    assert first.status_code == 201, first.text
    data = first.json()["data"]
    assert data["type"] == "badge-counts"
    assert data["attributes"] == {
        "count": 2,
        "individual-id": patient,
        "type": "appointment",
        "timestamp": "2024-01-15T10:00:00.000Z",
        "organization-id": org.id,
        "last-modified-at": data["attributes"]["last-modified-at"],
    }
    second = await set_badge(
        client, org.admin, badge(patient, count=7, timestamp="2024-02-01T00:00:00Z")
    )
    assert second.status_code == 201, second.text
    replaced = second.json()["data"]
    assert replaced["id"] == data["id"]
    assert replaced["attributes"]["count"] == 7
    assert replaced["attributes"]["timestamp"] == "2024-02-01T00:00:00.000Z"

    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(
            select(AuditEvent.action)
            .where(AuditEvent.resource_id == uuid.UUID(data["id"]))
            .order_by(AuditEvent.occurred_at),
            "test reads the audit log",
        )
        assert (await session.execute(stmt)).scalars().all() == ["created", "updated"]

    got = await client.get(f"/v1/badge-counts/{data['id']}/", headers=org.readonly)
    assert got.status_code == 200
    assert got.json()["data"]["attributes"]["count"] == 7
    assert list(await listed(client, org.readonly, patient)) == ["appointment"]


async def test_timestamp_defaults_to_the_time_of_the_set(
    client: httpx.AsyncClient, org: Org
) -> None:
    patient = await individual(client, org)
    response = await set_badge(client, org.staff, badge(patient))
    assert response.status_code == 201, response.text
    attributes = response.json()["data"]["attributes"]
    assert attributes["timestamp"].endswith("Z")
    assert attributes["timestamp"] == attributes["last-modified-at"]


async def test_types_are_kept_apart_and_listed_in_order(
    client: httpx.AsyncClient, org: Org
) -> None:
    patient = await individual(client, org)
    other = await individual(client, org)
    for kind, count in (("survey", 1), ("appointment", 4), ("message", 0)):
        assert (await set_badge(client, org.staff, badge(patient, kind, count))).status_code == 201
    assert (await set_badge(client, org.staff, badge(other, "survey", 9))).status_code == 201
    response = await client.get(
        "/v1/badge-counts/", params={"individual-id": patient}, headers=org.staff
    )
    assert response.status_code == 200
    body = response.json()
    assert [(i["attributes"]["type"], i["attributes"]["count"]) for i in body["data"]] == [
        ("appointment", 4),
        ("message", 0),
        ("survey", 1),
    ]
    assert body["meta"]["page[total]"] == 3
    paged = await client.get(
        "/v1/badge-counts/",
        params={"individual-id": patient, "page[limit]": "2", "page[offset]": "2"},
        headers=org.staff,
    )
    assert [i["attributes"]["type"] for i in paged.json()["data"]] == ["survey"]
    assert paged.json()["links"]["prev"] is not None


async def test_bad_values_are_refused(client: httpx.AsyncClient, org: Org) -> None:
    patient = await individual(client, org)
    cases = [
        (badge(patient, count=-1), "/data/attributes/count"),
        (badge(patient, count="3"), "/data/attributes/count"),
        (badge(patient, count=2**31), "/data/attributes/count"),
        (badge(patient, kind=""), "/data/attributes/type"),
        (badge(patient, kind="a" * 65), "/data/attributes/type"),
        (badge(patient, kind="no spaces"), "/data/attributes/type"),
        (badge(patient, timestamp="2024-01-15T10:00:00"), "/data/attributes/timestamp"),
        (badge("not-a-uuid"), "/data/attributes/individual-id"),
        ({"type": "appointment", "count": 1}, "/data/attributes/individual-id"),
        (badge(patient, colour="red"), "/data/attributes/colour"),
    ]
    for attributes, pointer in cases:
        response = await set_badge(client, org.staff, attributes)
        assert response.status_code == 400, (attributes, response.text)
        assert error_source(response) == {"pointer": pointer}, attributes
    assert await listed(client, org.staff, patient) == {}


async def test_references_outside_the_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    stranger = await individual(client, other_org)
    response = await set_badge(client, org.staff, badge(stranger))
    assert response.status_code == 404
    assert error_source(response) == {"pointer": "/data/attributes/individual-id"}

    patient = await individual(client, org)
    response = await set_badge(
        client, org.staff, badge(patient, **{"organization-id": other_org.id})
    )
    assert response.status_code == 404
    assert error_source(response) == {"pointer": "/data/attributes/organization-id"}
    same = await set_badge(client, org.staff, badge(patient, **{"organization-id": org.id}))
    assert same.status_code == 201

    ident = same.json()["data"]["id"]
    assert (
        await client.get(f"/v1/badge-counts/{ident}/", headers=other_org.admin)
    ).status_code == 404
    listing = await client.get(
        "/v1/badge-counts/", params={"individual-id": patient}, headers=other_org.admin
    )
    assert listing.status_code == 404
    narrowed = await client.get(
        "/v1/badge-counts/",
        params={"individual-id": patient, "organization-id": other_org.id},
        headers=org.admin,
    )
    assert narrowed.status_code == 200 and narrowed.json()["data"] == []
    assert (await client.get("/v1/badge-counts/not-a-uuid/", headers=org.admin)).status_code == 404


async def test_roles(client: httpx.AsyncClient, org: Org) -> None:
    patient = await individual(client, org)
    other = await individual(client, org)
    patient_token = await token(client, org, patient)

    assert (await set_badge(client, org.readonly, badge(patient))).status_code == 403
    assert (await set_badge(client, patient_token, badge(patient))).status_code == 403
    assert (await bulk(client, org.readonly, [badge(patient)])).status_code == 403
    assert (await bulk(client, patient_token, [badge(patient)])).status_code == 403
    mine = await set_badge(client, org.staff, badge(patient, count=5))
    theirs = await set_badge(client, org.staff, badge(other, count=6))

    # An individual token reads its own counts, with or without naming itself.
    assert (await listed(client, patient_token))["appointment"]["attributes"]["count"] == 5
    assert (await listed(client, patient_token, patient))["appointment"]["id"] == mine.json()[
        "data"
    ]["id"]
    refused = await client.get(
        "/v1/badge-counts/", params={"individual-id": other}, headers=patient_token
    )
    assert refused.status_code == 403
    own = await client.get(f"/v1/badge-counts/{mine.json()['data']['id']}/", headers=patient_token)
    assert own.status_code == 200
    hidden = await client.get(
        f"/v1/badge-counts/{theirs.json()['data']['id']}/", headers=patient_token
    )
    assert hidden.status_code == 404


async def test_list_parameters(client: httpx.AsyncClient, org: Org) -> None:
    patient = await individual(client, org)
    missing = await client.get("/v1/badge-counts/", headers=org.staff)
    assert missing.status_code == 400
    assert error_source(missing) == {"parameter": "individual-id"}
    for params, parameter in (
        ({"individual-id": "nope"}, "individual-id"),
        ({"individual-id": patient, "organization-id": "nope"}, "organization-id"),
        ({"individual-id": patient, "page[limit]": "0"}, "page[limit]"),
        ({"individual-id": patient, "page[limit]": "1001"}, "page[limit]"),
        ({"individual-id": patient, "filter[type]": "appointment"}, "filter[type]"),
        ({"individual-id": patient, "sort": "type"}, "sort"),
    ):
        response = await client.get("/v1/badge-counts/", params=params, headers=org.staff)
        assert response.status_code == 400, (params, response.text)
        assert error_source(response) == {"parameter": parameter}, params
    unknown = await client.get(
        "/v1/badge-counts/", params={"individual-id": str(org.id)}, headers=org.staff
    )
    assert unknown.status_code == 404


async def test_type_mismatch_is_a_conflict(client: httpx.AsyncClient, org: Org) -> None:
    patient = await individual(client, org)
    response = await client.post(
        "/v1/badge-counts/", json=doc("badges", badge(patient)), headers=org.staff
    )
    assert response.status_code == 409
    response = await client.post(
        "/v1/bulk-badge-counts/",
        json=doc("badge-counts", {"values": [badge(patient)]}),
        headers=org.staff,
    )
    assert response.status_code == 409
    assert await listed(client, org.staff, patient) == {}


# --- bulk ------------------------------------------------------------------------------------


async def test_bulk_sets_every_value(client: httpx.AsyncClient, org: Org) -> None:
    patient = await individual(client, org)
    other = await individual(client, org)
    before = await set_badge(client, org.staff, badge(patient, "survey", 1))
    response = await bulk(
        client,
        org.staff,
        [
            badge(patient, "appointment", 2, timestamp="2024-03-01T12:00:00+01:00"),
            badge(patient, "survey", 8),
            badge(other, "appointment", 0, **{"organization-id": org.id}),
        ],
    )
    assert response.status_code == 201, response.text
    assert response.json() is None
    counts = await listed(client, org.staff, patient)
    assert {kind: item["attributes"]["count"] for kind, item in counts.items()} == {
        "appointment": 2,
        "survey": 8,
    }
    assert counts["appointment"]["attributes"]["timestamp"] == "2024-03-01T11:00:00.000Z"
    assert counts["survey"]["id"] == before.json()["data"]["id"]
    assert (await listed(client, org.staff, other))["appointment"]["attributes"]["count"] == 0


async def test_bulk_is_all_or_nothing(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    patient = await individual(client, org)
    stranger = await individual(client, other_org)
    assert (await set_badge(client, org.staff, badge(patient, "survey", 1))).status_code == 201
    good = [badge(patient, "appointment", 2), badge(patient, "survey", 5)]

    invalid = await bulk(client, org.staff, [*good, badge(patient, "message", -4)])
    assert invalid.status_code == 400
    assert error_source(invalid) == {"pointer": "/data/attributes/values/2/count"}

    unknown = await bulk(client, org.staff, [good[0], badge(stranger), good[1]])
    assert unknown.status_code == 404
    assert error_source(unknown) == {"pointer": "/data/attributes/values/1/individual-id"}
    assert "values[1]" in unknown.json()["errors"][0]["detail"]

    elsewhere = await bulk(
        client, org.staff, [*good, badge(patient, "x", 1, **{"organization-id": other_org.id})]
    )
    assert elsewhere.status_code == 404
    assert error_source(elsewhere) == {"pointer": "/data/attributes/values/2/organization-id"}

    repeated = await bulk(client, org.staff, [*good, badge(patient, "appointment", 9)])
    assert repeated.status_code == 400
    assert error_source(repeated) == {"pointer": "/data/attributes/values/2/type"}
    assert "values[0]" in repeated.json()["errors"][0]["detail"]

    empty = await bulk(client, org.staff, [])
    assert empty.status_code == 400
    too_many = await bulk(client, org.staff, [badge(patient, f"t{i}", 1) for i in range(1001)])
    assert too_many.status_code == 400

    counts = await listed(client, org.staff, patient)
    assert {kind: item["attributes"]["count"] for kind, item in counts.items()} == {"survey": 1}
