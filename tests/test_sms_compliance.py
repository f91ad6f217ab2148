"""Texting rules over HTTP, reply by reply: telephony config (403), segments (400),
STOP/START/HELP, organization-wide opt-outs, SMS consents, number lookups. Replies arrive
signed at the number's inbound URL as the sandbox carrier posts them; jobs run in-process."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

import courier.domains.text_accounts.jobs
import courier.domains.text_number_info.jobs
import courier.domains.texts.jobs
import courier.domains.user_consents.jobs
import courier.providers.delivery
import courier.providers.inbound  # noqa: F401
from courier.config import Settings
from courier.jobs import run_until_idle
from courier.providers.common import public_base, sandbox_signature, sandbox_signing_key
from tests.conftest import Org, doc


def new_phone() -> str:
    """A valid US mobile-or-fixed number no other test texts (the sandbox's phones are shared)."""
    import random

    import phonenumbers

    while True:
        phone = f"+1415{random.randint(2, 9)}{random.randint(0, 999999):06d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(phone)):
            return phone


PATIENT = new_phone()


async def settle(app: Any) -> None:
    await run_until_idle(app.state.database, app.state.settings, horizon=0.5)


async def setup(client: httpx.AsyncClient, app: Any, org: Org, **account: Any) -> dict[str, Any]:
    created = await client.post(
        "/v1/text-accounts/",
        json=doc("text-accounts", {"help-text": "Main St Clinic: call 555-0100", **account}),
        headers=org.admin,
    )
    assert created.status_code == 201, created.text
    number = await new_number(client, app, org)
    return {"account": created.json()["data"], "number": number}


async def new_number(client: httpx.AsyncClient, app: Any, org: Org) -> dict[str, Any]:
    created = await client.post(
        "/v1/text-account-numbers/",
        json=doc("text-account-numbers", {"area-code": "212", "rate-per-second": 1000}),
        headers=org.admin,
    )
    assert created.status_code == 201, created.text
    await settle(app)
    got = await client.get(
        f"/v1/text-account-numbers/{created.json()['data']['id']}/", headers=org.admin
    )
    number: dict[str, Any] = got.json()["data"]
    assert number["attributes"]["status"] == "active", number
    return number


async def text_in(
    client: httpx.AsyncClient, app: Any, number: dict[str, Any], body: str, sender: str = ""
) -> None:
    """``sender`` texts ``body`` to ``number``: the carrier's signed webhook, then the jobs."""
    sender = sender or PATIENT
    settings: Settings = app.state.settings
    path = f"/v1/text-account-numbers/{number['id']}/inbound/"
    form = urlencode(
        {
            "MessageSid": "SM" + __import__("uuid").uuid4().hex,
            "From": sender,
            "To": number["attributes"]["phone-number"],
            "Body": body,
            "SmsStatus": "received",
        }
    ).encode()
    signature = sandbox_signature(sandbox_signing_key(settings), public_base(settings) + path, form)
    answer = await client.post(
        path,
        content=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Courier-Sandbox-Signature": signature,
        },
    )
    assert answer.status_code == 204, answer.text
    await settle(app)


async def phone_got(client: httpx.AsyncClient, org: Org, phone: str | None = None) -> list[str]:
    phone = phone or PATIENT
    got = await client.get("/sandbox/sms/messages", params={"number": phone}, headers=org.admin)
    assert got.status_code == 200, got.text
    return [m["body"] for m in sorted(got.json()["data"], key=lambda m: m["date-created"])]


async def send(client: httpx.AsyncClient, org: Org, **attributes: Any) -> httpx.Response:
    return await client.post(
        "/v1/texts/",
        json=doc("texts", {"target": PATIENT, "message": "See you Monday", **attributes}),
        headers=org.staff,
    )


async def test_telephony_config_and_segments(client: httpx.AsyncClient, app: Any, org: Org) -> None:
    made = await setup(client, app, org)
    abroad = await send(client, org, target="+447400123456")
    assert abroad.status_code == 403, abroad.text
    assert "telephony config" in abroad.json()["message"] and "GB" in abroad.json()["message"]
    patched = await client.patch(
        f"/v1/text-accounts/{made['account']['id']}/",
        json={
            "data": {
                "type": "text-accounts",
                "id": made["account"]["id"],
                "attributes": {
                    "telephony-config": {
                        "allowed-countries": ["US", "GB"],
                        "blocked-prefixes": ["+1900"],
                    }
                },
            }
        },
        headers=org.admin,
    )
    assert patched.status_code == 200, patched.text
    assert (await send(client, org, target="+447400123456")).status_code == 201
    canada = await send(client, org, target="+16135550123")
    assert canada.status_code == 403
    assert (await send(client, org, target="+19005550123")).status_code in (400, 403)

    long_unicode = await send(client, org, message="ł" * 700)  # 11 UCS-2 segments
    assert long_unicode.status_code == 400, long_unicode.text
    assert long_unicode.json()["errors"][0]["source"]["pointer"] == "/data/attributes/message"
    ten = await send(client, org, message="a" * 1530)  # 10 GSM-7 segments
    assert ten.status_code == 201 and ten.json()["data"]["attributes"]["segments"] == 10
    bad = await send(client, org, target="4155552671")
    assert bad.status_code == 400


