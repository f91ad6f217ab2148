from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from courier.core.tenancy import unscoped
from courier.models.api_key import ApiKey
from tests.conftest import MASTER, Org, basic, bearer, doc

PATH = "/v1/api-keys/"
WHO_AM_I = "/v1/organizations/"  # any endpoint every role may read


def key_doc(attributes: dict[str, Any]) -> dict[str, Any]:
    return doc("api-keys", attributes)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def create_key(
    client: httpx.AsyncClient, headers: dict[str, str], **attributes: Any
) -> dict[str, Any]:
    attributes.setdefault("name", "Front desk")
    attributes.setdefault("role", "staff")
    response = await client.post(PATH, json=key_doc(attributes), headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def works(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    response = await client.get(WHO_AM_I, headers=headers)
    assert response.status_code in (200, 401), response.text
    if response.status_code == 401:
        assert response.headers["www-authenticate"]
    return response.status_code == 200


async def test_master_creates_keys_for_an_organization(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/organizations/", json=doc("organizations", {"name": "Keyed"}), headers=MASTER
    )
    org_id = created.json()["data"]["id"]
    key = await create_key(client, MASTER, role="admin", **{"organization-id": org_id})
    attributes = key["attributes"]
    assert attributes["organization-id"] == org_id
    assert attributes["role"] == "admin"
    assert attributes["created-by"] == "master"
    assert attributes["secret"].startswith(attributes["secret-prefix"])
    assert attributes["revoked-at"] is None and attributes["expires-at"] is None

    response = await client.get(WHO_AM_I, headers=bearer(attributes["secret"]))
    assert [item["id"] for item in response.json()["data"]] == [org_id]

    # The master key must say which organization, and it must exist.
    response = await client.post(PATH, json=key_doc({"name": "k", "role": "staff"}), headers=MASTER)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"pointer": "/data/attributes/organization-id"}
    response = await client.post(
        PATH,
        json=key_doc({"name": "k", "role": "staff", "organization-id": str(uuid.uuid4())}),
        headers=MASTER,
    )
    assert response.status_code == 404


async def test_admin_creates_keys_for_its_own_organization_only(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    key = await create_key(client, org.admin, role="readonly")
    assert key["attributes"]["organization-id"] == org.id
    assert key["attributes"]["created-by"] == org.admin_key_id
    named = await create_key(client, org.admin, **{"organization-id": org.id})
    assert named["attributes"]["organization-id"] == org.id

    response = await client.post(
        PATH,
        json=key_doc({"name": "k", "role": "admin", "organization-id": other_org.id}),
        headers=org.admin,
    )
    assert response.status_code == 404
    listed = await client.get(PATH, headers=other_org.admin)
    assert len(listed.json()["data"]) == 3  # the fixture's keys only


async def test_staff_and_readonly_cannot_manage_keys(client: httpx.AsyncClient, org: Org) -> None:
    for headers in (org.staff, org.readonly):
        response = await client.post(
            PATH, json=key_doc({"name": "k", "role": "admin"}), headers=headers
        )
        assert response.status_code == 403
        assert (await client.get(PATH, headers=headers)).status_code == 403
        response = await client.delete(f"{PATH}{org.admin_key_id}/", headers=headers)
        assert response.status_code == 403
    assert await works(client, org.admin)


async def test_secret_is_shown_once(client: httpx.AsyncClient, org: Org) -> None:
    key = await create_key(client, org.admin)
    secret = key["attributes"]["secret"]
    listed = await client.get(PATH, headers=org.admin)
    assert listed.status_code == 200
    fetched = await client.get(f"{PATH}{key['id']}/", headers=org.admin)
    assert fetched.status_code == 200
    for response in (listed, fetched):
        assert secret not in response.text
        assert secret[len(key["attributes"]["secret-prefix"]) :] not in response.text
        assert '"secret"' not in response.text
    assert (
        fetched.json()["data"]["attributes"]["secret-prefix"] == key["attributes"]["secret-prefix"]
    )


async def test_bad_key_attributes(client: httpx.AsyncClient, org: Org) -> None:
    for attributes, pointer in (
        ({"name": "k", "role": "owner"}, "role"),
        ({"name": "", "role": "staff"}, "name"),
        ({"role": "staff"}, "name"),
        ({"name": "k", "role": "staff", "secret": "mine"}, "secret"),
        ({"name": "k", "role": "staff", "organization-id": "nope"}, "organization-id"),
        ({"name": "k", "role": "staff", "expires-at": "2999-01-01T00:00:00"}, "expires-at"),
        ({"name": "k", "role": "staff", "expires-at": "next week"}, "expires-at"),
        ({"name": "k", "role": "staff", "expires-at": "2020-01-01T00:00:00Z"}, "expires-at"),
    ):
        response = await client.post(PATH, json=key_doc(attributes), headers=org.admin)
        assert response.status_code == 400, (attributes, response.text)
        assert response.json()["errors"][0]["source"] == {"pointer": f"/data/attributes/{pointer}"}
    response = await client.post(
        PATH, json=doc("organizations", {"name": "k", "role": "staff"}), headers=org.admin
    )
    assert response.status_code == 409


async def test_basic_auth_with_key_id_and_secret(client: httpx.AsyncClient, org: Org) -> None:
    assert await works(client, basic(org.admin_key_id, org.admin_secret))
    assert not await works(client, basic(org.admin_key_id, org.admin_secret + "x"))
    assert not await works(client, basic(str(uuid.uuid4()), org.admin_secret))
    assert not await works(client, basic("not-a-uuid", org.admin_secret))
    token = base64.b64encode(org.admin_secret.encode()).decode()  # no "id:" part
    assert not await works(client, {"Authorization": f"Basic {token}"})
    assert not await works(client, {"Authorization": "Basic !!!"})
    assert not await works(client, bearer(org.admin_secret + "x"))
    assert not await works(client, {"Authorization": f"Token {org.admin_secret}"})


async def test_revoked_key_stops_working(client: httpx.AsyncClient, org: Org) -> None:
    key = await create_key(client, org.admin)
    headers = bearer(key["attributes"]["secret"])
    assert await works(client, headers)
    response = await client.delete(f"{PATH}{key['id']}/", headers=org.admin)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"]["revoked-at"] is not None
    assert not await works(client, headers)
    assert not await works(client, basic(key["id"], key["attributes"]["secret"]))
    # Revoking again changes nothing; the key is still listed, revoked.
    again = await client.delete(f"{PATH}{key['id']}/", headers=org.admin)
    assert again.status_code == 200
    assert (
        again.json()["data"]["attributes"]["revoked-at"]
        == (response.json()["data"]["attributes"]["revoked-at"])
    )
    assert await works(client, org.admin)


async def test_cannot_revoke_another_organizations_key(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    response = await client.delete(f"{PATH}{other_org.admin_key_id}/", headers=org.admin)
    assert response.status_code == 404
    assert (
        await client.get(f"{PATH}{other_org.admin_key_id}/", headers=org.admin)
    ).status_code == (404)
    assert await works(client, other_org.admin)
    assert (await client.delete(f"{PATH}not-a-uuid/", headers=org.admin)).status_code == 404


async def test_expired_key_stops_working(client: httpx.AsyncClient, app: Any, org: Org) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    key = await create_key(client, org.admin, **{"expires-at": iso(soon)})
    assert key["attributes"]["expires-at"].endswith("Z")
    secret = key["attributes"]["secret"]
    assert await works(client, bearer(secret))

    async with app.state.database.sessionmaker() as session:
        stmt = (
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(key["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.execute(unscoped(stmt, "test: let the key expire"))
        await session.commit()

    assert not await works(client, bearer(secret))
    assert not await works(client, basic(key["id"], secret))
    assert await works(client, org.admin)


async def test_delete_all_needs_confirmation(client: httpx.AsyncClient, org: Org) -> None:
    for query in ("", "?delete_all=0", "?delete_all=yes"):
        response = await client.delete(f"{PATH}{query}", headers=org.admin)
        assert response.status_code == 400, query
        assert response.json()["errors"][0]["source"] == {"parameter": "delete_all"}
    assert await works(client, org.staff)


async def test_delete_all_revokes_all_but_the_callers(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    extra = await create_key(client, org.admin, role="admin")
    response = await client.delete(f"{PATH}?delete_all=1", headers=org.admin)
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["deleted"] == 3
    assert await works(client, org.admin)
    assert not await works(client, org.staff)
    assert not await works(client, org.readonly)
    assert not await works(client, bearer(extra["attributes"]["secret"]))
    for headers in (other_org.admin, other_org.staff, other_org.readonly):
        assert await works(client, headers)

    listed = (await client.get(PATH, headers=org.admin)).json()["data"]
    live = [k["id"] for k in listed if k["attributes"]["revoked-at"] is None]
    assert live == [org.admin_key_id]


async def test_master_delete_all_names_one_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    # Without naming the organization the master key would revoke every key of every tenant.
    response = await client.delete(f"{PATH}?delete_all=1", headers=MASTER)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "organization-id"}
    response = await client.delete(f"{PATH}?delete_all=1&organization-id=nope", headers=MASTER)
    assert response.status_code == 400
    response = await client.delete(
        f"{PATH}?delete_all=1&organization-id={uuid.uuid4()}", headers=MASTER
    )
    assert response.status_code == 404
    assert await works(client, org.admin) and await works(client, other_org.admin)

    response = await client.delete(f"{PATH}?delete_all=1&organization-id={org.id}", headers=MASTER)
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["deleted"] == 3
    for headers in (org.admin, org.staff, org.readonly):
        assert not await works(client, headers)
    for headers in (other_org.admin, other_org.staff, other_org.readonly):
        assert await works(client, headers)


async def test_list_filters(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    response = await client.get(PATH, params={"filter[role]": "staff"}, headers=org.admin)
    assert response.status_code == 200
    assert [k["attributes"]["role"] for k in response.json()["data"]] == ["staff"]
    response = await client.get(PATH, params={"filter[role]": "owner"}, headers=org.admin)
    assert response.status_code == 400

    response = await client.get(PATH, params={"organization-id": other_org.id}, headers=MASTER)
    assert {k["attributes"]["organization-id"] for k in response.json()["data"]} == {other_org.id}
    assert len(response.json()["data"]) == 3
    # An organization's key never sees another organization's keys.
    response = await client.get(PATH, params={"organization-id": other_org.id}, headers=org.admin)
    assert response.status_code == 200
    assert response.json()["data"] == []

    response = await client.get(PATH, params={"sort": "-name"}, headers=org.admin)
    assert [k["attributes"]["name"] for k in response.json()["data"]] == [
        "staff key",
        "readonly key",
        "admin key",
    ]
    assert (await client.get(PATH, params={"sort": "secret"}, headers=org.admin)).status_code == 400


async def test_last_used_is_recorded(client: httpx.AsyncClient, org: Org) -> None:
    key = await create_key(client, org.admin)
    assert key["attributes"]["last-used-at"] is None
    assert await works(client, bearer(key["attributes"]["secret"]))
    fetched = await client.get(f"{PATH}{key['id']}/", headers=org.admin)
    assert fetched.json()["data"]["attributes"]["last-used-at"] is not None
