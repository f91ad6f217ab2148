"""The provider layer: delivery state machine, inbound webhooks, sms and email sandboxes, the
sandbox control surface, and a contract every adapter of a kind passes.

A live Courier (uvicorn on 127.0.0.1) receives the sandboxes' real, signed callbacks; jobs are
run in this process with the same settings, so the adapters are the ones the server uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from courier.app import create_app
from courier.config import Settings
from courier.core.db import commit
from courier.jobs import JobContext, run_until_idle
from courier.models.delivery import Delivery, ProviderInbound
from courier.providers import common as providers_module
from courier.providers import delivery as deliveries
from courier.providers.common import (
    SANDBOX_SIGNATURE_HEADER,
    DeliveryStatus,
    Permanent,
    RawRequest,
    SendResult,
    callback_url,
    close_providers,
    providers_for,
    sandbox_signature,
    sandbox_signing_key,
)
from courier.providers.email import EMAIL, delivery_id_of
from courier.providers.sms import SMS, SmsMessage
from courier.providers.sms.twilio_wire import status_form
from courier.providers.twilio_signature import sign_twilio, verify_twilio
from tests.conftest import MASTER, Org, create_org, make_settings
from tests.smtp_server import SmtpServer
from tests.support import PROCESS_POOL
from tests.twilio_fake import start_fake_twilio

TEXTS = "provider-test-texts"
EMAILS = "provider-test-emails"
SENDER = "+14155550199"  # a sandbox-reserved number family, never a real phone


@deliveries.delivery_sender(TEXTS)
async def _send_text(job: JobContext, delivery: Delivery, adapter: Any) -> SendResult:
    url = callback_url(job.settings, "sms", "status", delivery_id=delivery.id)
    message = SmsMessage(to=delivery.recipient, sender=SENDER, body="Your appointment is at 10")
    result: SendResult = await adapter.send(message, delivery_id=delivery.id, callback_url=url)
    return result


@deliveries.delivery_sender(EMAILS)
async def _send_email(job: JobContext, delivery: Delivery, adapter: Any) -> SendResult:
    message = EmailMessage()
    message["From"] = "clinic@example.test"
    message["To"] = delivery.recipient
    message["Subject"] = "Your appointment"
    message.set_content("See you at 10.")
    result: SendResult = await adapter.send(message, delivery_id=delivery.id)
    return result


@dataclass
class Live:
    app: Any
    settings: Settings
    client: httpx.AsyncClient
    url: str


@pytest.fixture(scope="module")
async def live(database_url: str, data_dir: Path) -> AsyncIterator[Live]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(
        database_url,
        data_dir,
        public_url=url,
        sandbox_delay_seconds=0.0,
        job_backoff_base_seconds=0.01,
        delivery_grace_seconds=2.0,
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield Live(app, settings, client, url)
    server.should_exit = True
    await task


async def settle(live: Live) -> None:
    """Run jobs and let the sandboxes' callbacks land, until nothing is left to do."""
    for _ in range(20):
        ran = await run_until_idle(live.app.state.database, live.settings, horizon=3.0)
        for kind in (SMS, EMAIL):
            await providers_for(live.settings).get(kind).idle()
        if not ran:
            ran = await run_until_idle(live.app.state.database, live.settings, horizon=3.0)
            if not ran:
                return


async def accept(
    live: Live, org: Org, recipient: str, *, kind: Any = SMS, resource_type: str = TEXTS
) -> uuid.UUID:
    async with live.app.state.database.sessionmaker() as session:
        delivery = await deliveries.create_delivery(
            session,
            live.settings,
            organization_id=uuid.UUID(org.id),
            kind=kind,
            resource_type=resource_type,
            resource_id=uuid.uuid4(),
            recipient=recipient,
        )
        await commit(session)
        return delivery.id