async def test_stop_help_start_reply_by_reply(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    global PATIENT
    PATIENT = new_phone()
    made = await setup(client, app, org)
    number = made["number"]
    assert (await send(client, org)).status_code == 201
    await settle(app)
    assert await phone_got(client, org) == ["See you Monday"]

    await text_in(client, app, number, "  Stop!! ")
    assert (await phone_got(client, org))[-1].startswith("You are unsubscribed")
    refused = await send(client, org)
    assert refused.status_code == 403
    assert "opted out" in refused.json()["message"] and "STOP" in refused.json()["message"]

    await text_in(client, app, number, "help")
    assert (await phone_got(client, org))[-1] == "Main St Clinic: call 555-0100"
    await text_in(client, app, number, "yes")  # YES from someone opted out: START
    assert (await phone_got(client, org))[-1].startswith("You are subscribed again")
    assert (await send(client, org)).status_code == 201
    for word in ("UNSUBSCRIBE", "cancel", "End.", "quit", "STOPALL"):
        await text_in(client, app, number, word)
        assert (await send(client, org)).status_code == 403, word
        await text_in(client, app, number, "unstop")
        assert (await send(client, org)).status_code == 201, word

    logs = await client.get(f"/v1/text-number-logs/?number-id={number['id']}", headers=org.admin)
    assert logs.status_code == 200


async def test_organization_wide_opt_out(client: httpx.AsyncClient, app: Any, org: Org) -> None:
    global PATIENT
    PATIENT = new_phone()
    made = await setup(client, app, org, **{"opt-out-scope": "organization"})
    second = await new_number(client, app, org)
    await text_in(client, app, made["number"], "STOP")
    refused = await send(client, org, **{"number-id": second["id"]})
    assert refused.status_code == 403 and "every number" in refused.json()["message"]
    await text_in(client, app, second, "START")
    assert (await send(client, org, **{"number-id": second["id"]})).status_code == 201


async def test_consent_flow(client: httpx.AsyncClient, app: Any, org: Org) -> None:
    await setup(client, app, org)
    phone = new_phone()
    user = await client.post(
        "/v1/users/",
        json=doc("users", {"username": "pat", "phone": phone, "first-name": "Pat"}),
        headers=org.admin,
    )
    assert user.status_code == 201, user.text
    user_id = user.json()["data"]["id"]
    messages = {
        "initial": "May we text you reminders? Reply YES or NO",
        "accept": "Thanks, you will get reminders",
        "invalid-response": "Please reply YES or NO",
    }
    created = await client.post(
        "/v1/user-consents/",
        json=doc(
            "user-consents", {"type": "sms", "user-id": user_id, "args": {"messages": messages}}
        ),
        headers=org.staff,
    )
    assert created.status_code == 201, created.text
    consent = created.json()["data"]
    assert (
        consent["attributes"]["state"] == "pending" and consent["attributes"]["target-id"] == phone
    )
    await settle(app)
    assert await phone_got(client, org, phone) == [messages["initial"]]
    number = (await client.get("/v1/text-account-numbers/", headers=org.admin)).json()["data"][0]

    await text_in(client, app, number, "maybe later", sender=phone)
    assert (await phone_got(client, org, phone))[-1] == messages["invalid-response"]
    await text_in(client, app, number, " Yes ", sender=phone)
    assert (await phone_got(client, org, phone))[-1] == messages["accept"]
    got = (await client.get(f"/v1/user-consents/{consent['id']}/", headers=org.admin)).json()
    attributes = got["data"]["attributes"]
    assert attributes["state"] == "accepted"
    assert [(h["state"], h["reason"]) for h in attributes["history"]] == [
        ("pending", "requested"),
        ("pending", "invalid-response"),
        ("accepted", "reply"),
    ]
    await text_in(client, app, number, "stop", sender=phone)
    got = (await client.get(f"/v1/user-consents/{consent['id']}/", headers=org.admin)).json()
    assert got["data"]["attributes"]["state"] == "revoked"
    listed = await client.get(f"/v1/user-consents/?filter[user-id]={user_id}", headers=org.admin)
    assert [c["id"] for c in listed.json()["data"]] == [consent["id"]]


async def test_number_info(client: httpx.AsyncClient, app: Any, org: Org) -> None:
    created = await client.post(
        "/v1/text-number-info/",
        json=doc("text-number-info", {"number": PATIENT}),
        headers=org.staff,
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["attributes"]["status"] == "pending"
    await settle(app)
    listed = await client.get(
        "/v1/text-number-info/", params={"number": PATIENT}, headers=org.staff
    )
    (info,) = listed.json()["data"]
    assert info["attributes"]["status"] == "resolved"
    assert info["attributes"]["type"] == "mobile" and info["attributes"]["country"] == "US"
    cached = await client.post(
        "/v1/text-number-info/",
        json=doc("text-number-info", {"number": PATIENT}),
        headers=org.staff,
    )
    assert cached.json()["data"]["attributes"]["status"] == "resolved"
    again = await client.post(
        "/v1/text-number-info/",
        json=doc("text-number-info", {"number": PATIENT, "reresolve": True}),
        headers=org.staff,
    )
    assert again.json()["data"]["attributes"]["status"] == "pending"
    assert (await client.get("/v1/text-number-info/", headers=org.staff)).status_code == 400
    uk = await client.post(
        "/v1/text-number-info/",
        json=doc("text-number-info", {"number": "+447400123456"}),
        headers=org.staff,
    )
    assert uk.status_code == 400
