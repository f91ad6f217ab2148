"""The twilio sms adapter through the real twilio client against a local fake Twilio API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from courier.config import Settings
from courier.providers.common import Ambiguous, DeliveryStatus, NotSent, Permanent, RawRequest
from courier.providers.sms.base import SmsMessage
from courier.providers.sms.twilio import TwilioSms
from tests.twilio_fake import INVALID_TO, OPTED_OUT_TO, FakeTwilio, start_fake_twilio


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    yield from start_fake_twilio()


def adapter(fake: FakeTwilio, tmp_path: Path) -> TwilioSms:
    settings = Settings(
        data_dir=tmp_path,
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=fake.auth_token,
        twilio_api_base_url=fake.url,
    )
    return TwilioSms(settings)


async def test_numbers_messages_and_lookup(fake: FakeTwilio, tmp_path: Path) -> None:
    fake.send_callbacks = False
    sms = adapter(fake, tmp_path)
    number = await sms.provision_number("415", inbound_url="http://127.0.0.1:9/in")
    assert number.number.startswith("+1415") and number.vendor_id is not None
    assert number.vendor_id.startswith("PN") and number.capabilities["sms"]
    assert (number.lata, number.rate_center, number.region) == ("722", "SNFC CNTRL", "CA")
    assert fake.numbers[number.vendor_id]["sms_url"] == "http://127.0.0.1:9/in"

    delivery = uuid.uuid4()
    sent = await sms.send(
        SmsMessage(to="+14155552671", sender=number.number, body="Your appointment is tomorrow"),
        delivery_id=delivery,
        callback_url=f"http://127.0.0.1:9/cb?d={delivery}",
    )
    assert sent.vendor_id in fake.messages and sent.vendor_status == "queued"
    assert fake.messages[sent.vendor_id]["status_callback"] == f"http://127.0.0.1:9/cb?d={delivery}"
    assert await sms.fetch(delivery_id=delivery, vendor_id=sent.vendor_id, recipient="x") is None
    fake.messages[sent.vendor_id]["status"] = "delivered"
    status = await sms.fetch(delivery_id=delivery, vendor_id=sent.vendor_id, recipient="x")
    assert status is not None and status.status is DeliveryStatus.DELIVERED
    assert await sms.fetch(delivery_id=delivery, vendor_id="SM" + "0" * 32, recipient="x") is None

    found = await sms.lookup("+14155552671")
    assert (found.line_type, found.carrier, found.country) == (
        "mobile",
        "T-Mobile USA, Inc.",
        "US",
    )
    landline = await sms.lookup("+14155550199")
    assert landline.line_type == "landline"

    owned = fake.add_owned_number("+12125550143")
    claimed = await sms.claim_number("+12125550143", inbound_url="http://127.0.0.1:9/in2")
    assert claimed.vendor_id == owned["sid"] and owned["sms_url"] == "http://127.0.0.1:9/in2"
    with pytest.raises(Permanent) as missing:
        await sms.claim_number("+12125550144", inbound_url="http://127.0.0.1:9/in2")
    assert missing.value.code == "21452"
    await sms.close()


async def test_errors_are_classified_on_twilio_codes(fake: FakeTwilio, tmp_path: Path) -> None:
    fake.send_callbacks = False
    sms = adapter(fake, tmp_path)
    number = await sms.provision_number("212", inbound_url="http://127.0.0.1:9/in")

    async def send(to: str) -> None:
        await sms.send(
            SmsMessage(to=to, sender=number.number, body="hi"),
            delivery_id=uuid.uuid4(),
            callback_url="http://127.0.0.1:9/cb",
        )

    with pytest.raises(Permanent) as invalid:
        await send(INVALID_TO)
    assert invalid.value.code == "21211"
    with pytest.raises(Permanent) as opted_out:
        await send(OPTED_OUT_TO)
    assert opted_out.value.code == "21610"
    fake.fail_next.append((429, 20429))
    with pytest.raises(NotSent):
        await send("+14155552671")
    fake.fail_next.append((500, 20500))
    with pytest.raises(Ambiguous):
        await send("+14155552671")
    wrong = TwilioSms(
        Settings(
            data_dir=tmp_path,
            twilio_account_sid=fake.account_sid,
            twilio_auth_token="not-the-token",
            twilio_api_base_url=fake.url,
        )
    )
    with pytest.raises(Permanent) as auth:
        await wrong.lookup("+14155552671")
    assert auth.value.code == "20003"
    # A subaccount's own credentials are used when the text account names them.
    with pytest.raises(Permanent):
        await sms.for_account(fake.account_sid, "wrong-token-123").lookup("+14155552671")
    await sms.close()
    await wrong.close()


def test_signature_is_twilios(fake: FakeTwilio, tmp_path: Path) -> None:
    from twilio.request_validator import RequestValidator

    sms = adapter(fake, tmp_path)
    url = "http://127.0.0.1:8000/v1/texts/abc/callback/?d=1"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    good = RequestValidator(fake.auth_token).compute_signature(url, params)
    body = b"MessageSid=SM1&MessageStatus=delivered"

    def raw(signature: str) -> RawRequest:
        return RawRequest(
            "POST", url, {"x-twilio-signature": signature}, body, tuple(params.items()), "status"
        )

    assert sms.verify(raw(good))
    assert not sms.verify(raw(good[:-2] + "AA"))
    events = sms.parse(raw(good))
    assert events[0].status is DeliveryStatus.DELIVERED and events[0].dedupe_key == "SM1:delivered"
