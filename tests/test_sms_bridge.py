"""The channel bridge over HTTP: ``set-sms`` texts a channel's participant, providers' posts
follow them to their phone (only with an accepted consent; PHI-safe where asked), and their
replies, sent from the phone through the sandbox carrier, are posted into the channel once and
in order.

A live Courier (uvicorn on 127.0.0.1, the sandbox's webhooks land there) serves the same app
the test talks to in-process (every response checked against the OpenAPI document); jobs run
in this process."""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import phonenumbers
import pytest
import uvicorn
from sqlalchemy import select, update

import courier.domains.messaging.jobs
import courier.domains.text_accounts.jobs
import courier.domains.texts.jobs
import courier.domains.user_consents.jobs
import courier.providers.delivery
import courier.providers.inbound  # noqa: F401
from courier.app import create_app
from courier.config import Settings
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.jobs import Job, run_until_idle
from courier.models.delivery import ProviderInbound
from courier.providers.common import (
    providers_for,
    public_base,
    sandbox_signature,
    sandbox_signing_key,
)
from courier.providers.inbound import APPLY_JOB
from courier.providers.sms import SMS
from tests.conftest import Org, create_org, doc, make_settings, openapi_checked
from tests.factories import individual_token


def new_phone() -> str:
    """A valid US number no other test texts (the sandbox's phones are shared)."""
    while True:
        phone = f"+1415{random.randint(2, 9)}{random.randint(0, 999999):06d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(phone)):
            return phone


@dataclass
class Live:
    app: Any
    settings: Settings
    client: httpx.AsyncClient


@pytest.fixture(scope="module")
async def live(database_url: str, data_dir: Path) -> AsyncIterator[Live]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = make_settings(
        database_url,
        data_dir,
        public_url=url,
        sandbox_delay_seconds=0.0,
        job_backoff_base_seconds=0.01,
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.01)
    async with openapi_checked(app, base_url="http://courier.test") as client:
        yield Live(app, settings, client)
    server.should_exit = True
    await task


async def settle(live: Live) -> None:
    """Run the jobs, and let the sandbox carrier's webhooks land, until nothing is left."""
    for _ in range(20):
        ran = await run_until_idle(live.app.state.database, live.settings, horizon=0.5)
        await providers_for(live.settings).get(SMS).idle()
        if not ran and not await run_until_idle(
            live.app.state.database, live.settings, horizon=0.5
        ):
            return


@dataclass
class Clinic:
    org: Org
    number: dict[str, Any]
    provider: str
    patient: str
    phone: str
    user: str
    channel: str


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def clinic(live: Live, **patient: Any) -> Clinic:
    """An organization with a text number, a provider, a patient with a login whose phone is
    ``phone``, and a channel of the two on that number (SMS off, no consent yet)."""
    client = live.client
    org = await create_org(client)
    await created(
        await client.post("/v1/text-accounts/", json=doc("text-accounts", {}), headers=org.admin)
    )
    number = await created(
        await client.post(
            "/v1/text-account-numbers/",
            json=doc("text-account-numbers", {"area-code": "212", "rate-per-second": 1000}),
            headers=org.admin,
        )
    )
    await settle(live)
    number = (
        await client.get(f"/v1/text-account-numbers/{number['id']}/", headers=org.admin)
    ).json()["data"]
    assert number["attributes"]["status"] == "active", number
    provider = await created(
        await client.post(
            "/v1/individuals/",
            json=doc(
                "individuals",
                {"first-name": "Dana", "last-name": "Lee", "account-type": "provider"},
            ),
            headers=org.admin,
        )
    )
    person = await created(
        await client.post(
            "/v1/individuals/",
            json=doc("individuals", {"first-name": "Pat", "last-name": "Doe", **patient}),
            headers=org.admin,
        )
    )
    phone = new_phone()
    user = await created(
        await client.post(
            "/v1/users/",
            json=doc(
                "users",
                {
                    "username": f"pat-{uuid.uuid4().hex[:8]}",
                    "phone": phone,
                    "primary-individual-id": person["id"],
                },
            ),
            headers=org.admin,
        )
    )
    channel = await created(
        await client.post(
            "/v1/messaging-channels/",
            json=doc(
                "messaging-channels",
                {"individual-ids": [provider["id"], person["id"]], "text-number-id": number["id"]},
            ),
            headers=org.staff,
        )
    )
    return Clinic(org, number, provider["id"], person["id"], phone, user["id"], channel["id"])


