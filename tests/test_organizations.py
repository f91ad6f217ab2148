from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from courier.app import create_app
from tests.conftest import MASTER, MASTER_KEY, Org, doc, make_settings

PATH = "/v1/organizations/"


def org_doc(attributes: dict[str, Any], ident: str | None = None) -> dict[str, Any]:
    return doc("organizations", attributes, ident)


async def test_master_key_creates_an_organization(client: httpx.AsyncClient) -> None:
    response = await client.post(
        PATH,
        json=org_doc(
            {
                "name": "Bayside Pediatrics",
                "display-name": "Bayside",
                "classification": "clinic",
                "provider-type": "pediatrics",
                "timezone": "America/Los_Angeles",
            }
        ),
        headers=MASTER,
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["type"] == "organizations"
    assert uuid.UUID(data["id"]).version == 4
    assert data["attributes"] == {
        "name": "Bayside Pediatrics",
        "display-name": "Bayside",
        "classification": "clinic",
        "provider-type": "pediatrics",
        "timezone": "America/Los_Angeles",
        "last-modified-time": data["attributes"]["last-modified-time"],
    }
    assert data["attributes"]["last-modified-time"].endswith("Z")

    fetched = await client.get(f"{PATH}{data['id']}/", headers=MASTER)
    assert fetched.status_code == 200
    assert fetched.json()["data"] == data


async def test_timezone_defaults_to_utc(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, json=org_doc({"name": "Plain"}), headers=MASTER)
    assert response.status_code == 201
    assert response.json()["data"]["attributes"]["timezone"] == "UTC"


@pytest.mark.parametrize(
    "timezone", ["Mars/Olympus_Mons", "localtime", "", "+02:00", "america/new_york", 5]
)
async def test_timezone_must_be_an_iana_zone(client: httpx.AsyncClient, timezone: Any) -> None:
    response = await client.post(
        PATH, json=org_doc({"name": "Zoned", "timezone": timezone}), headers=MASTER
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"][0]["source"] == {"pointer": "/data/attributes/timezone"}


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({}, "/data/attributes/name"),
        ({"name": ""}, "/data/attributes/name"),
        ({"name": "x" * 256}, "/data/attributes/name"),
        ({"name": "Ok", "colour": "blue"}, "/data/attributes/colour"),
        ({"name": None}, "/data/attributes/name"),
    ],
)
async def test_bad_attributes_are_refused(
    client: httpx.AsyncClient, attributes: dict[str, Any], pointer: str
) -> None:
    response = await client.post(PATH, json=org_doc(attributes), headers=MASTER)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"] == {"pointer": pointer}


async def test_only_the_master_key_creates_organizations(
    client: httpx.AsyncClient, org: Org
) -> None:
    for headers in (org.admin, org.staff, org.readonly):
        response = await client.post(PATH, json=org_doc({"name": "Rogue"}), headers=headers)
        assert response.status_code == 403
    response = await client.post(PATH, json=org_doc({"name": "Rogue"}))
    assert response.status_code == 401
    response = await client.post(
        PATH, json=org_doc({"name": "Rogue"}), headers={"Authorization": "Bearer wrong-master"}
    )
    assert response.status_code == 401


@pytest.fixture
async def masterless_client(database_url: str, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, data_dir, master_key=None))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            yield http


async def test_without_a_master_key_nobody_creates_organizations(
    masterless_client: httpx.AsyncClient, org: Org
) -> None:
    body = org_doc({"name": "Nobody's"})
    response = await masterless_client.post(PATH, json=body, headers=MASTER)
    assert response.status_code == 401
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
        response = await masterless_client.post(PATH, json=body, headers=headers)
        assert response.status_code == 401
    response = await masterless_client.post(PATH, json=body, headers=org.admin)
    assert response.status_code == 403
    # The organization's own keys keep working on that server.
    response = await masterless_client.get(f"{PATH}{org.id}/", headers=org.admin)
    assert response.status_code == 200
    assert MASTER_KEY  # the other server's master key was the one refused above


async def test_a_key_sees_only_its_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    for headers in (org.admin, org.staff, org.readonly):
        response = await client.get(PATH, headers=headers)
        assert response.status_code == 200
        assert [item["id"] for item in response.json()["data"]] == [org.id]
        assert (await client.get(f"{PATH}{org.id}/", headers=headers)).status_code == 200
        assert (await client.get(f"{PATH}{other_org.id}/", headers=headers)).status_code == 404
    assert (await client.get(f"{PATH}not-a-uuid/", headers=org.admin)).status_code == 404
    assert (await client.get(f"{PATH}{uuid.uuid4()}/", headers=MASTER)).status_code == 404


async def test_admin_modifies_its_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    response = await client.patch(
        f"{PATH}{org.id}/",
        json=org_doc({"display-name": "Northside", "timezone": "Europe/Paris"}, org.id),
        headers=org.admin,
    )
    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    assert attributes["display-name"] == "Northside"
    assert attributes["timezone"] == "Europe/Paris"
    assert attributes["name"].startswith("Clinic ")  # untouched
    fetched = await client.get(f"{PATH}{org.id}/", headers=org.readonly)
    assert fetched.json()["data"]["attributes"] == attributes

    # Clearing an optional attribute.
    response = await client.patch(
        f"{PATH}{org.id}/", json=org_doc({"display-name": None}, org.id), headers=org.admin
    )
    assert response.status_code == 200
    assert response.json()["data"]["attributes"]["display-name"] is None

    for headers in (org.staff, org.readonly):
        response = await client.patch(
            f"{PATH}{org.id}/", json=org_doc({"name": "Taken over"}, org.id), headers=headers
        )
        assert response.status_code == 403
    response = await client.patch(
        f"{PATH}{other_org.id}/",
        json=org_doc({"name": "Taken over"}, other_org.id),
        headers=org.admin,
    )
    assert response.status_code == 404
    theirs = await client.get(f"{PATH}{other_org.id}/", headers=other_org.admin)
    assert theirs.json()["data"]["attributes"]["name"] != "Taken over"


