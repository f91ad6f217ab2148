"""Text accounts and numbers over HTTP: the callback secret shown once, ``claim-number`` and
``reset-logs`` (declared actions), with what they record."""

from __future__ import annotations

from typing import Any

import httpx

from tests import test_sms_compliance as sms
from tests.conftest import Org, doc


async def audit_actions(client: httpx.AsyncClient, org: Org, ident: str) -> list[str]:
    got = await client.get(
        "/v1/audit-events/", params={"filter[resource-id]": ident}, headers=org.admin
    )
    assert got.status_code == 200, got.text
    return sorted(event["attributes"]["action"] for event in got.json()["data"])


async def test_the_callback_secret_is_shown_once(client: httpx.AsyncClient, org: Org) -> None:
    created = await client.post(
        "/v1/text-accounts/", json=doc("text-accounts", {}), headers=org.admin
    )
    assert created.status_code == 201, created.text
    account = created.json()["data"]
    secret = account["attributes"]["callback-secret"]
    assert isinstance(secret, str) and secret.startswith("txsec_") and len(secret) > 30
    assert await audit_actions(client, org, account["id"]) == ["created"]
    for response in (
        await client.get(f"/v1/text-accounts/{account['id']}/", headers=org.admin),
        await client.patch(
            f"/v1/text-accounts/{account['id']}/",
            json=doc("text-accounts", {"help-text": "Call us"}, account["id"]),
            headers=org.admin,
        ),
    ):
        assert response.status_code == 200, response.text
        assert response.json()["data"]["attributes"]["callback-secret"] is None
    listed = await client.get("/v1/text-accounts/", headers=org.admin)
    assert [a["attributes"]["callback-secret"] for a in listed.json()["data"]] == [None]


async def test_claim_number(client: httpx.AsyncClient, app: Any, org: Org) -> None:
    phone = sms.new_phone()
    closed = await client.post(
        "/v1/text-accounts/",
        json=doc("text-accounts", {"phone-number": phone}),
        headers=org.admin,
    )
    account_id = closed.json()["data"]["id"]
    path = f"/v1/text-accounts/{account_id}/claim-number/"
    refused = await client.post(path, json={"notes": "front desk"}, headers=org.admin)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["code"] == "custom-number"
    opened = await client.patch(
        f"/v1/text-accounts/{account_id}/",
        json=doc("text-accounts", {"allow-custom-number": True}, account_id),
        headers=org.admin,
    )
    assert opened.status_code == 200, opened.text

    # The account's own phone-number by default; the seed's plain JSON body.
    claimed = await client.post(path, json={"notes": "front desk"}, headers=org.admin)
    assert claimed.status_code == 201, claimed.text
    number = claimed.json()["data"]
    assert number["type"] == "text-account-numbers"
    assert number["attributes"]["phone-number"] == phone
    assert number["attributes"]["status"] == "pending"
    assert number["attributes"]["notes"] == "front desk"
    assert number["attributes"]["account-id"] == account_id
    assert await audit_actions(client, org, number["id"]) == ["created"]
    await sms.settle(app)
    got = await client.get(f"/v1/text-account-numbers/{number['id']}/", headers=org.admin)
    assert got.json()["data"]["attributes"]["status"] == "active"

    taken = await client.post(path, json={"notes": "again"}, headers=org.admin)
    assert taken.status_code == 409
    assert taken.json()["errors"][0]["code"] == "number-taken"

    # Another number, named in a JSON:API document.
    other = sms.new_phone()
    wrapped = await client.post(
        path,
        json=doc("text-account-numbers", {"notes": "nights", "phone-number": other}),
        headers=org.admin,
    )
    assert wrapped.status_code == 201, wrapped.text
    assert wrapped.json()["data"]["attributes"]["phone-number"] == other

    for body, pointer in (
        ({}, "/notes"),
        ({"notes": "x", "phone-number": "555-0100"}, "/phone-number"),
        ({"notes": "x", "phone_number": sms.new_phone()}, "/phone_number"),
    ):
        bad = await client.post(path, json=body, headers=org.admin)
        assert bad.status_code == 400, body
        assert bad.json()["errors"][0]["source"]["pointer"].endswith(pointer), bad.text
    staff = await client.post(path, json={"notes": "x"}, headers=org.staff)
    assert staff.status_code == 403
    numbers = await client.get(
        "/v1/text-account-numbers/", params={"account-id": account_id}, headers=org.admin
    )
    assert len(numbers.json()["data"]) == 2


async def test_reset_logs(client: httpx.AsyncClient, app: Any, org: Org) -> None:
    made = await sms.setup(client, app, org)
    number = made["number"]
    number_id = number["id"]
    logging = await client.patch(
        f"/v1/text-account-numbers/{number_id}/",
        json=doc("text-account-numbers", {"logging": True}, number_id),
        headers=org.admin,
    )
    assert logging.status_code == 200, logging.text
    await sms.text_in(client, app, number, "Running late", sender=sms.new_phone())
    logs = await client.get(
        "/v1/text-number-logs/", params={"number-id": number_id}, headers=org.admin
    )
    assert logs.json()["data"], "the inbound text was logged"

    reset = await client.post(
        f"/v1/text-account-numbers/{number_id}/reset-logs/", headers=org.admin
    )
    assert reset.status_code == 201, reset.text
    assert reset.json()["data"]["id"] == number_id
    assert reset.json()["data"]["attributes"]["logging"] is True
    after = await client.get(
        "/v1/text-number-logs/", params={"number-id": number_id}, headers=org.admin
    )
    assert after.json()["data"] == []
    assert "logs-reset" in await audit_actions(client, org, number_id)

    # Idempotent, and it takes {} too.
    again = await client.post(
        f"/v1/text-account-numbers/{number_id}/reset-logs/", json={}, headers=org.admin
    )
    assert again.status_code == 201
    unknown = await client.post(
        f"/v1/text-account-numbers/{number_id}/reset-logs/", json={"all": True}, headers=org.admin
    )
    assert unknown.status_code == 400