async def phone_got(live: Live, c: Clinic) -> list[dict[str, Any]]:
    got = await live.client.get(
        "/sandbox/sms/messages", params={"number": c.phone}, headers=c.org.admin
    )
    assert got.status_code == 200, got.text
    return sorted(got.json()["data"], key=lambda m: m["date-created"])


async def bodies(live: Live, c: Clinic) -> list[str]:
    return [m["body"] for m in await phone_got(live, c)]


async def reply(live: Live, c: Clinic, body: str) -> None:
    """The patient texts ``body`` from their phone to the clinic's number (the sandbox carrier
    posts the signed inbound webhook), then the jobs run."""
    sent = await live.client.post(
        "/sandbox/sms/replies",
        json={"from": c.phone, "to": c.number["attributes"]["phone-number"], "body": body},
        headers=c.org.admin,
    )
    assert sent.status_code in (200, 201), sent.text
    await settle(live)


async def consent(live: Live, c: Clinic) -> None:
    messages = {"initial": "May Main St Clinic text you? Reply YES or NO", "accept": "Thank you"}
    await created(
        await live.client.post(
            "/v1/user-consents/",
            json=doc("user-consents", {"user-id": c.user, "args": {"messages": messages}}),
            headers=c.org.staff,
        )
    )
    await settle(live)
    await reply(live, c, "YES")
    consents = await live.client.get(
        "/v1/user-consents/", params={"filter[user-id]": c.user}, headers=c.org.admin
    )
    assert [x["attributes"]["state"] for x in consents.json()["data"]] == ["accepted"]


async def channel(live: Live, c: Clinic) -> dict[str, Any]:
    got = await live.client.get(f"/v1/messaging-channels/{c.channel}/", headers=c.org.staff)
    assert got.status_code == 200, got.text
    attributes: dict[str, Any] = got.json()["data"]["attributes"]
    return attributes


async def set_sms(live: Live, c: Clinic, **body: Any) -> httpx.Response:
    return await live.client.post(
        f"/v1/messaging-channels/{c.channel}/set-sms/", json=body, headers=c.org.staff
    )


async def post(live: Live, c: Clinic, author: str, text: str) -> None:
    await created(
        await live.client.post(
            "/v1/messaging-messages/",
            json=doc(
                "messaging-messages",
                {"channel-id": c.channel, "individual-id": author, "message": text},
            ),
            headers=c.org.staff,
        )
    )


async def messages(live: Live, c: Clinic) -> list[dict[str, Any]]:
    """The channel's messages, oldest first, as the provider sees them."""
    got = await live.client.get(
        "/v1/messaging-messages/",
        params={"channel-id": c.channel, "individual-id": c.provider, "sort": "seq"},
        headers=c.org.staff,
    )
    assert got.status_code == 200, got.text
    return [m["attributes"] for m in got.json()["data"]]


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    item: dict[str, Any] = response.json()["errors"][0]
    return item


