"""Push devices over HTTP: registering, one row per token per app (a token moves between
individuals), what an individual token sees, web subscriptions checked, tenancy, the push
logs read from the provider layer's deliveries, and a gone token deactivated."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.domains.user_devices import service as devices_service
from courier.domains.user_devices.purge import purge_user_devices
from courier.models.event import Event
from courier.providers import delivery as deliveries
from courier.providers.common import DeliveryStatus
from courier.providers.push.kind import PUSH
from tests.conftest import Org, bearer, doc
from tests.factories import individual_token, make_individual_id


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def subscription_keys() -> dict[str, str]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {"p256dh": b64url(point), "auth": b64url(uuid.uuid4().bytes)}


async def register(
    client: httpx.AsyncClient, headers: dict[str, str], **attributes: Any
) -> httpx.Response:
    attributes.setdefault("type", "fcm")
    attributes.setdefault("token", f"fcm-{uuid.uuid4().hex}")
    return await client.post(
        "/v1/user-devices/", headers=headers, json=doc("user-devices", attributes)
    )


async def registered(
    client: httpx.AsyncClient, headers: dict[str, str], **attributes: Any
) -> dict[str, Any]:
    response = await register(client, headers, **attributes)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def listed(client: httpx.AsyncClient, headers: dict[str, str], query: str = "") -> list[Any]:
    response = await client.get(f"/v1/user-devices/{query}", headers=headers)
    assert response.status_code == 200, response.text
    rows: list[Any] = response.json()["data"]
    return rows


async def test_register_list_filter_get_delete(client: httpx.AsyncClient, org: Org) -> None:
    alice = await make_individual_id(client, org)
    apn = await registered(
        client,
        org.staff,
        **{
            "individual-id": alice,
            "type": "apn",
            "token": "ab" * 32,
            "app-name": "careapp",
            "app-version": "2.1",
            "model": "iPhone15,2",
            "os-version": "17.2",
            "topic": "org.clinic.careapp",
            "sandbox": True,
        },
    )
    attributes = apn["attributes"]
    assert attributes["individual-id"] == alice
    assert attributes["type"] == "apn"
    assert attributes["allow-notification"] is True
    assert attributes["sandbox"] is True
    assert attributes["active"] is True
    fcm = await registered(
        client, org.staff, **{"individual-id": alice, "allow-notification": False}
    )
    assert fcm["attributes"]["allow-notification"] is False
    assert fcm["attributes"]["app-name"] is None

    assert {row["id"] for row in await listed(client, org.readonly)} == {apn["id"], fcm["id"]}
    assert [row["id"] for row in await listed(client, org.admin, "?filter[type]=apn")] == [
        apn["id"]
    ]
    assert [r["id"] for r in await listed(client, org.admin, "?filter[app-name]=careapp")] == [
        apn["id"]
    ]
    by_token = await listed(client, org.admin, f"?token={'ab' * 32}&all-users=true")
    assert [row["id"] for row in by_token] == [apn["id"]]
    bad = await client.get("/v1/user-devices/?filter[type]=sms", headers=org.admin)
    assert bad.status_code == 400

    got = await client.get(f"/v1/user-devices/{apn['id']}/", headers=org.readonly)
    assert got.status_code == 200
    assert got.json()["data"]["attributes"]["topic"] == "org.clinic.careapp"
    gone = await client.delete(f"/v1/user-devices/{apn['id']}/", headers=org.staff)
    assert gone.status_code == 200, gone.text
    missing = await client.get(f"/v1/user-devices/{apn['id']}/", headers=org.admin)
    assert missing.status_code == 404


async def test_needs_an_individual_of_the_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    response = await register(client, org.staff)
    assert response.status_code == 400
    stranger = await make_individual_id(client, other_org)
    response = await register(client, org.staff, **{"individual-id": stranger})
    assert response.status_code == 404
    readonly = await register(
        client, org.readonly, **{"individual-id": await make_individual_id(client, org)}
    )
    assert readonly.status_code == 403


async def test_a_token_moves_to_whoever_registers_it_again(
    client: httpx.AsyncClient, org: Org
) -> None:
    alice = await make_individual_id(client, org)
    bob = await make_individual_id(client, org)
    token = f"fcm-{uuid.uuid4().hex}"
    first = await registered(client, org.staff, **{"individual-id": alice, "token": token})
    same = await registered(
        client, org.staff, **{"individual-id": alice, "token": token, "app-version": "3"}
    )
    assert same["id"] == first["id"]
    assert same["attributes"]["app-version"] == "3"

    moved = await registered(client, org.staff, **{"individual-id": bob, "token": token})
    assert moved["id"] == first["id"]
    assert moved["attributes"]["individual-id"] == bob
    rows = await listed(client, org.admin, f"?token={token}")
    assert len(rows) == 1
    assert await listed(client, org.admin, f"?filter[individual-id]={alice}") == []
    assert [r["id"] for r in await listed(client, org.admin, f"?filter[individual-id]={bob}")] == [
        first["id"]
    ]
    # Alice's app, signed in as her, no longer sees the device; Bob's does.
    alice_token = bearer(await individual_token(client, org, alice))
    assert await listed(client, alice_token) == []
    bob_token = bearer(await individual_token(client, org, bob))
    assert [row["id"] for row in await listed(client, bob_token)] == [first["id"]]

    # Bob turns notifications off; his app registering the token again keeps that.
    quiet = await registered(
        client, org.staff, **{"individual-id": bob, "token": token, "allow-notification": False}
    )
    assert quiet["attributes"]["allow-notification"] is False
    again = await registered(client, org.staff, **{"individual-id": bob, "token": token})
    assert again["attributes"]["allow-notification"] is False
    # Moved back to Alice, the device starts afresh.
    back = await registered(client, org.staff, **{"individual-id": alice, "token": token})
    assert back["attributes"]["allow-notification"] is True
    assert back["attributes"]["app-version"] is None

    # The same token in another app is another device.
    other_app = await registered(
        client, org.staff, **{"individual-id": alice, "token": token, "app-name": "other"}
    )
    assert other_app["id"] != first["id"]


async def test_purging_an_individual_removes_their_devices(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    alice = await make_individual_id(client, org)
    bob = await make_individual_id(client, org)
    mine = await registered(client, org.staff, **{"individual-id": alice})
    theirs = await registered(client, org.staff, **{"individual-id": bob})
    async with app.state.database.sessionmaker() as session:
        counts = await purge_user_devices(session, uuid.UUID(org.id), uuid.UUID(alice), None)
        await commit(session)
    assert counts == {"user_devices": 1}
    assert (
        await client.get(f"/v1/user-devices/{mine['id']}/", headers=org.admin)
    ).status_code == 404
    assert (
        await client.get(f"/v1/user-devices/{theirs['id']}/", headers=org.admin)
    ).status_code == 200
    async with app.state.database.sessionmaker() as session:
        again = await purge_user_devices(session, uuid.UUID(org.id), uuid.UUID(alice), None)
        await commit(session)
    assert again == {"user_devices": 0}


async def test_an_individual_token_sees_and_registers_only_its_own(
    client: httpx.AsyncClient, org: Org
) -> None:
    alice = await make_individual_id(client, org)
    bob = await make_individual_id(client, org)
    alice_token = bearer(await individual_token(client, org, alice))
    mine = await registered(client, alice_token)
    assert mine["attributes"]["individual-id"] == alice
    theirs = await registered(client, org.staff, **{"individual-id": bob})

    assert [row["id"] for row in await listed(client, alice_token)] == [mine["id"]]
    everyone = await client.get("/v1/user-devices/?all-users=true", headers=alice_token)
    assert everyone.status_code == 403
    hidden = await client.get(f"/v1/user-devices/{theirs['id']}/", headers=alice_token)
    assert hidden.status_code == 404
    not_mine = await client.delete(f"/v1/user-devices/{theirs['id']}/", headers=alice_token)
    assert not_mine.status_code == 404
    for_bob = await register(client, alice_token, **{"individual-id": bob})
    assert for_bob.status_code == 403
    logs = await client.get(f"/v1/user-devices/{mine['id']}/get-logs/", headers=alice_token)
    assert logs.status_code == 200
    removed = await client.delete(f"/v1/user-devices/{mine['id']}/", headers=alice_token)
    assert removed.status_code == 200


async def test_another_organizations_device_is_not_found(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    device = await registered(
        client, org.staff, **{"individual-id": await make_individual_id(client, org)}
    )
    for path in (f"/v1/user-devices/{device['id']}/", f"/v1/user-devices/{device['id']}/get-logs/"):
        response = await client.get(path, headers=other_org.admin)
        assert response.status_code == 404, path
    deleted = await client.delete(f"/v1/user-devices/{device['id']}/", headers=other_org.admin)
    assert deleted.status_code == 404
    assert await listed(client, other_org.admin) == []


async def test_web_devices_carry_a_checked_subscription(
    client: httpx.AsyncClient, org: Org
) -> None:
    alice = await make_individual_id(client, org)
    endpoint = f"https://push.service.test/send/{uuid.uuid4().hex}"
    keys = subscription_keys()
    web = await registered(
        client,
        org.staff,
        **{"individual-id": alice, "type": "web", "token": endpoint, "keys": keys},
    )
    assert web["attributes"]["token"] == endpoint
    assert "keys" not in web["attributes"]

    async def refused(**attributes: Any) -> dict[str, Any]:
        attributes.setdefault("individual-id", alice)
        attributes.setdefault("type", "web")
        response = await register(client, org.staff, **attributes)
        assert response.status_code == 400, response.text
        body: dict[str, Any] = response.json()
        return body

    await refused(token=endpoint + "x")  # no keys
    await refused(token="ftp://push.service.test/x", keys=keys)
    await refused(token="not a url", keys=keys)
    await refused(token=endpoint + "y", keys={**keys, "p256dh": b64url(b"\x04" + b"1" * 64)})
    await refused(token=endpoint + "z", keys={**keys, "auth": b64url(b"short")})
    await refused(token=endpoint + "w", keys={"p256dh": keys["p256dh"]})
    error = await refused(type="fcm", token="fcm-token", keys=keys)
    assert error["errors"][0]["source"]["pointer"] == "/data/attributes/keys"
    await refused(type="apn", token="a" * 256)


CONTENT: dict[uuid.UUID, dict[str, Any]] = {}


@devices_service.push_content("test-pushes")
async def _test_push_content(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, Mapping[str, Any]]:
    return {ident: CONTENT[ident] for ident in ids if ident in CONTENT}


async def push_to(
    app: Any, settings: Settings, org: Org, device_id: str, resource_id: uuid.UUID
) -> uuid.UUID:
    async with app.state.database.sessionmaker() as session:
        delivery = await deliveries.create_delivery(
            session,
            settings,
            organization_id=uuid.UUID(org.id),
            kind=PUSH,
            resource_type="test-pushes",
            resource_id=resource_id,
            recipient=device_id,
        )
        await commit(session)
        return delivery.id


async def test_get_logs_lists_the_pushes_to_the_device_with_their_outcome(
    client: httpx.AsyncClient, app: Any, settings: Settings, org: Org
) -> None:
    alice = await make_individual_id(client, org)
    device = await registered(client, org.staff, **{"individual-id": alice})
    other = await registered(client, org.staff, **{"individual-id": alice})
    shown = uuid.uuid4()
    CONTENT[shown] = {
        "title": "Appointment tomorrow",
        "body": "Open the app for details",
        "badge": 2,
        "category": "reminder",
        "data": {"link": "app://appointments"},
    }
    first = await push_to(app, settings, org, device["id"], shown)
    second = await push_to(app, settings, org, device["id"], uuid.uuid4())
    await push_to(app, settings, org, other["id"], uuid.uuid4())
    async with app.state.database.sessionmaker() as session:
        moved = await deliveries.transition(
            session,
            uuid.UUID(org.id),
            second,
            DeliveryStatus.FAILED,
            source="send",
            code="UNREGISTERED",
        )
        assert moved
        await commit(session)

    response = await client.get(f"/v1/user-devices/{device['id']}/get-logs/", headers=org.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["page[total]"] == 2
    logs = {row["attributes"]["resource-id"]: row for row in body["data"]}
    assert {row["type"] for row in body["data"]} == {"user-device-logs"}
    assert {row["id"] for row in body["data"]} == {str(first), str(second)}
    done = logs[str(shown)]["attributes"]
    assert done["title"] == "Appointment tomorrow"
    assert done["badge-count"] == 2
    assert done["category"] == "reminder"
    assert done["data"] == {"link": "app://appointments"}
    assert done["state"] == "accepted"
    failed = next(row for row in body["data"] if row["id"] == str(second))["attributes"]
    assert failed["state"] == "failed"
    assert failed["error-code"] == "UNREGISTERED"
    assert failed["title"] is None

    paged = await client.get(
        f"/v1/user-devices/{device['id']}/get-logs/?page[limit]=1", headers=org.admin
    )
    assert paged.status_code == 200
    assert len(paged.json()["data"]) == 1


async def test_a_gone_token_is_deactivated_until_registered_again(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    alice = await make_individual_id(client, org)
    token = f"fcm-{uuid.uuid4().hex}"
    device = await registered(client, org.staff, **{"individual-id": alice, "token": token})
    device_id = uuid.UUID(device["id"])
    async with app.state.database.sessionmaker() as session:
        assert await devices_service.deactivate_gone_device(
            session, uuid.UUID(org.id), device_id, code="UNREGISTERED"
        )
        # A second report of the same token changes nothing.
        assert not await devices_service.deactivate_gone_device(
            session, uuid.UUID(org.id), device_id, code="UNREGISTERED"
        )
        await commit(session)
    got = await client.get(f"/v1/user-devices/{device['id']}/", headers=org.admin)
    attributes = got.json()["data"]["attributes"]
    assert attributes["active"] is False
    assert attributes["deactivated-at"] is not None
    async with app.state.database.sessionmaker() as session:
        events = (
            (
                await session.execute(
                    scoped(
                        select(Event.type).where(Event.resource_id == device_id),
                        Event,
                        uuid.UUID(org.id),
                    )
                )
            )
            .scalars()
            .all()
        )
        await session.commit()
    assert "user-devices.deactivated" in events
    # Another organization's id deactivates nothing.
    async with app.state.database.sessionmaker() as session:
        assert not await devices_service.deactivate_gone_device(
            session, uuid.uuid4(), device_id, code="gone"
        )
        await session.commit()

    again = await registered(client, org.staff, **{"individual-id": alice, "token": token})
    assert again["id"] == device["id"]
    assert again["attributes"]["active"] is True
    assert again["attributes"]["deactivated-at"] is None
