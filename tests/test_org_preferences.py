from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from courier.domains.org_preferences.service import get_preference
from tests.conftest import MASTER, Org, doc

PATH = "/v1/org-preferences/"
NAMES = [
    "alexa-read-message-text",
    "console-idle-timeout-seconds",
    "default-channel-title",
    "email-unsubscribe-url",
    "group-provider-ack",
    "initial-sms-message",
    "locale",
    "sms-message-link",
    "sms-phi-safe",
]


def pref(attributes: dict[str, Any]) -> dict[str, Any]:
    return doc("org-preferences", attributes)


async def listed(client: httpx.AsyncClient, org: Org, **params: str) -> list[dict[str, Any]]:
    response = await client.get(PATH, params=params, headers=org.admin)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def by_name(data: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["attributes"]["name"]: item for item in data}


async def test_lists_every_known_preference_with_defaults(
    client: httpx.AsyncClient, org: Org
) -> None:
    for headers in (org.admin, org.staff, org.readonly):
        response = await client.get(PATH, headers=headers)
        assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["page[total]"] == len(NAMES) == 9
    assert [item["attributes"]["name"] for item in body["data"]] == NAMES
    prefs = by_name(body["data"])
    for name, item in prefs.items():
        assert item["type"] == "org-preferences"
        assert item["id"] == str(uuid.uuid5(uuid.UUID(org.id), name))
        attributes = item["attributes"]
        assert attributes["explicit"] is False
        assert attributes["organization-id"] == org.id
        assert attributes["type"] == "json"
        assert attributes["created-at"].endswith("Z")
    assert prefs["group-provider-ack"]["attributes"]["value-js"] is False
    assert prefs["group-provider-ack"]["attributes"]["value"] == "false"
    assert prefs["alexa-read-message-text"]["attributes"]["value-js"] is False
    title = prefs["default-channel-title"]["attributes"]
    assert title["value-js"] == title["value"] == "Care team"
    sms = prefs["initial-sms-message"]["attributes"]
    assert isinstance(sms["value-js"], str) and sms["value-js"] == sms["value"]
    idle = prefs["console-idle-timeout-seconds"]["attributes"]
    assert idle["value-js"] == 600 and idle["value"] == "600"


async def test_default_ids_are_stable_and_per_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    first = [item["id"] for item in await listed(client, org)]
    again = [item["id"] for item in await listed(client, org)]
    other = [item["id"] for item in await listed(client, other_org)]
    assert first == again
    assert not set(first) & set(other)


async def test_filter_by_name(client: httpx.AsyncClient, org: Org) -> None:
    data = await listed(client, org, **{"filter[name]": "group-provider-ack"})
    assert [item["attributes"]["name"] for item in data] == ["group-provider-ack"]

    response = await client.get(
        PATH, params={"filter[name]": "favourite-colour"}, headers=org.admin
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "filter[name]"}

    response = await client.get(PATH, params={"filter[colour]": "x"}, headers=org.admin)
    assert response.status_code == 400


async def test_organization_id_parameter(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    data = await listed(client, org, **{"organization-id": org.id})
    assert len(data) == len(NAMES)

    response = await client.get(PATH, params={"organization-id": other_org.id}, headers=org.admin)
    assert response.status_code == 404

    response = await client.get(PATH, params={"organization-id": "not-a-uuid"}, headers=org.admin)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "organization-id"}