async def test_set_sms_texts_the_participant_and_bridges_both_ways(live: Live) -> None:
    c = await clinic(live)
    number = c.number["attributes"]["phone-number"]
    attributes = await channel(live, c)
    assert attributes["text-number"] == {"id": c.number["id"]}
    assert attributes["can-enable-sms"] is False and attributes["with-sms"] is False

    # No consent yet: the path cannot be turned on, and posts are not texted.
    refused = await set_sms(live, c, active=True, **{"initial-message": "Hello"})
    assert error(refused, 422)["code"] == "no-consent"
    await post(live, c, c.provider, "Are you free on Monday?")
    await settle(live)
    assert await bodies(live, c) == []

    await consent(live, c)
    assert (await channel(live, c))["can-enable-sms"] is True
    before = len(await bodies(live, c))
    turned_on = await set_sms(
        live, c, active=True, **{"initial-message": "Dr. Lee's team here. Reply to reach us."}
    )
    assert turned_on.status_code == 201, turned_on.text
    shown = turned_on.json()["data"]["attributes"]
    assert shown["with-sms"] is True and shown["can-enable-sms"] is True
    # Accepted, not sent while the request waited: the phone has nothing new until the jobs run.
    assert len(await bodies(live, c)) == before
    await settle(live)
    received = await phone_got(live, c)
    assert received[-1]["body"] == "Dr. Lee's team here. Reply to reach us."
    assert received[-1]["from"] == number
    # Turning it on again texts nothing more.
    again = await set_sms(live, c, active=True)
    assert again.status_code == 201, again.text
    await settle(live)
    assert len(await phone_got(live, c)) == len(received)

    # A provider's post reaches the phone; the patient's own post in the app does not.
    await post(live, c, c.provider, "Your blood pressure readings look good.")
    await post(live, c, c.patient, "Great, thanks (typed in the app)")
    await settle(live)
    assert (await bodies(live, c))[len(received) :] == ["Your blood pressure readings look good."]

    # The patient's replies from the phone are posted as theirs, in order.
    await reply(live, c, "Should I keep the same dose?")
    await reply(live, c, "And see you Friday")
    posted = await messages(live, c)
    assert [(m["message"], m["individual-id"], m["source"]) for m in posted[-2:]] == [
        ("Should I keep the same dose?", c.patient, "sms"),
        ("And see you Friday", c.patient, "sms"),
    ]
    # ... and are not texted back to them.
    await settle(live)
    assert (await bodies(live, c))[-1] == "Your blood pressure readings look good."

    # STOP revokes the consent: the path is off at once, nothing more is texted, and STOP is
    # no message of the channel.
    await reply(live, c, "STOP")
    attributes = await channel(live, c)
    assert attributes["with-sms"] is False and attributes["can-enable-sms"] is False
    count = len(await bodies(live, c))
    await post(live, c, c.provider, "Please call us about your dose.")
    await settle(live)
    assert len(await bodies(live, c)) == count
    assert [m["message"] for m in await messages(live, c)][-1] == "Please call us about your dose."


async def test_a_replayed_webhook_posts_once_and_replies_keep_their_order(live: Live) -> None:
    c = await clinic(live)
    await consent(live, c)
    assert (await set_sms(live, c, active=True)).status_code == 201
    await settle(live)
    to = c.number["attributes"]["phone-number"]
    path = f"/v1/text-account-numbers/{c.number['id']}/inbound/"
    settings = live.settings

    async def webhook(sid: str, body: str) -> None:
        form = urlencode(
            {"MessageSid": sid, "From": c.phone, "To": to, "Body": body, "SmsStatus": "received"}
        ).encode()
        signature = sandbox_signature(
            sandbox_signing_key(settings), public_base(settings) + path, form
        )
        answer = await live.client.post(
            path,
            content=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Courier-Sandbox-Signature": signature,
            },
        )
        assert answer.status_code == 204, answer.text

    # The carrier posts the same message twice (a retried webhook): one post.
    first = "SM" + uuid.uuid4().hex
    await webhook(first, "Is the clinic open on Saturday?")
    await webhook(first, "Is the clinic open on Saturday?")
    await settle(live)
    await webhook(first, "Is the clinic open on Saturday?")
    await settle(live)
    texts = [m["message"] for m in await messages(live, c)]
    assert texts.count("Is the clinic open on Saturday?") == 1

    # Two texts arrive; the first one's job is held back (a busy worker): the second waits for
    # it, and both are posted in the order they were sent.
    early, late = "SM" + uuid.uuid4().hex, "SM" + uuid.uuid4().hex
    await webhook(early, "First: my arm hurts")
    await webhook(late, "Second: since yesterday")
    async with live.app.state.database.sessionmaker() as session:
        inbound_id = (
            await session.execute(
                select(ProviderInbound.id).where(ProviderInbound.vendor_id == early)
            )
        ).scalar_one()
        held = await session.execute(
            scoped(update(Job), Job, uuid.UUID(c.org.id))
            .where(Job.kind == APPLY_JOB, Job.dedupe_key == f"{APPLY_JOB}:{inbound_id}")
            .values(run_at=utcnow() + timedelta(seconds=1.5))
        )
        assert held.rowcount == 1  # type: ignore[attr-defined]
        await session.commit()
    await settle(live)
    texts = [m["message"] for m in await messages(live, c)]
    assert texts[-2:] == ["First: my arm hurts", "Second: since yesterday"]