async def test_master_modifies_any_organization(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.patch(
        f"{PATH}{org.id}/", json=org_doc({"classification": "hospital"}, org.id), headers=MASTER
    )
    assert response.status_code == 200
    assert response.json()["data"]["attributes"]["classification"] == "hospital"


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"timezone": "Nowhere/Special"}, "/data/attributes/timezone"),
        ({"timezone": None}, "/data/attributes/timezone"),
        ({"name": None}, "/data/attributes/name"),
        ({"name": ""}, "/data/attributes/name"),
        ({"secret": "x"}, "/data/attributes/secret"),
    ],
)
async def test_bad_modifications_are_refused(
    client: httpx.AsyncClient, org: Org, attributes: dict[str, Any], pointer: str
) -> None:
    before = (await client.get(f"{PATH}{org.id}/", headers=org.admin)).json()
    response = await client.patch(
        f"{PATH}{org.id}/", json=org_doc(attributes, org.id), headers=org.admin
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"] == {"pointer": pointer}
    assert (await client.get(f"{PATH}{org.id}/", headers=org.admin)).json() == before


async def test_patch_type_and_id_must_match(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    response = await client.patch(
        f"{PATH}{org.id}/", json=doc("api-keys", {"name": "X"}, org.id), headers=org.admin
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["source"] == {"pointer": "/data/type"}

    response = await client.patch(
        f"{PATH}{org.id}/", json=org_doc({"name": "X"}, other_org.id), headers=org.admin
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["source"] == {"pointer": "/data/id"}

    response = await client.patch(
        f"{PATH}{org.id}/", json=org_doc({"name": "X"}), headers=org.admin
    )
    assert response.status_code == 400  # no id at all

    fetched = await client.get(f"{PATH}{org.id}/", headers=org.admin)
    assert fetched.json()["data"]["attributes"]["name"] != "X"


async def test_if_match(client: httpx.AsyncClient, org: Org) -> None:
    first = await client.get(f"{PATH}{org.id}/", headers=org.admin)
    stale = first.headers["etag"]
    assert stale

    response = await client.get(f"{PATH}{org.id}/", headers={**org.admin, "If-None-Match": stale})
    assert response.status_code == 304

    changed = await client.patch(
        f"{PATH}{org.id}/", json=org_doc({"display-name": "A"}, org.id), headers=org.admin
    )
    assert changed.status_code == 200
    current = (await client.get(f"{PATH}{org.id}/", headers=org.admin)).headers["etag"]
    assert current != stale

    response = await client.patch(
        f"{PATH}{org.id}/",
        json=org_doc({"display-name": "B"}, org.id),
        headers={**org.admin, "If-Match": stale},
    )
    assert response.status_code == 412
    assert response.json()["statusCode"] == 412
    fetched = await client.get(f"{PATH}{org.id}/", headers=org.admin)
    assert fetched.json()["data"]["attributes"]["display-name"] == "A"

    response = await client.patch(
        f"{PATH}{org.id}/",
        json=org_doc({"display-name": "B"}, org.id),
        headers={**org.admin, "If-Match": current},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"]["display-name"] == "B"


async def test_filter_and_sort(client: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:10]
    for name in (f"Beta {tag}", f"alpha {tag}", f"Gamma {tag}", "Unrelated"):
        response = await client.post(PATH, json=org_doc({"name": name}), headers=MASTER)
        assert response.status_code == 201

    async def names(**params: str) -> list[str]:
        response = await client.get(PATH, params=params, headers=MASTER)
        assert response.status_code == 200, response.text
        return [item["attributes"]["name"] for item in response.json()["data"]]

    # Alphabetical whatever the case.
    assert await names(**{"filter[name]": tag}) == [f"alpha {tag}", f"Beta {tag}", f"Gamma {tag}"]
    assert await names(**{"filter[name]": tag.upper()}) == await names(**{"filter[name]": tag})
    assert await names(**{"filter[name]": tag, "sort": "-name"}) == [
        f"Gamma {tag}",
        f"Beta {tag}",
        f"alpha {tag}",
    ]
    assert await names(**{"filter[name]": "%"}) == []  # wildcards are taken literally
    assert await names(**{"filter[name]": tag, "page[limit]": "2", "page[offset]": "2"}) == [
        f"Gamma {tag}"
    ]

    for params in (
        {"filter[colour]": "blue"},
        {"sort": "colour"},
        {"filter[name]": "x" * 256},
        {"page[limit]": "1001"},
    ):
        response = await client.get(PATH, params=params, headers=MASTER)
        assert response.status_code == 400, params
        assert response.json()["errors"][0]["source"]["parameter"]


async def test_no_delete(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.delete(f"{PATH}{org.id}/", headers=MASTER)
    assert response.status_code == 405
    assert (await client.get(f"{PATH}{org.id}/", headers=org.admin)).status_code == 200
