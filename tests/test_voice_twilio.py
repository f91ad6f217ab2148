"""The twilio voice adapter against a local fake of Twilio's REST API: a line pointed at the
IVR, calls placed, redirected, fetched and hung up, recordings fetched (metadata and .wav
media) and deleted, Twilio's error codes classified, browser agents' access tokens (an
``AccessToken`` with a ``VoiceGrant``, signed with the API key), and webhook signatures checked
with Twilio's own validator; then the IVR answering a webhook signed as Twilio signs it."""

from __future__ import annotations

import io
import uuid
import wave
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from courier.config import Settings
from courier.providers.common import Permanent, RawRequest, providers_for
from courier.providers.voice import VOICE, OutboundCall
from courier.providers.voice.twilio import TwilioVoice
from tests.conftest import make_settings
from tests.twilio_fake import FakeTwilio, start_fake_twilio

LINE = "+14155550160"
API_KEY_SECRET = "s" * 32


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    yield from start_fake_twilio()


def twilio_settings(database_url: str, data_dir: Path, fake: FakeTwilio) -> Settings:
    return make_settings(
        database_url,
        data_dir,
        voice_provider="twilio",
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=fake.auth_token,
        twilio_api_base_url=fake.url,
        twilio_api_key_sid="SK" + "1" * 32,
        twilio_api_key_secret=API_KEY_SECRET,
        twilio_twiml_app_sid="AP" + "2" * 32,
        public_url="http://127.0.0.1:8000",
    )


@pytest.fixture
def voice(database_url: str, data_dir: Path, fake: FakeTwilio) -> TwilioVoice:
    adapter = providers_for(twilio_settings(database_url, data_dir, fake)).get(VOICE)
    assert isinstance(adapter, TwilioVoice)
    return adapter


def _wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(8000 * seconds))
    return buffer.getvalue()


async def test_a_line_is_pointed_at_the_ivr(voice: TwilioVoice, fake: FakeTwilio) -> None:
    number = fake.add_owned_number(LINE)
    await voice.configure_line(
        LINE, voice_url="http://127.0.0.1:8000/v1/voice-ivrs/x/twiml/",
        status_callback_url="http://127.0.0.1:8000/providers/voice/line",
    )  # fmt: skip
    assert number["voice_url"] == "http://127.0.0.1:8000/v1/voice-ivrs/x/twiml/"
    assert number["voice_method"] == "POST"
    assert number["status_callback"] == "http://127.0.0.1:8000/providers/voice/line"
    with pytest.raises(Permanent) as unknown:
        await voice.configure_line("+14155550199", voice_url="http://127.0.0.1:8000/x")
    assert unknown.value.code == "21452"


async def test_calls_are_placed_redirected_fetched_and_ended(
    voice: TwilioVoice, fake: FakeTwilio
) -> None:
    placed = await voice.place_call(
        OutboundCall(
            to="+14155552671",
            from_=LINE,
            url="http://127.0.0.1:8000/twiml",
            status_callback_url="http://127.0.0.1:8000/providers/voice/status?d=1",
        ),
        delivery_id=uuid.uuid4(),
    )
    sid = placed.vendor_id
    assert sid.startswith("CA") and placed.vendor_status == "queued"
    assert fake.calls[sid]["status_callback"].endswith("?d=1")
    fetched = await voice.fetch(sid)
    assert fetched is not None and fetched.vendor_status == "queued"
    await voice.redirect(sid, "http://127.0.0.1:8000/v1/voice-ivrs/x/twiml/?step=connect")
    assert fake.calls[sid]["redirects"] == [
        "http://127.0.0.1:8000/v1/voice-ivrs/x/twiml/?step=connect"
    ]
    await voice.hang_up(sid)
    ended = await voice.fetch(sid)
    assert ended is not None and ended.vendor_status == "completed"
    await voice.hang_up(sid)  # already over: nothing happens
    with pytest.raises(Permanent) as not_live:
        await voice.redirect(sid, "http://127.0.0.1:8000/x")
    assert not_live.value.code == "21220"
    assert await voice.fetch("CA" + "0" * 32) is None
    fake.fail_next.append((400, 21211))
    with pytest.raises(Permanent) as invalid:
        await voice.place_call(
            OutboundCall(to="+1415", from_=LINE, url="http://127.0.0.1:8000/t",
                         status_callback_url="http://127.0.0.1:8000/s"),
            delivery_id=uuid.uuid4(),
        )  # fmt: skip
    assert invalid.value.code == "21211"


async def test_recordings_are_fetched_and_deleted(voice: TwilioVoice, fake: FakeTwilio) -> None:
    sid = fake.add_recording("CA" + "1" * 32, _wav(2.5), 3)
    recording = await voice.recording(sid)
    assert recording.content_type == "audio/wav" and recording.duration_seconds == 3
    with wave.open(io.BytesIO(recording.audio)) as audio:
        assert audio.getnframes() == 20000
    await voice.delete_recording(sid)
    await voice.delete_recording(sid)  # gone already: nothing happens
    with pytest.raises(Permanent) as gone:
        await voice.recording(sid)
    assert gone.value.code == "20404"