async def test_phi_safe_texts_say_only_that_there_is_a_message(live: Live) -> None:
    c = await clinic(live, locale="es-US")
    link = "https://app.clinic.test/messages/{channel-id}"
    for name, value in (
        ("sms-message-link", link),
        ("initial-sms-message", "Main St Clinic: you can now text us here."),
    ):
        await created(
            await live.client.post(
                "/v1/org-preferences/",
                json=doc("org-preferences", {"name": name, "value-js": value}),
                headers=c.org.admin,
            )
        )
    await consent(live, c)
    # No initial message given (none in the patient's language either): the organization's.
    turned_on = await set_sms(
        live, c, active=True, **{"phi-safe": True, "initial-message-js": {"fr_CA": "Bonjour"}}
    )
    assert turned_on.status_code == 201, turned_on.text
    assert turned_on.json()["data"]["attributes"]["sms-phi-safe"] is True
    await settle(live)
    assert (await bodies(live, c))[-1] == "Main St Clinic: you can now text us here."

    await post(live, c, c.provider, "Your HIV test came back negative.")
    await settle(live)
    neutral = (
        "You have a new message from your care team. Read it here: "
        f"https://app.clinic.test/messages/{c.channel}"
    )
    got = await bodies(live, c)
    assert got[-1] == neutral
    assert not any("HIV" in body for body in got)
    assert [m["message"] for m in await messages(live, c)][-1] == (
        "Your HIV test came back negative."
    )

    # The channel's own setting wins over the organization's.
    await created(
        await live.client.post(
            "/v1/org-preferences/",
            json=doc("org-preferences", {"name": "sms-phi-safe", "value-js": True}),
            headers=c.org.admin,
        )
    )
    opened = await set_sms(live, c, active=True, **{"phi-safe": False})
    assert opened.json()["data"]["attributes"]["sms-phi-safe"] is False
    await post(live, c, c.provider, "See you at 3pm.")
    await settle(live)
    assert (await bodies(live, c))[-1] == "See you at 3pm."
    # null: the organization's preference (PHI-safe now).
    inherited = await set_sms(live, c, active=True, **{"phi-safe": None})
    assert inherited.json()["data"]["attributes"]["sms-phi-safe"] is None
    await post(live, c, c.provider, "Your biopsy results are ready.")
    await settle(live)
    assert (await bodies(live, c))[-1] == neutral


async def test_the_initial_message_in_the_participants_language(live: Live) -> None:
    c = await clinic(live, locale="es-US")
    await consent(live, c)
    texts = {"en_US": "Hello from the clinic", "es_US": "Hola de la clínica"}
    turned_on = await set_sms(
        live, c, active=True, **{"initial-message": "Hello", "initial-message-js": texts}
    )
    assert turned_on.status_code == 201, turned_on.text
    await settle(live)
    assert (await bodies(live, c))[-1] == "Hola de la clínica"