async def state_of(live: Live, org: Org, delivery_id: uuid.UUID) -> tuple[Delivery, list[Any]]:
    async with live.app.state.database.sessionmaker() as session:
        found = await deliveries.load(session, uuid.UUID(org.id), delivery_id)
        assert found is not None
        events = await deliveries.history(session, uuid.UUID(org.id), delivery_id)
        await session.commit()
        return found, events


async def phone(live: Live, org: Org, number: str) -> list[dict[str, Any]]:
    response = await live.client.get(
        "/sandbox/sms/messages", params={"number": number}, headers=org.admin
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["data"]
    return messages


@pytest.fixture
async def live_org(live: Live) -> Org:
    return await create_org(live.client)


# --- Twilio's signature, with Twilio's own published vector ---------------------------------

TWILIO_URI = "https://mycompany.com/myapp.php?foo=1&bar=2"  # the vector's URL; nothing is sent
TWILIO_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
]


def _twilio_request(url: str, params: list[tuple[str, str]], signature: str) -> RawRequest:
    return RawRequest(
        "POST",
        url,
        {
            "x-twilio-signature": signature,
            "content-type": "application/x-www-form-urlencoded",
        },
        urlencode(params).encode(),
        tuple(params),
    )


def test_twilio_signature_matches_twilios_published_vector() -> None:
    assert sign_twilio("12345", TWILIO_URI, TWILIO_PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    duplicated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert sign_twilio("12345", TWILIO_URI, duplicated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    good = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert verify_twilio("12345", _twilio_request(TWILIO_URI, TWILIO_PARAMS, good))
    with_port = TWILIO_URI.replace(".com", ".com:1234")  # the port is tried without, too
    assert verify_twilio("12345", _twilio_request(with_port, TWILIO_PARAMS, good))
    assert verify_twilio(
        "12345", _twilio_request(TWILIO_URI, TWILIO_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")
    )  # and with :443 added
    assert not verify_twilio("12346", _twilio_request(TWILIO_URI, TWILIO_PARAMS, good))
    tampered = [*TWILIO_PARAMS[:-1], ("Caller", "+14158675310")]
    assert not verify_twilio("12345", _twilio_request(TWILIO_URI, tampered, good))


# --- the contract every adapter of a kind passes ---------------------------------------------


def _adapters(kind: Any) -> list[str]:
    return sorted(kind.factories)


@pytest.mark.parametrize("adapter_name", _adapters(SMS))
async def test_sms_contract(live: Live, live_org: Org, adapter_name: str) -> None:
    with contextlib.ExitStack() as stack:
        settings = live.settings
        if adapter_name == "twilio":  # the real twilio client against the local fake Twilio
            fake = stack.enter_context(contextlib.contextmanager(start_fake_twilio)())
            fake.send_callbacks = False  # its receipts would go to this sandbox-configured server
            settings = Settings(
                **{
                    **settings.model_dump(),
                    "twilio_account_sid": fake.account_sid,
                    "twilio_auth_token": fake.auth_token,
                    "twilio_api_base_url": fake.url,
                }
            )
        await _sms_contract(settings, adapter_name)


async def _sms_contract(settings: Settings, adapter_name: str) -> None:
    adapter = SMS.factories[adapter_name](settings)
    # Numbers: provisioned in the area code asked for, valid, with capabilities; then released.
    number = await adapter.provision_number("415", country="US")
    assert number.number.startswith("+1415") and number.capabilities["sms"]
    lookup = await adapter.lookup(number.number)
    assert lookup.valid and lookup.country == "US"
    assert not (await adapter.lookup("+1415")).valid
    british = await adapter.provision_number("20", country="GB")
    assert british.number.startswith("+4420")
    assert await adapter.release_number(british.number)
    assert not await adapter.release_number(british.number)
    with pytest.raises(Permanent):
        await adapter.provision_number("4x5", country="US")
    # A send is accepted with the vendor's id, and reported through signed callbacks that the
    # adapter itself verifies and parses into events naming Courier's delivery.
    delivery_id = uuid.uuid4()
    url = callback_url(settings, "sms", "status", delivery_id=delivery_id)
    sent = await adapter.send(
        SmsMessage(to="+14155550100", sender=number.number, body="hi"),
        delivery_id=delivery_id,
        callback_url=url,
    )
    assert sent.vendor_id
    fetched = await adapter.fetch(delivery_id=delivery_id, vendor_id=None, recipient="+1")
    assert fetched is None or fetched.vendor_id == sent.vendor_id
    form = status_form(
        sid=sent.vendor_id, account="AC1", status="delivered", sender="+1", to="+1", error_code=None
    )
    body = urlencode(form).encode()
    pairs = list(form)
    if adapter_name == "twilio":  # signed as Twilio signs it, with the account's auth token
        signature = sign_twilio(settings.twilio_auth_token or "", url, pairs)
        headers = {"x-twilio-signature": signature}
    else:
        key = sandbox_signing_key(settings)
        headers = {SANDBOX_SIGNATURE_HEADER.lower(): sandbox_signature(key, url, body)}
    request = RawRequest("POST", url, headers, body, tuple(pairs), hook="status")
    assert adapter.verify(request)
    tampered = [*pairs, ("ErrorCode", "30003")]
    forged = RawRequest(
        "POST", url, headers, urlencode(tampered).encode(), tuple(tampered), "status"
    )
    assert not adapter.verify(forged)
    [event] = adapter.parse(request)
    assert event.delivery_id == delivery_id and event.vendor_id == sent.vendor_id
    assert event.status is DeliveryStatus.DELIVERED
    idle = getattr(adapter, "idle", None)  # the sandbox's callbacks still on their way
    if idle is not None:
        await idle()
    assert await adapter.release_number(number.number)
    close = getattr(adapter, "close", None)  # the twilio client's connections
    if close is not None:
        await close()


@pytest.mark.parametrize("adapter_name", _adapters(EMAIL))
async def test_email_contract(live: Live, adapter_name: str, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        settings = live.settings
        if adapter_name == "smtp":  # a real local SMTP server (STARTTLS, AUTH) takes it
            server = stack.enter_context(SmtpServer(tmp_path))
            settings = Settings(**{**settings.model_dump(), **server.settings()})
        adapter = EMAIL.factories[adapter_name](settings)
        message = EmailMessage()
        message["From"] = "clinic@example.test"
        message["To"] = f"patient-{uuid.uuid4().hex[:6]}@example.test"
        message["Subject"] = "Reminder"
        message.set_content("See you tomorrow.")
        delivery_id = uuid.uuid4()
        sent = await adapter.send(message, delivery_id=delivery_id)
        assert delivery_id_of(sent.vendor_id) == delivery_id  # the Message-ID names the delivery
        fetched = await adapter.fetch(
            delivery_id=delivery_id, vendor_id=sent.vendor_id, recipient=""
        )
        # SMTP cannot be asked about an earlier message: None; a sandbox knows it was sent.
        assert fetched is None or fetched.status is DeliveryStatus.SENT


# --- the state machine through the sandboxes, end to end --------------------------------------


async def test_text_is_delivered_through_signed_callbacks(live: Live, live_org: Org) -> None:
    recipient = "+14155550100"
    delivery_id = await accept(live, live_org, recipient)
    await settle(live)
    delivery, events = await state_of(live, live_org, delivery_id)
    assert delivery.state == "delivered" and delivery.vendor_id
    applied = [e.state for e in events if e.applied]
    assert applied == ["accepted", "queued", "sending", "sent", "delivered"]
    received = [
        m for m in await phone(live, live_org, recipient) if m["message-sid"] == delivery.vendor_id
    ]
    assert received and received[0]["body"] == "Your appointment is at 10"
    # Every change was published as an event the organization can read.
    listed = await live.client.get(
        "/v1/events/", params={"filter[resource-id]": str(delivery_id)}, headers=live_org.admin
    )
    if listed.status_code == 200:
        types = {e["attributes"]["type"] for e in listed.json()["data"]}
        assert "deliveries.delivered" in types


@pytest.mark.parametrize(
    ("recipient", "state", "code"),
    [
        ("+14155550101", "undelivered", "30003"),
        ("+14155550102", "failed", "21211"),
        ("+447700900101", "undelivered", "30003"),
        ("+14155550103", "delivered", None),  # 429 first, then accepted
    ],
)
async def test_reserved_recipients_choose_the_outcome(
    live: Live, live_org: Org, recipient: str, state: str, code: str | None
) -> None:
    delivery_id = await accept(live, live_org, recipient)
    await settle(live)
    delivery, events = await state_of(live, live_org, delivery_id)
    assert (delivery.state, delivery.error_code) == (state, code)
    if recipient.endswith("0103"):
        assert "20429" in [e.code for e in events]  # it went back to queued once
        assert delivery.attempts == 2


async def test_out_of_order_and_duplicate_callbacks(live: Live, live_org: Org) -> None:
    early = await accept(live, live_org, "+14155550105")  # delivered arrives before sent
    twice = await accept(live, live_org, "+14155550106")  # every callback sent twice
    await settle(live)
    delivery, events = await state_of(live, live_org, early)
    assert delivery.state == "delivered"
    assert [e.state for e in events if e.applied][-1] == "delivered"
    assert any(e.state == "sent" and not e.applied for e in events)  # kept, changed nothing
    delivery, events = await state_of(live, live_org, twice)
    assert delivery.state == "delivered"
    async with live.app.state.database.sessionmaker() as session:
        stored = (
            await session.execute(
                select(func.count()).where(ProviderInbound.vendor_id == delivery.vendor_id)
            )
        ).scalar_one()
    assert stored == 2  # sent and delivered, once each although each came twice
    assert [e.state for e in events if e.source == "callback"].count("delivered") == 1


async def test_terminal_state_absorbs_and_a_conflict_is_flagged(live: Live, live_org: Org) -> None:
    delivery_id = await accept(live, live_org, "+14155550100")
    org_id = uuid.UUID(live_org.id)
    async with live.app.state.database.sessionmaker() as session:
        assert await deliveries.transition(
            session,
            org_id,
            delivery_id,
            DeliveryStatus.UNDELIVERED,
            source="callback",
            code="30003",
        )
        assert not await deliveries.transition(
            session, org_id, delivery_id, DeliveryStatus.DELIVERED, source="callback"
        )
        assert not await deliveries.transition(
            session, org_id, delivery_id, DeliveryStatus.SENT, source="callback"
        )
        await commit(session)
    await settle(live)  # the send job finds it terminal and sends nothing
    delivery, events = await state_of(live, live_org, delivery_id)
    assert (delivery.state, delivery.error_code, delivery.conflict) == (
        "undelivered",
        "30003",
        True,
    )
    assert delivery.vendor_id is None
    late = [e for e in events if e.state == "delivered"]
    assert late and not late[0].applied and "conflicts with undelivered" in (late[0].message or "")


async def test_killed_worker_between_tx1_and_tx2_is_reconciled_not_resent(
    live: Live, live_org: Org
) -> None:
    recipient = "+14155550100"
    before = len(await phone(live, live_org, recipient))
    delivery_id = await accept(live, live_org, recipient)
    org_id = uuid.UUID(live_org.id)
    # What a worker killed after the provider took the text leaves behind: Tx1 committed
    # (sending, attempt id), the provider has it, Tx2 never ran.
    async with live.app.state.database.sessionmaker() as session:
        for state in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
            await deliveries.transition(
                session,
                org_id,
                delivery_id,
                state,
                source="send",
                values={"attempt_id": uuid.uuid4()} if state is DeliveryStatus.SENDING else None,
            )
        await commit(session)
    adapter = providers_for(live.settings).get(SMS)
    await adapter.send(
        SmsMessage(to=recipient, sender=SENDER, body="Your appointment is at 10"),
        delivery_id=delivery_id,
        callback_url=callback_url(live.settings, "sms", "status"),  # its ?d= was lost too
    )
    await asyncio.sleep(0)  # (the callbacks name no delivery and no bound vendor id yet)
    await settle(live)
    delivery, events = await state_of(live, live_org, delivery_id)
    assert delivery.state in ("sent", "delivered") and delivery.vendor_id
    assert any(e.source == "reconcile" for e in events)
    assert len(await phone(live, live_org, recipient)) == before + 1  # sent once, not twice


async def test_ambiguous_send_is_never_resent(live: Live, live_org: Org) -> None:
    recipient = "+14155550104"  # accepted, then the request times out
    delivery_id = await accept(live, live_org, recipient)
    await settle(live)
    delivery, events = await state_of(live, live_org, delivery_id)
    assert delivery.state == "delivered"  # the callbacks (with ?d=) settled it
    assert any((e.message or "").startswith("outcome unknown") for e in events)
    mine = [
        m for m in await phone(live, live_org, recipient) if m["message-sid"] == delivery.vendor_id
    ]
    assert len(mine) == 1 and delivery.attempts == 1


async def test_a_send_the_provider_never_received_is_sent_then(live: Live, live_org: Org) -> None:
    # A worker died after committing "sending" and before calling the provider. The sandbox
    # keeps a record of every send it takes, so reconciliation learns it never got this one
    # (NotSent) and sends it: the first send, not a second. (A provider that cannot tell,
    # e.g. Twilio without a message sid, leaves it to the grace period: "outcome-unknown".)
    delivery_id = await accept(live, live_org, "+14155550100")
    org_id = uuid.UUID(live_org.id)
    async with live.app.state.database.sessionmaker() as session:
        for state in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
            await deliveries.transition(session, org_id, delivery_id, state, source="send")
        await commit(session)
    await settle(live)
    delivery, _events = await state_of(live, live_org, delivery_id)
    assert delivery.state in ("sent", "delivered") and delivery.vendor_id


# --- the inbound path ----------------------------------------------------------------------


async def _post_status(
    live: Live, sid: str, status: str, *, delivery_id: uuid.UUID | None = None, sign: bool = True
) -> httpx.Response:
    url = callback_url(live.settings, "sms", "status", delivery_id=delivery_id)
    form = status_form(
        sid=sid, account="AC1", status=status, sender=SENDER, to="+1", error_code=None
    )
    body = urlencode(form).encode()
    key = sandbox_signing_key(live.settings) if sign else b"forged"
    return await live.client.post(
        url,
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            SANDBOX_SIGNATURE_HEADER: sandbox_signature(key, url, body),
        },
    )


async def test_forged_or_missing_signature_is_refused(live: Live) -> None:
    forged = await _post_status(live, "SM" + uuid.uuid4().hex, "delivered", sign=False)
    assert forged.status_code == 401
    assert forged.json()["errors"][0]["status"] == "401"
    unsigned = await live.client.post(
        "/providers/sms/status",
        content=b"MessageSid=SM1&MessageStatus=delivered",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert unsigned.status_code == 401
    assert (await live.client.post("/providers/nothing/status", content=b"")).status_code == 404


async def test_duplicates_and_unknown_ids_get_2xx_and_are_stored_once(live: Live) -> None:
    sid = "SM" + uuid.uuid4().hex
    for _ in range(3):
        assert (await _post_status(live, sid, "delivered")).status_code == 204
    async with live.app.state.database.sessionmaker() as session:
        rows = (
            (await session.execute(select(ProviderInbound).where(ProviderInbound.vendor_id == sid)))
            .scalars()
            .all()
        )
    assert len(rows) == 1 and rows[0].applied_at is None and rows[0].organization_id is None


async def test_orphan_callback_is_applied_when_the_vendor_id_is_bound(
    live: Live, live_org: Org
) -> None:
    delivery_id = await accept(live, live_org, "+14155550100")
    org_id = uuid.UUID(live_org.id)
    sid = "SM" + uuid.uuid4().hex
    async with live.app.state.database.sessionmaker() as session:
        for state in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
            await deliveries.transition(session, org_id, delivery_id, state, source="send")
        await commit(session)
    # The receipt comes before Tx2 bound the id, and without ?d=: kept as an orphan.
    assert (await _post_status(live, sid, "delivered")).status_code == 204
    async with live.app.state.database.sessionmaker() as session:
        delivery = await deliveries.load(session, org_id, delivery_id)
        assert delivery is not None and delivery.state == "sending"
        await deliveries.bind_vendor_id(session, delivery, sid)  # what Tx2 does
        await commit(session)
    delivery, _events = await state_of(live, live_org, delivery_id)
    assert delivery.state == "delivered" and delivery.vendor_id == sid


# --- email through the sandbox ----------------------------------------------------------------


async def test_email_is_kept_as_rfc5322_and_a_bounce_becomes_undelivered(
    live: Live, live_org: Org
) -> None:
    good = f"ok-{uuid.uuid4().hex[:6]}@example.test"
    bad = f"gone-{uuid.uuid4().hex[:6]}@example.test"
    armed = await live.client.post(
        "/sandbox/email/bounces", json={"address": bad, "status": "5.1.1"}, headers=live_org.admin
    )
    assert armed.status_code == 200, armed.text
    kept = await accept(live, live_org, good, kind=EMAIL, resource_type=EMAILS)
    bounced = await accept(live, live_org, bad, kind=EMAIL, resource_type=EMAILS)
    await settle(live)
    delivery, _ = await state_of(live, live_org, kept)
    assert delivery.state == "sent"  # SMTP reports nothing after acceptance
    delivery, _ = await state_of(live, live_org, bounced)
    assert (delivery.state, delivery.error_code) == ("undelivered", "5.1.1")
    box = await live.client.get(
        "/sandbox/email/messages", params={"address": good}, headers=live_org.admin
    )
    [message] = box.json()["data"]
    raw = await live.client.get(
        "/sandbox/email/raw", params={"message-id": message["message-id"]}, headers=live_org.admin
    )
    document = raw.json()["data"]["raw"]
    assert f"Message-ID: <{kept}@127.0.0.1>" in document and "See you at 10." in document


# --- the control surface ----------------------------------------------------------------------


async def test_control_surface_needs_admin(live: Live, live_org: Org) -> None:
    path = "/sandbox/sms/messages"
    assert (await live.client.get(path, params={"number": SENDER})).status_code == 401
    staff = await live.client.get(path, params={"number": SENDER}, headers=live_org.staff)
    assert staff.status_code == 403
    assert (
        await live.client.get(path, params={"number": SENDER}, headers=MASTER)
    ).status_code == 200
    bad = await live.client.get(path, params={"number": "12"}, headers=live_org.admin)
    assert bad.status_code == 400
    missing = await live.client.post("/sandbox/sms/replies", json={}, headers=live_org.admin)
    assert missing.status_code == 400


async def test_control_surface_is_absent_without_a_sandbox(
    database_url: str, data_dir: Path
) -> None:
    settings = make_settings(database_url, data_dir, sms_provider="twilio", email_provider="smtp")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as client:
        org = await create_org(client)
        response = await client.get(
            "/sandbox/sms/messages", params={"number": SENDER}, headers=org.admin
        )
    assert response.status_code == 404


async def test_reply_from_a_phone_reaches_the_inbound_webhook(live: Live, live_org: Org) -> None:
    provisioned = await live.client.post(
        "/sandbox/sms/numbers", json={"area-code": "212"}, headers=live_org.admin
    )
    assert provisioned.status_code == 200, provisioned.text
    number = provisioned.json()["data"]["number"]
    assert number.startswith("+1212")
    reply = await live.client.post(
        "/sandbox/sms/replies",
        json={"from": "+14155550100", "to": number, "body": "Yes, I'll be there"},
        headers=live_org.admin,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"]["webhook"] == "queued"  # posted in the background, as a carrier
    sid = reply.json()["data"]["message-sid"]
    await providers_for(live.settings).get(SMS).idle()
    async with live.app.state.database.sessionmaker() as session:
        row = (
            await session.execute(select(ProviderInbound).where(ProviderInbound.vendor_id == sid))
        ).scalar_one()
    assert row.event_type == "message" and row.raw["Body"] == "Yes, I'll be there"
    unknown = await live.client.post(
        "/sandbox/sms/replies",
        json={"from": "+14155550100", "to": "+14155550100", "body": "x"},
        headers=live_org.admin,
    )
    assert unknown.status_code == 404


async def test_fail_next_from_the_cli(live: Live, live_org: Org) -> None:
    env = {
        **os.environ,
        **PROCESS_POOL,
        "COURIER_DATABASE_URL": live.settings.resolved_database_url,
        "COURIER_DATA_DIR": str(live.settings.data_dir),
        "COURIER_PUBLIC_URL": live.url,
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "courier.cli",
            "sandbox",
            "sms",
            "fail-next",
            "--code",
            "21610",
            "--number",
            "+14155550100",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    delivery_id = await accept(live, live_org, "+14155550100")
    await settle(live)
    delivery, _ = await state_of(live, live_org, delivery_id)
    assert (delivery.state, delivery.error_code) == ("failed", "21610")
    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "courier.cli", "sandbox", "sms", "fail-next", "--code", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 1 and "code" in refused.stderr


async def test_an_app_s_shutdown_closes_its_providers(database_url: str, data_dir: Path) -> None:
    """The adapters an app built are closed when it stops: a sandbox callback in flight is
    let finish (within its grace), using the adapters being closed rather than new ones; then
    the sandboxes' database engine holds no connection, and nothing of them is left."""
    settings = make_settings(database_url, data_dir)
    application = create_app(settings, start_background=False)
    async with application.router.lifespan_context(application):
        providers = providers_for(settings)
        store = providers.get(SMS).store  # type: ignore[attr-defined]

        async def callback() -> None:
            await asyncio.sleep(0.3)
            await store.put("probe", "in-flight", {"finished": True})

        store.later(callback())
        pool = providers.sandbox_database().engine.pool
    assert pool.checkedin() == 0  # type: ignore[attr-defined]
    assert id(settings) not in providers_module._PROCESS  # no engine reopened by the callback
    fresh = providers_for(settings)
    assert fresh is not providers
    assert await fresh.get(SMS).store.take("probe", "in-flight") == {"finished": True}  # type: ignore[attr-defined]
    await close_providers(settings)


async def test_apps_sharing_settings_keep_the_providers_until_the_last_stops(
    database_url: str, data_dir: Path
) -> None:
    settings = make_settings(database_url, data_dir)
    first = create_app(settings, start_background=False)
    second = create_app(settings, start_background=False)
    async with first.router.lifespan_context(first):
        async with second.router.lifespan_context(second):
            providers = providers_for(settings)
            await providers.get(SMS).store.put("probe", "shared", {"n": 1})  # type: ignore[attr-defined]
        # The second app stopped; the first still uses the same, open, adapters.
        assert providers_for(settings) is providers
        assert await providers.get(SMS).store.take("probe", "shared") == {"n": 1}  # type: ignore[attr-defined]
        pool = providers.sandbox_database().engine.pool
        assert pool.checkedin() >= 1  # type: ignore[attr-defined]
    assert pool.checkedin() == 0  # type: ignore[attr-defined]
    assert id(settings) not in providers_module._PROCESS
