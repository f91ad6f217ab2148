"""Individuals, users and individual groups over HTTP, as an API client sees them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from courier.core.tenancy import unscoped
from courier.models.audit_event import AuditEvent
from tests.conftest import Org, doc
from tests.support import count_queries as count_group_queries

# --- helpers ---------------------------------------------------------------------------------


async def create(
    client: httpx.AsyncClient, org: Org, type_name: str, attributes: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/{type_name}/", json=doc(type_name, attributes), headers=org.admin
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def individual(client: httpx.AsyncClient, org: Org, **attributes: Any) -> str:
    attributes.setdefault("first-name", "Pat")
    attributes.setdefault("last-name", "Doe")
    data = await create(client, org, "individuals", attributes)
    return str(data["id"])


async def patch(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    type_name: str,
    ident: str,
    attributes: dict[str, Any],
) -> httpx.Response:
    return await client.patch(
        f"/v1/{type_name}/{ident}/", json=doc(type_name, attributes, ident), headers=headers
    )


def error_pointer(response: httpx.Response) -> str:
    pointer: str = response.json()["errors"][0]["source"]["pointer"]
    return pointer


def error_parameter(response: httpx.Response) -> str:
    parameter: str = response.json()["errors"][0]["source"]["parameter"]
    return parameter


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def audit_rows(app: Any, resource_id: str) -> list[AuditEvent]:
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(
            select(AuditEvent)
            .where(AuditEvent.resource_id == uuid.UUID(resource_id))
            .order_by(AuditEvent.occurred_at),
            "test reads the audit log",
        )
        return list((await session.execute(stmt)).scalars().all())


def count_queries(app: Any) -> Any:
    return count_group_queries(app, only="individual_group")


# --- individuals -----------------------------------------------------------------------------


async def test_individual_crud_and_audit(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    created = await create(
        client,
        org,
        "individuals",
        {
            "first-name": "Ada",
            "last-name": "Lovelace",
            "preferred-name": "Ada L",
            "birth-date": "1990-08-24",
            "account-type": "provider",
            "photo": "https://img.clinic.test/ada.png",
            "email": "ada@example.com",
            "phone": "+442071838750",
            "locale": "en_GB",
            "tz": "Europe/London",
            "extended": {"mrn": "A-1", "nested": {"x": [1, 2]}},
        },
    )
    attrs = created["attributes"]
    assert created["type"] == "individuals"
    assert uuid.UUID(created["id"]).version == 4
    assert attrs["birth-date"] == "1990-08-24"
    assert attrs["account-type"] == "provider"
    assert attrs["locale"] == "en-GB"
    assert attrs["extended"] == {"mrn": "A-1", "nested": {"x": [1, 2]}}
    assert attrs["owner-id"] is None
    assert attrs["last-modified-time"].endswith("Z")

    got = await client.get(f"/v1/individuals/{created['id']}/", headers=org.readonly)
    assert got.status_code == 200
    assert got.headers["etag"]
    assert got.json()["data"] == created

    changed = await patch(
        client, org.admin, "individuals", created["id"], {"last-name": "King", "phone": None}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["attributes"]["last-name"] == "King"
    assert changed.json()["data"]["attributes"]["phone"] is None
    assert changed.json()["data"]["attributes"]["first-name"] == "Ada"

    rows = await audit_rows(app, created["id"])
    assert [row.action for row in rows] == ["created", "updated"]
    assert rows[1].changed_fields == {"fields": ["last_name", "phone"]}
    # Field names only: no value of the patient's record lands in the log.
    assert "King" not in str(rows[1].changed_fields)
    assert rows[0].organization_id == uuid.UUID(org.id)


async def test_individual_defaults_and_required(client: httpx.AsyncClient, org: Org) -> None:
    ident = await individual(client, org)
    got = (await client.get(f"/v1/individuals/{ident}/", headers=org.admin)).json()["data"]
    assert got["attributes"]["account-type"] == "participant"
    assert got["attributes"]["extended"] == {}

    missing = await client.post(
        "/v1/individuals/", json=doc("individuals", {"first-name": "Pat"}), headers=org.admin
    )
    assert missing.status_code == 400
    assert error_pointer(missing) == "/data/attributes/last-name"

    blank = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": "  ", "last-name": "Doe"}),
        headers=org.admin,
    )
    assert blank.status_code == 400
    assert error_pointer(blank) == "/data/attributes/first-name"

    unknown = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": "Pat", "last-name": "Doe", "ssn": "1"}),
        headers=org.admin,
    )
    assert unknown.status_code == 400
    assert error_pointer(unknown) == "/data/attributes/ssn"

    nulled = await patch(client, org.admin, "individuals", ident, {"first-name": None})
    assert nulled.status_code == 400
    assert error_pointer(nulled) == "/data/attributes/first-name"


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("phone", "4155552671"),
        ("phone", "+1415555267"),
        ("phone", "+1 415 555 2671"),
        ("phone", 14155552671),
        ("birth-date", "2019-08-24T10:00:00Z"),
        ("birth-date", "2019-08-24T10:00:00"),
        ("birth-date", "2019-02-30"),
        ("birth-date", "24/08/2019"),
        ("birth-date", 1566640000),
        ("birth-date", "2999-01-01"),
        ("account-type", "admin"),
        ("email", "not-an-email"),
        ("email", "Pat <pat@example.com>"),
        ("tz", "Mars/Olympus"),
        ("tz", "EST5EDT "),
        ("locale", "english please"),
        ("photo", "javascript:alert(1)"),
        ("photo", "not a url"),
        ("owner-id", "not-a-uuid"),
        ("extended", [1, 2]),
        ("extended", "text"),
        ("extended", {"blob": "x" * (64 * 1024)}),
    ],
)
async def test_individual_bad_attributes(
    client: httpx.AsyncClient, org: Org, attribute: str, value: Any
) -> None:
    response = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": "Pat", "last-name": "Doe", attribute: value}),
        headers=org.admin,
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["statusCode"] == 400
    assert error_pointer(response) == f"/data/attributes/{attribute}"
    assert isinstance(body["message"], list)


async def test_phone_error_says_e164(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": "Pat", "last-name": "Doe", "phone": "555-1234"}),
        headers=org.admin,
    )
    assert response.status_code == 400
    assert "E.164" in response.json()["errors"][0]["detail"]


async def test_extended_kept_unless_named(client: httpx.AsyncClient, org: Org) -> None:
    ident = await individual(client, org, extended={"a": 1, "b": {"c": 2}})
    kept = await patch(client, org.admin, "individuals", ident, {"preferred-name": "P"})
    assert kept.status_code == 200
    assert kept.json()["data"]["attributes"]["extended"] == {"a": 1, "b": {"c": 2}}

    replaced = await patch(client, org.admin, "individuals", ident, {"extended": {"z": True}})
    assert replaced.status_code == 200
    # Replaced as a whole, not merged.
    assert replaced.json()["data"]["attributes"]["extended"] == {"z": True}
    got = await client.get(f"/v1/individuals/{ident}/", headers=org.admin)
    assert got.json()["data"]["attributes"]["extended"] == {"z": True}

    emptied = await patch(client, org.admin, "individuals", ident, {"extended": {}})
    assert emptied.json()["data"]["attributes"]["extended"] == {}

    refused = await patch(client, org.admin, "individuals", ident, {"extended": None})
    assert refused.status_code == 400
    assert error_pointer(refused) == "/data/attributes/extended"


async def test_individual_owner_must_be_user_of_org(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    owner = await create(client, org, "users", {"username": "guardian"})
    foreign = await create(client, other_org, "users", {"username": "guardian"})
    ident = await individual(client, org, **{"owner-id": owner["id"]})
    got = await client.get(f"/v1/individuals/{ident}/", headers=org.admin)
    assert got.json()["data"]["attributes"]["owner-id"] == owner["id"]

    for value in (foreign["id"], str(uuid.uuid4())):
        response = await client.post(
            "/v1/individuals/",
            json=doc("individuals", {"first-name": "A", "last-name": "B", "owner-id": value}),
            headers=org.admin,
        )
        assert response.status_code == 404
        assert error_pointer(response) == "/data/attributes/owner-id"
        changed = await patch(client, org.admin, "individuals", ident, {"owner-id": value})
        assert changed.status_code == 404
        assert error_pointer(changed) == "/data/attributes/owner-id"

    cleared = await patch(client, org.admin, "individuals", ident, {"owner-id": None})
    assert cleared.json()["data"]["attributes"]["owner-id"] is None


async def test_individual_roles(client: httpx.AsyncClient, org: Org) -> None:
    body = doc("individuals", {"first-name": "A", "last-name": "B"})
    for headers in (org.readonly, org.staff):
        response = await client.post("/v1/individuals/", json=body, headers=headers)
        assert response.status_code == 403
        assert response.json()["error"] == "Forbidden"
    ident = await individual(client, org)
    for headers in (org.readonly, org.staff):
        assert (await client.get("/v1/individuals/", headers=headers)).status_code == 200
        assert (await client.get(f"/v1/individuals/{ident}/", headers=headers)).status_code == 200
        refused = await patch(client, headers, "individuals", ident, {"last-name": "X"})
        assert refused.status_code == 403
    assert (await client.get("/v1/individuals/")).status_code == 401


async def test_individual_document_checks(client: httpx.AsyncClient, org: Org) -> None:
    ident = await individual(client, org)
    wrong_type = await client.post(
        "/v1/individuals/",
        json=doc("users", {"first-name": "A", "last-name": "B"}),
        headers=org.admin,
    )
    assert wrong_type.status_code == 409
    other_id = str(uuid.uuid4())
    wrong_id = await client.patch(
        f"/v1/individuals/{ident}/",
        json=doc("individuals", {"last-name": "X"}, other_id),
        headers=org.admin,
    )
    assert wrong_id.status_code == 409
    assert (await client.get("/v1/individuals/not-a-uuid/", headers=org.admin)).status_code == 404
    missing = await client.get(f"/v1/individuals/{uuid.uuid4()}/", headers=org.admin)
    assert missing.status_code == 404


async def test_individuals_cross_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    mine = await individual(client, org, **{"last-name": "Mine"})
    theirs = await individual(client, other_org, **{"last-name": "Theirs"})
    assert ids(await client.get("/v1/individuals/", headers=org.admin)) == [mine]
    assert ids(await client.get("/v1/individuals/", headers=other_org.admin)) == [theirs]
    got = await client.get(f"/v1/individuals/{theirs}/", headers=org.admin)
    assert got.status_code == 404
    changed = await patch(client, org.admin, "individuals", theirs, {"last-name": "Stolen"})
    assert changed.status_code == 404
    still = await client.get(f"/v1/individuals/{theirs}/", headers=other_org.admin)
    assert still.json()["data"]["attributes"]["last-name"] == "Theirs"


async def test_individual_filters(client: httpx.AsyncClient, org: Org) -> None:
    ada = await individual(
        client,
        org,
        **{"first-name": "Ada", "last-name": "Lovelace", "email": "Ada@Example.com"},
    )
    grace = await individual(
        client,
        org,
        **{
            "first-name": "Grace",
            "last-name": "Hopper",
            "preferred-name": "Amazing 100%",
            "account-type": "provider",
        },
    )
    alan = await individual(client, org, **{"first-name": "Alan", "last-name": "Turing"})

    async def listed(query: str) -> list[str]:
        return ids(await client.get(f"/v1/individuals/?{query}", headers=org.admin))

    assert await listed("filter[account-type]=provider") == [grace]
    assert sorted(await listed("filter[account-type]=participant")) == sorted([ada, alan])
    assert await listed("filter[name]=LOVE") == [ada]
    assert await listed("filter[name]=amazing") == [grace]  # the preferred name
    assert await listed("filter[name]=100%25") == [grace]
    assert await listed("filter[name]=%25") == [grace]  # % is a character, not a wildcard
    assert sorted(await listed("filter[name]=a")) == sorted([ada, grace, alan])
    assert await listed("filter[email]=ada@example.COM") == [ada]
    assert await listed("filter[email]=nobody@example.com") == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("filter[account-type]=patient", "filter[account-type]"),
        ("filter[email]=not-an-email", "filter[email]"),
        ("filter[name]=" + "x" * 300, "filter[name]"),
        ("filter[nickname]=x", "filter[nickname]"),
        ("sort=birth-date", "sort"),
        ("sort=-nonsense", "sort"),
        ("page[limit]=0", "page[limit]"),
        ("page[limit]=1001", "page[limit]"),
        ("individual-id=nope", "individual-id"),
    ],
)
async def test_individual_bad_queries(
    client: httpx.AsyncClient, org: Org, query: str, parameter: str
) -> None:
    response = await client.get(f"/v1/individuals/?{query}", headers=org.admin)
    assert response.status_code == 400, response.text
    assert error_parameter(response) == parameter


async def test_individual_sorts(client: httpx.AsyncClient, org: Org) -> None:
    zed = await individual(client, org, **{"first-name": "bob", "last-name": "zed"})
    amy = await individual(client, org, **{"first-name": "Amy", "last-name": "Young"})
    carl = await individual(client, org, **{"first-name": "carl", "last-name": "Adams"})

    async def listed(query: str) -> list[str]:
        return ids(await client.get(f"/v1/individuals/?{query}", headers=org.admin))

    assert await listed("") == [carl, amy, zed]  # default: last name, any case
    assert await listed("sort=last-name") == [carl, amy, zed]
    assert await listed("sort=-last-name") == [zed, amy, carl]
    assert await listed("sort=first-name") == [amy, zed, carl]
    assert await listed("sort=last-modified-time") == [zed, amy, carl]
    await patch(client, org.admin, "individuals", zed, {"preferred-name": "Z"})
    assert (await listed("sort=-last-modified-time"))[0] == zed
    paged = await client.get("/v1/individuals/?sort=first-name&page[limit]=2", headers=org.admin)
    assert ids(paged) == [amy, zed]
    assert paged.json()["meta"]["page[total]"] == 3
    assert paged.json()["meta"]["pagination"]["hasMore"] is True


# --- users -----------------------------------------------------------------------------------


async def test_user_crud(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    person = await individual(client, org)
    created = await create(
        client,
        org,
        "users",
        {
            "username": "pat.doe",
            "email": "Pat@Example.com",
            "phone": "+14155552671",
            "first-name": "Pat",
            "last-name": "Doe",
            "locale": "en-US",
            "tz": "America/Chicago",
            "notifications": ["email", "sms", "email"],
            "sms-mode": "enabled",
            "primary-individual-id": person,
            "communication-preferences": {"sms": {"quiet-hours": [22, 7]}},
            "last-sync-time": "2024-01-15T10:00:00.000-05:00",
        },
    )
    attrs = created["attributes"]
    assert attrs["notifications"] == ["email", "sms"]
    assert attrs["sms-mode"] == "enabled"
    assert attrs["state"] == "active"
    assert attrs["email-verified"] is False
    assert attrs["primary-individual-id"] == person
    assert attrs["last-sync-time"] == "2024-01-15T15:00:00.000Z"
    assert attrs["communication-preferences"] == {"sms": {"quiet-hours": [22, 7]}}

    got = await client.get(f"/v1/users/{created['id']}/", headers=org.readonly)
    assert got.status_code == 200
    assert got.json()["data"] == created

    changed = await patch(client, org.admin, "users", created["id"], {"notifications": ["push"]})
    assert changed.status_code == 200
    assert changed.json()["data"]["attributes"]["notifications"] == ["push"]
    assert changed.json()["data"]["attributes"]["username"] == "pat.doe"
    rows = await audit_rows(app, created["id"])
    assert [row.action for row in rows] == ["created", "updated"]
    assert rows[1].changed_fields == {"fields": ["notifications"]}


async def test_user_verification_follows_address(client: httpx.AsyncClient, org: Org) -> None:
    user = await create(
        client,
        org,
        "users",
        {
            "username": "verified",
            "email": "v@example.com",
            "email-verified": True,
            "phone": "+14155552671",
            "phone-verified": True,
            "phone-unsubscribed": True,
        },
    )
    same = await patch(client, org.admin, "users", user["id"], {"email": "V@example.com"})
    # Only the case changed: still the same mailbox.
    assert same.json()["data"]["attributes"]["email-verified"] is True
    moved = await patch(
        client,
        org.admin,
        "users",
        user["id"],
        {"email": "new@example.com", "phone": "+14155552672"},
    )
    attrs = moved.json()["data"]["attributes"]
    assert attrs["email-verified"] is False
    assert attrs["phone-verified"] is False
    assert attrs["phone-unsubscribed"] is False
    told = await patch(
        client,
        org.admin,
        "users",
        user["id"],
        {"email": "third@example.com", "email-verified": True},
    )
    assert told.json()["data"]["attributes"]["email-verified"] is True


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("phone", "+1415"),
        ("phone", "004415552671"),
        ("email", "a@b@c"),
        ("notifications", ["carrier-pigeon"]),
        ("notifications", "email"),
        ("sms-mode", "sometimes"),
        ("state", "deleted"),
        ("email-verified", "yes"),
        ("email-verified", 1),
        ("primary-individual-id", "123"),
        ("communication-preferences", {"fax": {}}),
        ("communication-preferences", {"sms": True}),
        ("communication-preferences", []),
        ("last-sync-time", "2024-01-15T10:00:00"),
        ("last-sync-time", "yesterday"),
        ("tz", "Nowhere/Town"),
        ("username", ""),
    ],
)
async def test_user_bad_attributes(
    client: httpx.AsyncClient, org: Org, attribute: str, value: Any
) -> None:
    attributes = {"username": "someone", attribute: value}
    response = await client.post("/v1/users/", json=doc("users", attributes), headers=org.admin)
    assert response.status_code == 400, response.text
    assert error_pointer(response).startswith(f"/data/attributes/{attribute}")


async def test_user_naive_timestamp_refused_on_patch(client: httpx.AsyncClient, org: Org) -> None:
    user = await create(client, org, "users", {"username": "sync"})
    naive = await patch(
        client, org.admin, "users", user["id"], {"last-sync-time": "2024-01-15T10:00:00"}
    )
    assert naive.status_code == 400
    assert error_pointer(naive) == "/data/attributes/last-sync-time"
    assert "offset" in naive.json()["errors"][0]["detail"]
    aware = await patch(
        client, org.admin, "users", user["id"], {"last-sync-time": "2024-01-15T10:00:00.5+01:00"}
    )
    assert aware.json()["data"]["attributes"]["last-sync-time"] == "2024-01-15T09:00:00.500Z"


async def test_user_unique_username_and_email(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    first = await create(client, org, "users", {"username": "Jordan", "email": "jo@example.com"})
    second = await create(client, org, "users", {"username": "sam", "email": "sam@example.com"})

    for attributes, pointer in (
        ({"username": "jordan"}, "/data/attributes/username"),
        ({"username": "other", "email": "JO@example.com"}, "/data/attributes/email"),
    ):
        response = await client.post("/v1/users/", json=doc("users", attributes), headers=org.admin)
        assert response.status_code == 409, response.text
        assert error_pointer(response) == pointer
        assert response.json()["error"] == "Conflict"

    taken = await patch(client, org.admin, "users", second["id"], {"username": "JORDAN"})
    assert taken.status_code == 409
    taken_email = await patch(client, org.admin, "users", second["id"], {"email": "Jo@Example.com"})
    assert taken_email.status_code == 409
    # Renaming oneself (even only the case) is no conflict.
    renamed = await patch(client, org.admin, "users", first["id"], {"username": "JORDAN"})
    assert renamed.status_code == 200
    assert renamed.json()["data"]["attributes"]["username"] == "JORDAN"

    # Another organization may use the same names.
    await create(client, other_org, "users", {"username": "jordan", "email": "jo@example.com"})
    # No email twice is fine: several users may have none.
    await create(client, org, "users", {"username": "a1"})
    await create(client, org, "users", {"username": "a2"})


async def test_user_primary_individual_of_same_org(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    foreign = await individual(client, other_org)
    response = await client.post(
        "/v1/users/",
        json=doc("users", {"username": "x", "primary-individual-id": foreign}),
        headers=org.admin,
    )
    assert response.status_code == 404
    assert error_pointer(response) == "/data/attributes/primary-individual-id"
    user = await create(client, org, "users", {"username": "y"})
    changed = await patch(
        client, org.admin, "users", user["id"], {"primary-individual-id": foreign}
    )
    assert changed.status_code == 404


async def test_user_filters_and_sorts(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    person = await individual(client, org)
    bea = await create(
        client,
        org,
        "users",
        {"username": "Bea", "email": "Bea@Example.com", "last-name": "Zulu"},
    )
    abe = await create(
        client,
        org,
        "users",
        {"username": "abe", "primary-individual-id": person, "last-name": "Alpha"},
    )
    await create(client, other_org, "users", {"username": "bea", "email": "bea@example.com"})

    async def listed(query: str) -> list[str]:
        return ids(await client.get(f"/v1/users/?{query}", headers=org.admin))

    assert await listed("") == [abe["id"], bea["id"]]
    assert await listed("filter[email]=bea@example.com") == [bea["id"]]
    assert await listed("filter[username]=BEA") == [bea["id"]]
    assert await listed("filter[username]=nobody") == []
    assert await listed(f"filter[individual-id]={person}") == [abe["id"]]
    assert await listed(f"filter[individual-id]={uuid.uuid4()}") == []
    assert await listed("sort=-username") == [bea["id"], abe["id"]]
    assert await listed("sort=-last-name") == [bea["id"], abe["id"]]

    for query, parameter in (
        ("filter[email]=nope", "filter[email]"),
        ("filter[individual-id]=nope", "filter[individual-id]"),
        ("filter[username]=" + "u" * 256, "filter[username]"),
        ("filter[state]=active", "filter[state]"),
        ("sort=email", "sort"),
    ):
        response = await client.get(f"/v1/users/?{query}", headers=org.admin)
        assert response.status_code == 400, query
        assert error_parameter(response) == parameter


async def test_users_roles_and_cross_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    theirs = await create(client, other_org, "users", {"username": "theirs"})
    for headers in (org.readonly, org.staff):
        response = await client.post(
            "/v1/users/", json=doc("users", {"username": "nope"}), headers=headers
        )
        assert response.status_code == 403
    assert ids(await client.get("/v1/users/", headers=org.readonly)) == []
    assert (await client.get(f"/v1/users/{theirs['id']}/", headers=org.admin)).status_code == 404
    changed = await patch(client, org.admin, "users", theirs["id"], {"username": "mine"})
    assert changed.status_code == 404


# --- individual groups -----------------------------------------------------------------------


async def test_group_crud(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    a, b, c = [await individual(client, org) for _ in range(3)]
    parent = await create(client, org, "individual-groups", {"name": "Cardiology"})
    created = await create(
        client,
        org,
        "individual-groups",
        {
            "name": "Heart team",
            "parent-id": parent["id"],
            "individual-ids": [a, b, a],
            "leader-ids": [b],
            "last-sync-time": "2024-03-01T12:00:00Z",
        },
    )
    attrs = created["attributes"]
    assert attrs["organization-id"] == org.id
    assert attrs["parent-id"] == parent["id"]
    assert attrs["individuals"] == [{"id": i} for i in sorted([a, b])]
    assert sorted(attrs["individual-ids"]) == sorted([a, b])
    assert attrs["individuals-count"] == 2
    assert attrs["leaders"] == [{"id": b}]
    assert attrs["leader-ids"] == [b]
    assert attrs["last-sync-time"] == "2024-03-01T12:00:00.000Z"
    got = await client.get(f"/v1/individual-groups/{created['id']}/", headers=org.readonly)
    assert got.json()["data"] == created

    # Only the members change; leaders stay (b is still a member).
    swapped = await patch(
        client, org.admin, "individual-groups", created["id"], {"individual-ids": [b, c]}
    )
    assert swapped.status_code == 200, swapped.text
    attrs = swapped.json()["data"]["attributes"]
    assert attrs["individuals"] == [{"id": i} for i in sorted([b, c])]
    assert attrs["leader-ids"] == [b]
    assert attrs["name"] == "Heart team"
    assert attrs["parent-id"] == parent["id"]

    renamed = await patch(
        client, org.admin, "individual-groups", created["id"], {"name": "Heart", "parent-id": None}
    )
    attrs = renamed.json()["data"]["attributes"]
    assert attrs["name"] == "Heart"
    assert attrs["parent-id"] is None
    assert attrs["individuals-count"] == 2

    rows = await audit_rows(app, created["id"])
    assert [row.action for row in rows] == ["created", "updated", "updated"]
    assert rows[1].changed_fields == {"fields": ["individual_ids"]}


async def test_group_leaders_are_members(client: httpx.AsyncClient, org: Org) -> None:
    a, b = await individual(client, org), await individual(client, org)
    response = await client.post(
        "/v1/individual-groups/",
        json=doc("individual-groups", {"name": "T", "individual-ids": [a], "leader-ids": [b]}),
        headers=org.admin,
    )
    assert response.status_code == 400
    assert error_pointer(response) == "/data/attributes/leader-ids"

    group = await create(
        client, org, "individual-groups", {"name": "T", "individual-ids": [a, b], "leader-ids": [a]}
    )
    # Removing a leader from the members without also removing it from the leaders: 400.
    dropped = await patch(
        client, org.admin, "individual-groups", group["id"], {"individual-ids": [b]}
    )
    assert dropped.status_code == 400
    assert error_pointer(dropped) == "/data/attributes/leader-ids"
    outsider = await patch(
        client, org.admin, "individual-groups", group["id"], {"leader-ids": [str(uuid.uuid4())]}
    )
    assert outsider.status_code == 400
    both = await patch(
        client,
        org.admin,
        "individual-groups",
        group["id"],
        {"individual-ids": [b], "leader-ids": [b]},
    )
    assert both.status_code == 200
    assert both.json()["data"]["attributes"]["leaders"] == [{"id": b}]
    unchanged = await client.get(f"/v1/individual-groups/{group['id']}/", headers=org.admin)
    assert unchanged.json()["data"]["attributes"]["individual-ids"] == [b]


async def test_group_references_must_be_of_org(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    mine = await individual(client, org)
    foreign = await individual(client, other_org)
    foreign_group = await create(client, other_org, "individual-groups", {"name": "Theirs"})
    for attributes, pointer in (
        ({"individual-ids": [mine, foreign]}, "/data/attributes/individual-ids"),
        ({"individual-ids": [str(uuid.uuid4())]}, "/data/attributes/individual-ids"),
        ({"parent-id": foreign_group["id"]}, "/data/attributes/parent-id"),
    ):
        response = await client.post(
            "/v1/individual-groups/",
            json=doc("individual-groups", {"name": "T", **attributes}),
            headers=org.admin,
        )
        assert response.status_code == 404, response.text
        assert error_pointer(response) == pointer
    malformed = await client.post(
        "/v1/individual-groups/",
        json=doc("individual-groups", {"name": "T", "individual-ids": [mine, "bad"]}),
        headers=org.admin,
    )
    assert malformed.status_code == 400
    assert error_pointer(malformed).startswith("/data/attributes/individual-ids")
    # Nothing was created by the refused requests.
    assert ids(await client.get("/v1/individual-groups/", headers=org.admin)) == []
    group = await create(client, org, "individual-groups", {"name": "Mine"})
    added = await patch(
        client, org.admin, "individual-groups", group["id"], {"individual-ids": [foreign]}
    )
    assert added.status_code == 404
    assert (
        await client.get(f"/v1/individual-groups/{foreign_group['id']}/", headers=org.admin)
    ).status_code == 404


async def test_group_cycles_refused(client: httpx.AsyncClient, org: Org) -> None:
    top = await create(client, org, "individual-groups", {"name": "Top"})
    middle = await create(client, org, "individual-groups", {"name": "Mid", "parent-id": top["id"]})
    low = await create(client, org, "individual-groups", {"name": "Low", "parent-id": middle["id"]})
    for group, parent in ((top, low), (top, middle), (middle, middle)):
        response = await patch(
            client, org.admin, "individual-groups", group["id"], {"parent-id": parent["id"]}
        )
        assert response.status_code == 400, response.text
        assert error_pointer(response) == "/data/attributes/parent-id"
    moved = await patch(client, org.admin, "individual-groups", low["id"], {"parent-id": top["id"]})
    assert moved.status_code == 200


async def test_group_filters_and_sorts(client: httpx.AsyncClient, org: Org) -> None:
    a, b = await individual(client, org), await individual(client, org)
    parent = await create(client, org, "individual-groups", {"name": "parent"})
    diabetes = await create(
        client,
        org,
        "individual-groups",
        {"name": "Diabetes cohort", "individual-ids": [a, b], "parent-id": parent["id"]},
    )
    asthma = await create(
        client, org, "individual-groups", {"name": "asthma cohort", "individual-ids": [b]}
    )

    async def listed(query: str) -> list[str]:
        return ids(await client.get(f"/v1/individual-groups/?{query}", headers=org.admin))

    assert await listed("") == [asthma["id"], diabetes["id"], parent["id"]]
    assert await listed("sort=-name") == [parent["id"], diabetes["id"], asthma["id"]]
    assert await listed("filter[name]=COHORT") == [asthma["id"], diabetes["id"]]
    assert await listed(f"filter[individual-id]={a}") == [diabetes["id"]]
    assert await listed(f"filter[individual-id]={b}") == [asthma["id"], diabetes["id"]]
    assert await listed(f"filter[parent-id]={parent['id']}") == [diabetes["id"]]
    assert await listed("sort=last-modified-time") == [parent["id"], diabetes["id"], asthma["id"]]
    for query, parameter in (
        ("filter[individual-id]=x", "filter[individual-id]"),
        ("filter[parent-id]=x", "filter[parent-id]"),
        ("filter[members]=1", "filter[members]"),
        ("sort=individuals-count", "sort"),
    ):
        response = await client.get(f"/v1/individual-groups/?{query}", headers=org.admin)
        assert response.status_code == 400
        assert error_parameter(response) == parameter


async def test_group_list_queries_do_not_grow_with_rows(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    people = [await individual(client, org) for _ in range(3)]
    await create(client, org, "individual-groups", {"name": "g0", "individual-ids": people})
    with count_queries(app) as one_group:
        assert len(ids(await client.get("/v1/individual-groups/", headers=org.admin))) == 1
    for n in range(1, 6):
        await create(
            client,
            org,
            "individual-groups",
            {"name": f"g{n}", "individual-ids": people[: n % 3 + 1]},
        )
    with count_queries(app) as six_groups:
        listed = await client.get("/v1/individual-groups/", headers=org.admin)
    assert len(ids(listed)) == 6
    assert len(six_groups) == len(one_group) == 4  # count, page, members, leaders
    counts = [item["attributes"]["individuals-count"] for item in listed.json()["data"]]
    assert counts == [3, 2, 3, 1, 2, 3]


async def test_groups_roles_and_cross_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    theirs = await create(client, other_org, "individual-groups", {"name": "theirs"})
    response = await client.post(
        "/v1/individual-groups/", json=doc("individual-groups", {"name": "x"}), headers=org.staff
    )
    assert response.status_code == 403
    assert ids(await client.get("/v1/individual-groups/", headers=org.readonly)) == []
    changed = await patch(client, org.admin, "individual-groups", theirs["id"], {"name": "mine"})
    assert changed.status_code == 404
