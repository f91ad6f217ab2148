"""Individual access tokens: minting them, and what a person's app can do with one."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from courier.config import Settings
from courier.core.auth import TOKEN_ALGORITHM, TOKEN_AUDIENCE, token_secret
from courier.core.tenancy import unscoped
from courier.models.audit_event import AuditEvent
from tests.conftest import Org, doc

WWW_AUTHENTICATE = 'Bearer realm="courier", Basic realm="courier"'


async def individual(client: httpx.AsyncClient, org: Org, **attributes: Any) -> str:
    attributes.setdefault("first-name", "Pat")
    attributes.setdefault("last-name", "Doe")
    response = await client.post(
        "/v1/individuals/", json=doc("individuals", attributes), headers=org.admin
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def mint(
    client: httpx.AsyncClient, headers: dict[str, str], individual_id: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/v1/access-tokens/",
        json=doc("access-tokens", {"individual-id": individual_id, **extra}),
        headers=headers,
    )


async def token_for(client: httpx.AsyncClient, org: Org, individual_id: str) -> dict[str, str]:
    response = await mint(client, org.staff, individual_id)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['data']['attributes']['token']}"}


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == WWW_AUTHENTICATE
    assert response.json()["statusCode"] == 401


async def test_mint_response(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    person = await individual(client, org)
    before = datetime.now(UTC)
    response = await mint(client, org.staff, person, **{"ttl-seconds": 600})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    data = response.json()["data"]
    assert data["type"] == "access-tokens"
    assert uuid.UUID(data["id"]).version == 4
    attrs = data["attributes"]
    assert set(attrs) == {"token", "individual-id", "expires-at"}
    assert attrs["individual-id"] == person
    expires = datetime.fromisoformat(attrs["expires-at"].replace("Z", "+00:00"))
    assert 590 <= (expires - before).total_seconds() <= 610
    assert attrs["expires-at"].endswith("Z")

    async with app.state.database.sessionmaker() as session:
        rows = (
            (
                await session.execute(
                    unscoped(
                        select(AuditEvent).where(AuditEvent.resource_id == uuid.UUID(data["id"])),
                        "test reads the audit log",
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(rows) == 1
    assert rows[0].action == "created"
    assert rows[0].resource_type == "access-tokens"
    assert rows[0].actor_type == "api-key"
    assert rows[0].organization_id == uuid.UUID(org.id)
    # The token itself never lands in the log.
    assert attrs["token"] not in str(rows[0].changed_fields)


async def test_mint_default_ttl_is_server_maximum(
    client: httpx.AsyncClient, org: Org, settings: Settings
) -> None:
    person = await individual(client, org)
    response = await mint(client, org.admin, person)
    assert response.status_code == 201
    token = response.json()["data"]["attributes"]["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == settings.token_ttl_seconds
    assert claims["sub"] == person


async def test_mint_permissions(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    person = await individual(client, org)
    foreign = await individual(client, other_org)
    assert (await mint(client, org.readonly, person)).status_code == 403
    assert (await mint(client, org.admin, person)).status_code == 201
    assert (await mint(client, org.staff, person)).status_code == 201
    for headers in (org.staff, org.admin):
        response = await mint(client, headers, foreign)
        assert response.status_code == 404
        assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/individual-id"
        assert (await mint(client, headers, str(uuid.uuid4()))).status_code == 404
    assert_unauthorized(await mint(client, {}, person))


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"individual-id": "not-a-uuid"}, "/data/attributes/individual-id"),
        ({}, "/data/attributes/individual-id"),
        ({"individual-id": None}, "/data/attributes/individual-id"),
        ({"ttl-seconds": 0}, "/data/attributes/ttl-seconds"),
        ({"ttl-seconds": -5}, "/data/attributes/ttl-seconds"),
        ({"ttl-seconds": 10**9}, "/data/attributes/ttl-seconds"),
        ({"ttl-seconds": "60"}, "/data/attributes/ttl-seconds"),
        ({"ttl-seconds": 1.5}, "/data/attributes/ttl-seconds"),
        ({"scope": "all"}, "/data/attributes/scope"),
    ],
)
async def test_mint_bad_bodies(
    client: httpx.AsyncClient, org: Org, attributes: dict[str, Any], pointer: str
) -> None:
    person = await individual(client, org)
    body = {"individual-id": person, **attributes}
    if not attributes:
        body = {}
    response = await client.post(
        "/v1/access-tokens/", json=doc("access-tokens", body), headers=org.staff
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == pointer


async def test_mint_document_checks(client: httpx.AsyncClient, org: Org) -> None:
    person = await individual(client, org)
    wrong_type = await client.post(
        "/v1/access-tokens/", json=doc("individuals", {"individual-id": person}), headers=org.staff
    )
    assert wrong_type.status_code == 409
    not_document = await client.post(
        "/v1/access-tokens/", json={"individual-id": person}, headers=org.staff
    )
    assert not_document.status_code == 400


async def test_token_acts_as_its_individual(client: httpx.AsyncClient, org: Org) -> None:
    me = await individual(client, org, **{"first-name": "Me"})
    someone = await individual(client, org, **{"first-name": "Someone"})
    token = await token_for(client, org, me)

    own = await client.get(f"/v1/individuals/{me}/", headers=token)
    assert own.status_code == 200
    assert own.json()["data"]["attributes"]["first-name"] == "Me"
    assert (await client.get(f"/v1/individuals/{someone}/", headers=token)).status_code == 404
    listed = await client.get("/v1/individuals/", headers=token)
    assert [item["id"] for item in listed.json()["data"]] == [me]
    assert listed.json()["meta"]["page[total]"] == 1

    assert (await client.get("/v1/api-keys/", headers=token)).status_code == 403
    assert (await client.get("/v1/individual-groups/", headers=token)).status_code == 403
    created = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": "A", "last-name": "B"}),
        headers=token,
    )
    assert created.status_code == 403

    for path in ("/v1/individuals/", "/v1/users/", f"/v1/individuals/{me}/"):
        other = await client.get(f"{path}?individual-id={someone}", headers=token)
        assert other.status_code == 403, path
        mine = await client.get(f"{path}?individual-id={me}", headers=token)
        assert mine.status_code == 200, path


async def test_token_edits_only_some_of_its_own_fields(client: httpx.AsyncClient, org: Org) -> None:
    me = await individual(client, org)
    someone = await individual(client, org)
    token = await token_for(client, org, me)

    def body(ident: str, attributes: dict[str, Any]) -> dict[str, Any]:
        return doc("individuals", attributes, ident)

    allowed = await client.patch(
        f"/v1/individuals/{me}/",
        json=body(me, {"preferred-name": "Patty", "phone": "+14155552671", "tz": "America/Denver"}),
        headers=token,
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["data"]["attributes"]["preferred-name"] == "Patty"

    for attributes in (
        {"account-type": "provider"},
        {"last-name": "Other"},
        {"extended": {"x": 1}},
        {"preferred-name": "P", "birth-date": "2000-01-01"},
    ):
        refused = await client.patch(
            f"/v1/individuals/{me}/", json=body(me, attributes), headers=token
        )
        assert refused.status_code == 403, attributes
    seen = await client.get(f"/v1/individuals/{me}/", headers=org.admin)
    assert seen.json()["data"]["attributes"]["account-type"] == "participant"
    assert seen.json()["data"]["attributes"]["preferred-name"] == "Patty"

    other = await client.patch(
        f"/v1/individuals/{someone}/", json=body(someone, {"preferred-name": "X"}), headers=token
    )
    assert other.status_code == 404


async def test_token_sees_and_edits_its_own_user(client: httpx.AsyncClient, org: Org) -> None:
    me = await individual(client, org)
    someone = await individual(client, org)
    mine = await client.post(
        "/v1/users/",
        json=doc("users", {"username": "me", "primary-individual-id": me}),
        headers=org.admin,
    )
    theirs = await client.post(
        "/v1/users/",
        json=doc("users", {"username": "them", "primary-individual-id": someone}),
        headers=org.admin,
    )
    my_id, their_id = mine.json()["data"]["id"], theirs.json()["data"]["id"]
    token = await token_for(client, org, me)

    listed = await client.get("/v1/users/", headers=token)
    assert [item["id"] for item in listed.json()["data"]] == [my_id]
    assert (await client.get(f"/v1/users/{their_id}/", headers=token)).status_code == 404
    changed = await client.patch(
        f"/v1/users/{my_id}/",
        json=doc("users", {"notifications": ["push", "sms"], "sms-mode": "enabled"}, my_id),
        headers=token,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["attributes"]["notifications"] == ["push", "sms"]
    refused = await client.patch(
        f"/v1/users/{my_id}/",
        json=doc("users", {"email-verified": True}, my_id),
        headers=token,
    )
    assert refused.status_code == 403


async def test_token_mints_only_for_itself(client: httpx.AsyncClient, org: Org) -> None:
    me = await individual(client, org)
    someone = await individual(client, org)
    token = await token_for(client, org, me)
    assert (await mint(client, token, someone)).status_code == 403
    fresh = await mint(client, token, me, **{"ttl-seconds": 120})
    assert fresh.status_code == 201, fresh.text
    fresh_headers = {"Authorization": f"Bearer {fresh.json()['data']['attributes']['token']}"}
    assert (await client.get(f"/v1/individuals/{me}/", headers=fresh_headers)).status_code == 200


async def test_expired_and_tampered_tokens(
    client: httpx.AsyncClient, org: Org, settings: Settings
) -> None:
    me = await individual(client, org)
    token = (await token_for(client, org, me))["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    secret = token_secret(settings)

    now = int(time.time())
    expired = jwt.encode(
        {**claims, "iat": now - 120, "exp": now - 60}, secret, algorithm=TOKEN_ALGORITHM
    )
    response = await client.get(
        f"/v1/individuals/{me}/", headers={"Authorization": f"Bearer {expired}"}
    )
    assert_unauthorized(response)
    assert "expired" in response.json()["message"]

    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    assert_unauthorized(
        await client.get(
            f"/v1/individuals/{me}/",
            headers={"Authorization": f"Bearer {header}.{payload}.{flipped}"},
        )
    )
    # Another individual's id in a token signed with a guessed secret.
    forged = jwt.encode(
        {**claims, "sub": str(uuid.uuid4())},
        "a guessed secret that is long enough for HS256",
        algorithm=TOKEN_ALGORITHM,
    )
    assert_unauthorized(
        await client.get("/v1/individuals/", headers={"Authorization": f"Bearer {forged}"})
    )
    unsigned = jwt.encode({**claims}, key="", algorithm="none")
    assert_unauthorized(
        await client.get("/v1/individuals/", headers={"Authorization": f"Bearer {unsigned}"})
    )
    wrong_audience = jwt.encode(
        {**claims, "aud": "someone-else"}, secret, algorithm=TOKEN_ALGORITHM
    )
    assert_unauthorized(
        await client.get("/v1/individuals/", headers={"Authorization": f"Bearer {wrong_audience}"})
    )
    assert claims["aud"] == TOKEN_AUDIENCE


async def test_revoking_the_issuing_key_ends_its_tokens(
    client: httpx.AsyncClient, org: Org
) -> None:
    me = await individual(client, org)
    created = await client.post(
        "/v1/api-keys/", json=doc("api-keys", {"name": "app", "role": "staff"}), headers=org.admin
    )
    assert created.status_code == 201
    key_id = created.json()["data"]["id"]
    app_key = {"Authorization": f"Bearer {created.json()['data']['attributes']['secret']}"}
    token = await mint(client, app_key, me)
    headers = {"Authorization": f"Bearer {token.json()['data']['attributes']['token']}"}
    assert (await client.get(f"/v1/individuals/{me}/", headers=headers)).status_code == 200
    # A token minted by the token keeps the original key as its issuer.
    renewed = await mint(client, headers, me)
    renewed_headers = {"Authorization": f"Bearer {renewed.json()['data']['attributes']['token']}"}

    revoked = await client.delete(f"/v1/api-keys/{key_id}/", headers=org.admin)
    assert revoked.status_code == 200
    assert_unauthorized(await client.get(f"/v1/individuals/{me}/", headers=headers))
    assert_unauthorized(await client.get(f"/v1/individuals/{me}/", headers=renewed_headers))
    # Tokens of other keys are unaffected.
    other = await token_for(client, org, me)
    assert (await client.get(f"/v1/individuals/{me}/", headers=other)).status_code == 200
