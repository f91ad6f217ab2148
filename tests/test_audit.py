from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import MASTER, Org, bearer, doc

PATH = "/v1/audit-events/"


async def events(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    response = await client.get(PATH, params=params, headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_changes_are_logged_with_actor_and_request_id(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/organizations/",
        json=doc("organizations", {"name": "Audited Clinic Of Dr Secretname"}),
        headers={**MASTER, "X-Request-Id": "req-create-org-" + uuid.uuid4().hex[:8]},
    )
    assert created.status_code == 201, created.text
    org_id = created.json()["data"]["id"]
    org_request = created.headers["x-request-id"]
    assert org_request.startswith("req-create-org-")

    key = await client.post(
        "/v1/api-keys/",
        json=doc("api-keys", {"name": "Front desk", "role": "admin", "organization-id": org_id}),
        headers=MASTER,
    )
    assert key.status_code == 201, key.text
    key_id = key.json()["data"]["id"]
    secret = key.json()["data"]["attributes"]["secret"]
    admin = bearer(secret)

    # A request id the server made up is logged just the same.
    staff_key = await client.post(
        "/v1/api-keys/", json=doc("api-keys", {"name": "Nurse", "role": "staff"}), headers=admin
    )
    assert staff_key.status_code == 201, staff_key.text
    preference = await client.post(
        "/v1/org-preferences/",
        json=doc(
            "org-preferences", {"name": "initial-sms-message", "value-js": "Hello from Dr Who"}
        ),
        headers=admin,
    )
    assert preference.status_code == 201, preference.text

    response = await client.get(PATH, headers=admin)
    assert response.status_code == 200, response.text
    logged = {
        (item["attributes"]["resource-type"], item["attributes"]["resource-id"]): item["attributes"]
        for item in response.json()["data"]
    }
    assert len(logged) == 4

    org_event = logged[("organizations", org_id)]
    assert org_event["action"] == "created"
    assert org_event["actor-type"] == "master"
    assert org_event["actor-id"] == "master"
    assert org_event["request-id"] == org_request
    assert "name" in org_event["changed-fields"]

    key_event = logged[("api-keys", key_id)]
    assert key_event["actor-type"] == "master"
    assert key_event["request-id"] == key.headers["x-request-id"]
    assert set(key_event["changed-fields"]) == {"name", "organization-id", "role"}

    staff_event = logged[("api-keys", staff_key.json()["data"]["id"])]
    assert staff_event["actor-type"] == "api-key"
    assert staff_event["actor-id"] == key_id
    assert staff_event["request-id"] == staff_key.headers["x-request-id"]

    pref_event = logged[("org-preferences", preference.json()["data"]["id"])]
    assert pref_event["actor-id"] == key_id
    assert pref_event["request-id"] == preference.headers["x-request-id"]
    assert pref_event["changed-fields"] == ["name", "value"]
    for item in logged.values():
        assert item["occurred-at"].endswith("Z")

    # Names of the changed fields only: none of the values.
    for value in ("Secretname", "Front desk", "Nurse", "Dr Who", secret):
        assert value not in response.text


async def test_newest_first_and_sort(client: httpx.AsyncClient, org: Org) -> None:
    for display in ("One", "Two"):
        response = await client.patch(
            f"/v1/organizations/{org.id}/",
            json=doc("organizations", {"display-name": display}, org.id),
            headers=org.admin,
        )
        assert response.status_code == 200, response.text
    newest_first = await events(client, org.admin)
    times = [item["attributes"]["occurred-at"] for item in newest_first]
    assert times == sorted(times, reverse=True)
    assert newest_first[0]["attributes"]["action"] == "updated"
    assert newest_first[0]["attributes"]["changed-fields"] == ["display-name"]

    oldest_first = await events(client, org.admin, sort="occurred-at")
    assert [i["id"] for i in oldest_first] == [i["id"] for i in reversed(newest_first)]
    explicit = await events(client, org.admin, sort="-occurred-at")
    assert [i["id"] for i in explicit] == [i["id"] for i in newest_first]

    response = await client.get(PATH, params={"sort": "actor-id"}, headers=org.admin)
    assert response.status_code == 400


async def test_filters(client: httpx.AsyncClient, org: Org) -> None:
    key = await client.post(
        "/v1/api-keys/", json=doc("api-keys", {"name": "k", "role": "readonly"}), headers=org.admin
    )
    assert key.status_code == 201
    key_id = key.json()["data"]["id"]
    revoked = await client.delete(f"/v1/api-keys/{key_id}/", headers=org.admin)
    assert revoked.status_code == 200

    everything = await events(client, org.admin)
    by_admin = await events(client, org.admin, **{"filter[actor-id]": org.admin_key_id})
    assert {e["attributes"]["actor-id"] for e in by_admin} == {org.admin_key_id}
    assert len(by_admin) == 2
    by_master = await events(client, org.admin, **{"filter[actor-type]": "master"})
    # The fixture's master key created the organization and its three keys.
    assert len(by_master) == 4
    assert len(by_master) + len(by_admin) == len(everything)

    about_key = await events(client, org.admin, **{"filter[resource-id]": key_id})
    assert [e["attributes"]["action"] for e in about_key] == ["deleted", "created"]
    deleted = await events(client, org.admin, **{"filter[action]": "deleted"})
    assert [e["attributes"]["resource-id"] for e in deleted] == [key_id]
    orgs = await events(client, org.admin, **{"filter[resource-type]": "organizations"})
    assert [e["attributes"]["resource-id"] for e in orgs] == [org.id]
    nothing = await events(client, org.admin, **{"filter[resource-type]": "individuals"})
    assert nothing == []

    for name, value in (
        ("filter[actor-type]", "robot"),
        ("filter[resource-id]", "not-a-uuid"),
        ("filter[actor-id]", "x" * 65),
        ("filter[cmp-occurred-at]", "2024-01-01T00:00:00Z"),
        ("filter[cmp-occurred-at]", ">2024-01-01T00:00:00"),
        ("filter[changed-fields]", "name"),
    ):
        response = await client.get(PATH, params={name: value}, headers=org.admin)
        assert response.status_code == 400, (name, value)
        assert response.json()["errors"][0]["source"] == {"parameter": name}


async def test_time_window(client: httpx.AsyncClient, org: Org) -> None:
    everything = await events(client, org.admin, sort="occurred-at")
    assert len(everything) == 4
    pivot = everything[2]["attributes"]["occurred-at"]
    since = await events(client, org.admin, **{"filter[cmp-occurred-at]": f">={pivot}"})
    assert {e["id"] for e in since} >= {e["id"] for e in everything[2:]}
    before = await events(client, org.admin, **{"filter[cmp-occurred-at]": f"<{pivot}"})
    assert {e["id"] for e in before} <= {e["id"] for e in everything[:2]}
    assert len(since) + len(before) == 4

    response = await client.get(
        PATH,
        params=[
            ("filter[cmp-occurred-at]", ">=2020-01-01T00:00:00+02:00"),
            ("filter[cmp-occurred-at]", "<2020-02-01T00:00:00Z"),
        ],
        headers=org.admin,
    )
    assert response.status_code == 200
    assert response.json()["data"] == []
    future = await events(client, org.admin, **{"filter[cmp-occurred-at]": ">2999-01-01T00:00:00Z"})
    assert future == []


async def test_admins_only_and_own_organization_only(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    for headers in (org.staff, org.readonly):
        response = await client.get(PATH, headers=headers)
        assert response.status_code == 403
    assert (await client.get(PATH)).status_code == 401
    assert (await client.get(PATH, headers=MASTER)).status_code == 403

    mine = await events(client, org.admin)
    theirs = await events(client, other_org.admin)
    assert {e["attributes"]["resource-id"] for e in mine} & {
        e["attributes"]["resource-id"] for e in theirs
    } == set()

    one = mine[0]
    response = await client.get(f"{PATH}{one['id']}/", headers=org.admin)
    assert response.status_code == 200
    assert response.json()["data"] == one
    assert response.headers["etag"]
    assert (await client.get(f"{PATH}{one['id']}/", headers=other_org.admin)).status_code == 404
    assert (await client.get(f"{PATH}{one['id']}/", headers=org.staff)).status_code == 403


async def test_the_log_is_read_only(client: httpx.AsyncClient, org: Org) -> None:
    one = (await events(client, org.admin))[0]
    response = await client.post(
        PATH, json=doc("audit-events", {"action": "created"}), headers=org.admin
    )
    assert response.status_code == 405
    response = await client.delete(f"{PATH}{one['id']}/", headers=org.admin)
    assert response.status_code == 405
    assert (await events(client, org.admin))[0] == one


async def test_refused_changes_leave_no_row(client: httpx.AsyncClient, org: Org) -> None:
    before = await events(client, org.admin)
    response = await client.patch(
        f"/v1/organizations/{org.id}/",
        json=doc("organizations", {"timezone": "Mars/Olympus_Mons"}, org.id),
        headers=org.admin,
    )
    assert response.status_code == 400
    response = await client.post(
        "/v1/org-preferences/",
        json=doc("org-preferences", {"name": "group-provider-ack", "value-js": "yes"}),
        headers=org.admin,
    )
    assert response.status_code == 400
    assert await events(client, org.admin) == before