async def test_paging_over_preferences(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.get(PATH, params={"page[limit]": "2"}, headers=org.admin)
    assert response.status_code == 200
    body = response.json()
    assert [item["attributes"]["name"] for item in body["data"]] == NAMES[:2]
    assert body["meta"]["pagination"]["hasMore"] is True
    names = [item["attributes"]["name"] for item in body["data"]]
    while body["meta"]["pagination"]["hasMore"]:
        body = (await client.get(body["links"]["next"], headers=org.admin)).json()
        assert 0 < len(body["data"]) <= 2
        names += [item["attributes"]["name"] for item in body["data"]]
    assert names == NAMES

    response = await client.get(PATH, params={"page[limit]": "0"}, headers=org.admin)
    assert response.status_code == 400


async def test_admin_sets_a_preference(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    default_id = by_name(await listed(client, org))["default-channel-title"]["id"]
    response = await client.post(
        PATH,
        json=pref({"name": "default-channel-title", "type": "json", "value-js": "Oncology team"}),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    item = response.json()["data"]
    assert item["id"] == default_id
    assert item["attributes"]["explicit"] is True
    assert item["attributes"]["value"] == item["attributes"]["value-js"] == "Oncology team"
    assert item["attributes"]["organization-id"] == org.id

    prefs = by_name(await listed(client, org))
    assert prefs["default-channel-title"]["attributes"]["value-js"] == "Oncology team"
    assert prefs["default-channel-title"]["attributes"]["explicit"] is True
    assert prefs["group-provider-ack"]["attributes"]["explicit"] is False
    # The other organization still has the default.
    other = by_name(await listed(client, other_org))["default-channel-title"]["attributes"]
    assert other["value-js"] == "Care team" and other["explicit"] is False


async def test_setting_again_replaces(client: httpx.AsyncClient, org: Org) -> None:
    for value in (True, False, True):
        response = await client.post(
            PATH, json=pref({"name": "group-provider-ack", "value-js": value}), headers=org.admin
        )
        assert response.status_code == 201, response.text
        assert response.json()["data"]["attributes"]["value-js"] is value
    data = await listed(client, org, **{"filter[name]": "group-provider-ack"})
    assert len(data) == 1
    assert data[0]["attributes"]["value-js"] is True
    assert data[0]["attributes"]["value"] == "true"


async def test_value_as_text(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.post(
        PATH, json=pref({"name": "group-provider-ack", "value": "true"}), headers=org.admin
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["value-js"] is True

    response = await client.post(
        PATH,
        json=pref({"name": "initial-sms-message", "value": "Hi, this is Dr. Lee's office."}),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["value-js"] == "Hi, this is Dr. Lee's office."

    # Both forms, agreeing.
    response = await client.post(
        PATH,
        json=pref({"name": "group-provider-ack", "value": "false", "value-js": False}),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text

    # An integer preference, as text or as JSON.
    response = await client.post(
        PATH, json=pref({"name": "console-idle-timeout-seconds", "value": "90"}), headers=org.admin
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["value-js"] == 90
    response = await client.post(
        PATH,
        json=pref({"name": "console-idle-timeout-seconds", "value-js": 43200}),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["attributes"]["value"] == "43200"


async def assert_bad_attribute(
    client: httpx.AsyncClient, org: Org, attributes: dict[str, Any], attribute: str
) -> None:
    response = await client.post(PATH, json=pref(attributes), headers=org.admin)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errors"][0]["source"]["pointer"] == f"/data/attributes/{attribute}", body
    assert attribute in body["errors"][0]["detail"]


async def test_value_must_match_the_preference_type(client: httpx.AsyncClient, org: Org) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "group-provider-ack", "value-js": "true"}, "value-js"),
        ({"name": "group-provider-ack", "value-js": 1}, "value-js"),
        ({"name": "group-provider-ack", "value": "maybe"}, "value"),
        ({"name": "default-channel-title", "value-js": True}, "value-js"),
        ({"name": "default-channel-title", "value-js": {"title": "x"}}, "value-js"),
        ({"name": "default-channel-title", "value-js": "   "}, "value-js"),
        ({"name": "default-channel-title", "value-js": None}, "value-js"),
        ({"name": "default-channel-title", "value-js": "x" * 256}, "value-js"),
        ({"name": "initial-sms-message", "value": "x" * 1601}, "value"),
        ({"name": "initial-sms-message", "value": 42}, "value"),
        ({"name": "group-provider-ack", "value": "true", "value-js": False}, "value"),
        ({"name": "console-idle-timeout-seconds", "value-js": 59}, "value-js"),
        ({"name": "console-idle-timeout-seconds", "value-js": 43201}, "value-js"),
        ({"name": "console-idle-timeout-seconds", "value-js": "600"}, "value-js"),
        ({"name": "console-idle-timeout-seconds", "value-js": True}, "value-js"),
        ({"name": "console-idle-timeout-seconds", "value-js": 90.5}, "value-js"),
        ({"name": "console-idle-timeout-seconds", "value": "ten"}, "value"),
        ({"name": "console-idle-timeout-seconds", "value": "30"}, "value"),
        ({"name": "group-provider-ack"}, "value-js"),
        ({"name": "favourite-colour", "value-js": "blue"}, "name"),
        ({"value-js": "blue"}, "name"),
        ({"name": "group-provider-ack", "value-js": True, "type": "string"}, "type"),
        ({"name": "group-provider-ack", "value-js": True, "colour": "blue"}, "colour"),
        (
            {"name": "group-provider-ack", "value-js": True, "organization-id": "x"},
            "organization-id",
        ),
    ]
    for attributes, attribute in cases:
        await assert_bad_attribute(client, org, attributes, attribute)
    # Nothing of the refused requests was stored.
    assert all(item["attributes"]["explicit"] is False for item in await listed(client, org))


async def test_wrong_document_type_is_a_conflict(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.post(
        PATH,
        json=doc("organizations", {"name": "group-provider-ack", "value-js": True}),
        headers=org.admin,
    )
    assert response.status_code == 409


async def test_only_admins_set_preferences(client: httpx.AsyncClient, org: Org) -> None:
    body = pref({"name": "group-provider-ack", "value-js": True})
    for headers in (org.staff, org.readonly):
        response = await client.post(PATH, json=body, headers=headers)
        assert response.status_code == 403
    response = await client.post(PATH, json=body)
    assert response.status_code == 401
    response = await client.get(PATH)
    assert response.status_code == 401
    # The master key manages organizations and keys, not an organization's settings.
    response = await client.get(PATH, headers=MASTER)
    assert response.status_code == 403
    data = await listed(client, org, **{"filter[name]": "group-provider-ack"})
    assert data[0]["attributes"]["explicit"] is False


async def test_cannot_set_another_organizations_preference(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    response = await client.post(
        PATH,
        json=pref(
            {"name": "group-provider-ack", "value-js": True, "organization-id": other_org.id}
        ),
        headers=org.admin,
    )
    assert response.status_code == 404
    for who in (org, other_org):
        data = await listed(client, who, **{"filter[name]": "group-provider-ack"})
        assert data[0]["attributes"]["explicit"] is False

    response = await client.post(
        PATH,
        json=pref({"name": "group-provider-ack", "value-js": True, "organization-id": org.id}),
        headers=org.admin,
    )
    assert response.status_code == 201


async def test_concurrent_first_settings_all_succeed(client: httpx.AsyncClient, org: Org) -> None:
    # A first request marks the key as used, so the concurrent ones do not queue on that write.
    await listed(client, org)
    titles = [f"Team {n}" for n in range(5)]
    responses = await asyncio.gather(
        *(
            client.post(
                PATH,
                json=pref({"name": "default-channel-title", "value-js": title}),
                headers=org.admin,
            )
            for title in titles
        )
    )
    assert [r.status_code for r in responses] == [201] * 5, [r.text for r in responses]
    data = await listed(client, org, **{"filter[name]": "default-channel-title"})
    assert len(data) == 1
    assert data[0]["attributes"]["value-js"] in titles


async def test_setting_writes_an_audit_row(client: httpx.AsyncClient, org: Org) -> None:
    for value in ("Cardiology", "Cardiology team"):
        response = await client.post(
            PATH,
            json=pref({"name": "default-channel-title", "value-js": value}),
            headers=org.admin,
        )
        assert response.status_code == 201
    pref_id = response.json()["data"]["id"]
    response = await client.get(
        "/v1/audit-events/",
        params={"filter[resource-type]": "org-preferences", "sort": "occurred-at"},
        headers=org.admin,
    )
    assert response.status_code == 200, response.text
    events = [item["attributes"] for item in response.json()["data"]]
    assert [e["action"] for e in events] == ["created", "updated"]
    assert all(e["resource-id"] == pref_id for e in events)
    assert all(e["actor-id"] == org.admin_key_id for e in events)
    assert events[0]["changed-fields"] == ["name", "value"]
    assert "Cardiology" not in response.text


async def test_get_preference_reads_value_or_default(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    org_id = uuid.UUID(org.id)
    async with app.state.database.sessionmaker() as session:
        assert await get_preference(session, org_id, "group-provider-ack") is False
        assert await get_preference(session, org_id, "default-channel-title") == "Care team"
    response = await client.post(
        PATH, json=pref({"name": "group-provider-ack", "value-js": True}), headers=org.admin
    )
    assert response.status_code == 201
    async with app.state.database.sessionmaker() as session:
        assert await get_preference(session, org_id, "group-provider-ack") is True
        assert await get_preference(session, org_id, "default-channel-title") == "Care team"