async def test_what_set_sms_needs(live: Live) -> None:
    c = await clinic(live)
    client, org = live.client, c.org
    base = f"/v1/messaging-channels/{c.channel}"

    # text-number-id must name a number of the organization, on create and on PATCH.
    unknown = str(uuid.uuid4())
    made = await client.post(
        "/v1/messaging-channels/",
        json=doc("messaging-channels", {"individual-ids": [c.patient], "text-number-id": unknown}),
        headers=org.staff,
    )
    assert error(made, 404)["source"]["pointer"] == "/data/attributes/text-number-id"
    patched = await client.patch(
        f"{base}/",
        json={
            "data": {
                "type": "messaging-channels",
                "id": c.channel,
                "attributes": [{"op": "replace", "path": "/text-number-id", "value": unknown}],
            }
        },
        headers=org.staff,
    )
    assert error(patched, 404)["source"]["pointer"] == "/data/attributes/0/value"

    # No participant (the patient leaves), then two: nobody to text.
    await consent(live, c)
    assert (await channel(live, c))["can-enable-sms"] is True
    left = await client.post(
        f"{base}/unsubscribe/", json={"individual-ids": [c.patient]}, headers=org.staff
    )
    assert left.status_code == 201, left.text
    assert error(await set_sms(live, c, active=True), 422)["code"] == "no-participant"
    sibling = await created(
        await client.post(
            "/v1/individuals/",
            json=doc(
                "individuals", {"first-name": "Sam", "last-name": "Doe", "phone": new_phone()}
            ),
            headers=org.admin,
        )
    )
    joined = await client.post(
        f"{base}/subscribe/", json={"individual-ids": [c.patient, sibling["id"]]}, headers=org.staff
    )
    assert joined.status_code == 201, joined.text
    assert (await channel(live, c))["can-enable-sms"] is False
    assert error(await set_sms(live, c, active=True), 422)["code"] == "no-participant"
    await client.post(
        f"{base}/unsubscribe/", json={"individual-ids": [sibling["id"]]}, headers=org.staff
    )

    # A destination the telephony config does not allow: 403, nothing is turned on.
    account_id = c.number["attributes"]["account-id"]
    blocked = await client.patch(
        f"/v1/text-accounts/{account_id}/",
        json=doc(
            "text-accounts",
            {"telephony-config": {"blocked-prefixes": [c.phone[:5]]}},
            account_id,
        ),
        headers=org.admin,
    )
    assert blocked.status_code == 200, blocked.text
    assert error(await set_sms(live, c, active=True), 403)["detail"]
    assert (await channel(live, c))["with-sms"] is False

    # An initial message too long to text: 400 pointing at it.
    await client.patch(
        f"/v1/text-accounts/{account_id}/",
        json=doc("text-accounts", {"telephony-config": {"blocked-prefixes": []}}, account_id),
        headers=org.admin,
    )
    long = await set_sms(live, c, active=True, **{"initial-message": "ł" * 1000})
    assert error(long, 400)["source"]["pointer"] == "/initial-message"

    # A patient's own token may not switch it.
    token = await individual_token(client, org, c.patient)
    as_patient = await client.post(
        f"{base}/set-sms/", json={"active": True}, headers={"Authorization": f"Bearer {token}"}
    )
    assert as_patient.status_code == 403, as_patient.text


async def test_replies_follow_the_channel_to_its_new_number(live: Live) -> None:
    c = await clinic(live)
    await consent(live, c)
    assert (await set_sms(live, c, active=True)).status_code == 201
    await settle(live)
    second = await created(
        await live.client.post(
            "/v1/text-account-numbers/",
            json=doc("text-account-numbers", {"area-code": "646", "rate-per-second": 1000}),
            headers=c.org.admin,
        )
    )
    await settle(live)
    second = (
        await live.client.get(f"/v1/text-account-numbers/{second['id']}/", headers=c.org.admin)
    ).json()["data"]
    moved = await live.client.patch(
        f"/v1/messaging-channels/{c.channel}/",
        json={
            "data": {
                "type": "messaging-channels",
                "id": c.channel,
                "attributes": [{"op": "replace", "path": "/text-number-id", "value": second["id"]}],
            }
        },
        headers=c.org.staff,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["attributes"]["with-sms"] is True
    # The patient answers the number the channel texts from now (it never texted them yet).
    c.number = second
    await reply(live, c, "Got a new number?")
    last = (await messages(live, c))[-1]
    assert (last["message"], last["individual-id"]) == ("Got a new number?", c.patient)
    await post(live, c, c.provider, "Yes, this one.")
    await settle(live)
    received = (await phone_got(live, c))[-1]
    assert (received["body"], received["from"]) == (
        "Yes, this one.",
        second["attributes"]["phone-number"],
    )
