"""App credentials over HTTP: APNs, FCM and Web Push data checked with the adapters' own
readers, sealed at rest and never returned (nor written to audit rows or events), a VAPID
key pair generated when none is given, archive, one live set per app and platform, tenancy."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select

from courier.config import Settings
from courier.core.tenancy import scoped
from courier.domains.app_credentials.service import credentials_for
from courier.domains.sniffers.redaction import redact_body
from courier.models.audit_event import AuditEvent
from courier.models.event import Event
from courier.models.push_device import AppCredential
from tests.conftest import Org, doc


def p8_key() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def service_account() -> dict[str, Any]:
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return {
        "type": "service_account",
        "project_id": "clinic-app",
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": "push@clinic-app.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


async def create(client: httpx.AsyncClient, org: Org, **attributes: Any) -> httpx.Response:
    attributes.setdefault("app-name", f"app-{uuid.uuid4().hex[:8]}")
    return await client.post(
        "/v1/app-credentials/", headers=org.admin, json=doc("app-credentials", attributes)
    )


async def created(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    response = await create(client, org, **attributes)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def stored_text(app: Any, org: Org) -> str:
    """Everything the database holds about the organization's credentials, audit rows and
    events, as text."""
    org_id = uuid.UUID(org.id)
    async with app.state.database.sessionmaker() as session:
        parts: list[Any] = []
        for model in (AppCredential, AuditEvent, Event):
            rows = (await session.execute(scoped(select(model), model, org_id))).scalars().all()
            for row in rows:
                parts.append({c.name: str(getattr(row, c.key)) for c in model.__mapper__.columns})
        await session.commit()
    return orjson.dumps(parts).decode()


async def test_apns_credentials_are_sealed_and_never_shown(
    client: httpx.AsyncClient, app: Any, settings: Settings, org: Org
) -> None:
    key = p8_key()
    data = {"key": key, "key-id": "ABC123DEFG", "team-id": "TEAM123456", "topic": "org.clinic.app"}
    row = await created(
        client,
        org,
        type="apn",
        data=data,
        **{"app-name": "careapp", "display-name": "Care app", "test-mode": True},
    )
    attributes = row["attributes"]
    assert attributes["data"] == {
        "key-id": "ABC123DEFG",
        "team-id": "TEAM123456",
        "topic": "org.clinic.app",
    }
    assert attributes["test-mode"] is True
    assert attributes["archived"] is False
    secret_line = key.splitlines()[1]
    assert secret_line not in orjson.dumps(row).decode()
    got = await client.get(f"/v1/app-credentials/{row['id']}/", headers=org.admin)
    assert got.status_code == 200
    assert secret_line not in got.text
    listed = await client.get("/v1/app-credentials/", headers=org.admin)
    assert secret_line not in listed.text
    patched = await client.patch(
        f"/v1/app-credentials/{row['id']}/",
        headers=org.admin,
        json=doc("app-credentials", {"data": {**data, "key": p8_key()}}, row["id"]),
    )
    assert patched.status_code == 200, patched.text
    assert "BEGIN" not in patched.text
    # Not at rest in clear, nor in the audit rows or events.
    assert secret_line not in await stored_text(app, org)
    assert "ABC123DEFG" in await stored_text(app, org)  # the public part is stored in clear

    async with app.state.database.sessionmaker() as session:
        found = await credentials_for(session, settings, uuid.UUID(org.id), "careapp", "apn")
        await session.commit()
    assert found is not None
    assert found.test_mode is True
    assert found.data["key-id"] == "ABC123DEFG"
    assert found.data["key"].startswith("-----BEGIN PRIVATE KEY-----")


async def test_fcm_credentials_show_the_project_only(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    account = service_account()
    row = await created(client, org, type="fcm", data=account)
    assert row["attributes"]["data"] == {
        "project-id": "clinic-app",
        "client-email": "push@clinic-app.iam.gserviceaccount.com",
    }
    nested = await created(
        client,
        org,
        type="fcm",
        data={"service-account": orjson.dumps(account).decode(), "project-id": "other-project"},
    )
    assert nested["attributes"]["data"]["project-id"] == "other-project"
    secret_line = account["private_key"].splitlines()[1]
    assert secret_line not in await stored_text(app, org)


async def test_vapid_keys_are_generated_when_absent(
    client: httpx.AsyncClient, app: Any, settings: Settings, org: Org
) -> None:
    row = await created(
        client, org, type="web", data={"subject": "mailto:ops@clinic.test"}, **{"app-name": "site"}
    )
    shown = row["attributes"]["data"]
    assert set(shown) == {"public-key", "subject"}
    point = base64.urlsafe_b64decode(shown["public-key"] + "=" * (-len(shown["public-key"]) % 4))
    assert len(point) == 65 and point[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    async with app.state.database.sessionmaker() as session:
        found = await credentials_for(session, settings, uuid.UUID(org.id), "site", "web")
        await session.commit()
    assert found is not None
    private = found.data["private-key"]
    assert private not in await stored_text(app, org)
    # The private key is the public key's.
    raw = base64.urlsafe_b64decode(private + "=" * (-len(private) % 4))
    key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    assert (
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        == point
    )
    # A given key pair is kept; a public key that is not the private key's is refused.
    given = ec.generate_private_key(ec.SECP256R1())
    pem = given.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    kept = await created(client, org, type="web", data={"private-key": pem})
    expected = base64.urlsafe_b64encode(
        given.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    ).rstrip(b"=")
    assert kept["attributes"]["data"]["public-key"] == expected.decode()
    mismatch = await create(
        client, org, type="web", data={"private-key": pem, "public-key": shown["public-key"]}
    )
    assert mismatch.status_code == 400


async def test_unusable_data_is_refused(client: httpx.AsyncClient, org: Org) -> None:
    cases: list[dict[str, Any]] = [
        {"type": "apn", "data": {"key-id": "A", "team-id": "B", "topic": "c"}},
        {"type": "apn", "data": {"key": "nope", "key-id": "A", "team-id": "B", "topic": "c"}},
        {"type": "fcm", "data": {"client_email": "x@y.test"}},
        {"type": "fcm", "data": {"service-account": "{not json"}},
        {"type": "web", "data": {"private-key": "short"}},
        {"type": "web", "data": {"subject": "ops@clinic.test"}},
        {"type": "sms", "data": {}},
    ]
    for case in cases:
        response = await create(client, org, **case)
        assert response.status_code == 400, (case, response.text)


async def test_archive_and_one_live_set_per_app_and_platform(
    client: httpx.AsyncClient, org: Org
) -> None:
    first = await created(client, org, type="web", **{"app-name": "portal"})
    duplicate = await create(client, org, type="web", **{"app-name": "portal"})
    assert duplicate.status_code == 409
    archived = await client.patch(
        f"/v1/app-credentials/{first['id']}/",
        headers=org.admin,
        json=doc("app-credentials", {"archived": True}, first["id"]),
    )
    assert archived.status_code == 200, archived.text
    assert archived.json()["data"]["attributes"]["archived"] is True
    second = await created(client, org, type="web", **{"app-name": "portal"})

    async def ids(query: str) -> set[str]:
        response = await client.get(f"/v1/app-credentials/{query}", headers=org.admin)
        assert response.status_code == 200, response.text
        return {row["id"] for row in response.json()["data"]}

    assert await ids("?filter[app-name]=portal") == {second["id"]}
    assert await ids("?filter[app-name]=portal&include[archived]=true") == {
        first["id"],
        second["id"],
    }
    assert second["id"] in await ids("?filter[type]=web")
    assert await ids("?filter[type]=apn&filter[app-name]=portal") == set()
    unarchive = await client.patch(
        f"/v1/app-credentials/{first['id']}/",
        headers=org.admin,
        json=doc("app-credentials", {"archived": False}, first["id"]),
    )
    assert unarchive.status_code == 409
    renamed = await client.patch(
        f"/v1/app-credentials/{first['id']}/",
        headers=org.admin,
        json=doc(
            "app-credentials",
            {"display-name": "Old portal", "store-id": "id123", "test-mode": True},
            first["id"],
        ),
    )
    assert renamed.status_code == 200
    attributes = renamed.json()["data"]["attributes"]
    assert (attributes["display-name"], attributes["store-id"], attributes["test-mode"]) == (
        "Old portal",
        "id123",
        True,
    )


async def test_admin_only_and_tenancy(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    row = await created(client, org, type="web")
    assert (await client.get("/v1/app-credentials/", headers=org.staff)).status_code == 403
    staff_create = await client.post(
        "/v1/app-credentials/", headers=org.staff, json=doc("app-credentials", {"type": "web"})
    )
    assert staff_create.status_code == 403
    other = await client.get(f"/v1/app-credentials/{row['id']}/", headers=other_org.admin)
    assert other.status_code == 404
    patched = await client.patch(
        f"/v1/app-credentials/{row['id']}/",
        headers=other_org.admin,
        json=doc("app-credentials", {"archived": True}, row["id"]),
    )
    assert patched.status_code == 404
    listed = await client.get("/v1/app-credentials/", headers=other_org.admin)
    assert row["id"] not in {item["id"] for item in listed.json()["data"]}
    foreign = await create(client, org, type="web", **{"organization-id": other_org.id})
    assert foreign.status_code == 404


def test_a_sniffer_never_keeps_a_private_key() -> None:
    key = p8_key()
    body = orjson.dumps(
        {"data": {"type": "app-credentials", "attributes": {"type": "apn", "data": {"key": key}}}}
    )
    for complete in (True, False):
        kept = redact_body(body, complete=complete)
        assert key.splitlines()[1] not in kept
        assert "BEGIN PRIVATE KEY" not in kept