def test_access_tokens_carry_a_voice_grant_signed_with_the_api_key(voice: TwilioVoice) -> None:
    grant = voice.access_token("agent-7", ttl=timedelta(minutes=10), room="line-1")
    claims = jwt.decode(grant.token, API_KEY_SECRET, algorithms=["HS256"])
    assert claims["iss"] == "SK" + "1" * 32 and claims["sub"] == voice.rest.account_sid
    assert claims["grants"]["identity"] == "agent-7" == grant.identity
    assert claims["grants"]["voice"]["incoming"] == {"allow": True}
    assert claims["grants"]["voice"]["outgoing"]["application_sid"] == "AP" + "2" * 32
    assert abs(claims["exp"] - grant.expires_at.timestamp()) <= 2
    for identity, ttl in (("", timedelta(minutes=1)), ("x" * 122, timedelta(minutes=1)),
                          ("agent", timedelta(days=2))):  # fmt: skip
        with pytest.raises(Permanent):
            voice.access_token(identity, ttl=ttl)


def test_access_tokens_need_an_api_key(database_url: str, data_dir: Path) -> None:
    settings = make_settings(
        database_url, data_dir, voice_provider="twilio", twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="t" * 32,
    )  # fmt: skip
    with pytest.raises(Permanent) as missing:
        TwilioVoice(settings).access_token("agent", ttl=timedelta(minutes=1))
    assert "COURIER_TWILIO_API_KEY_SID" in missing.value.message


def _signed(fake: FakeTwilio, url: str, form: dict[str, str]) -> RawRequest:
    signature = RequestValidator(fake.auth_token).compute_signature(url, form)
    return RawRequest(
        method="POST",
        url=url,
        headers={"x-twilio-signature": signature},
        body=b"",
        form=tuple(form.items()),
        hook="twiml",
    )


def test_webhooks_are_verified_with_twilios_validator(voice: TwilioVoice, fake: FakeTwilio) -> None:
    url = "http://127.0.0.1:8000/providers/voice/line"
    form = {"CallSid": "CA" + "3" * 32, "CallStatus": "completed", "From": "+14155550150"}
    request = _signed(fake, url, form)
    assert voice.verify(request)
    [event] = voice.parse(request)
    assert event.type == "status" and event.vendor_status == "completed"
    forged = RawRequest("POST", url, request.headers, b"", tuple({**form, "From": "+1"}.items()))
    assert not voice.verify(forged)


async def test_the_ivr_answers_a_webhook_twilio_signed(
    database_url: str, data_dir: Path, fake: FakeTwilio
) -> None:
    """The app configured for Twilio: the IVR verifies with the account's auth token."""
    from courier.app import create_app
    from tests.conftest import create_org, doc
    from tests.voice_support import call_form

    settings = twilio_settings(database_url, data_dir, fake)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            org = await create_org(http)
            line = await _line_row(app, org.id)
            url = f"http://127.0.0.1:8000/v1/voice-ivrs/{line}/twiml/"
            form = call_form("CA" + "4" * 32)
            signature = RequestValidator(fake.auth_token).compute_signature(url, form)
            answered = await http.post(
                f"/v1/voice-ivrs/{line}/twiml/", data=form,
                headers={"X-Twilio-Signature": signature},
            )  # fmt: skip
            assert answered.status_code == 200 and "<Gather" in answered.text
            forged = await http.post(
                f"/v1/voice-ivrs/{line}/twiml/", data=form,
                headers={"X-Twilio-Signature": signature[:-2] + "xx"},
            )  # fmt: skip
            assert forged.status_code == 401
            assert doc  # (imported with the helpers)


async def _line_row(app: Any, org_id: str) -> str:
    """A voice setting row (the Twilio account's numbers are not provisioned here)."""
    from courier.core.time import now_ms
    from courier.models.text_account import TextAccount
    from courier.models.voice import VoiceSetting

    async with app.state.database.sessionmaker() as session:
        account = TextAccount(
            id=uuid.uuid4(), organization_id=uuid.UUID(org_id), provider="twilio",
            callback_secret="x" * 32,
        )  # fmt: skip
        session.add(account)
        await session.flush()
        setting = VoiceSetting(
            id=uuid.uuid4(), organization_id=uuid.UUID(org_id), account_id=account.id,
            phone_number=f"+1415555{uuid.uuid4().int % 10000:04d}", recording_enabled=False,
            line_state="configured", created_at=now_ms(), last_modified_at=now_ms(),
        )  # fmt: skip
        session.add(setting)
        await session.commit()
    return str(setting.id)
