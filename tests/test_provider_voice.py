"""The voice kind's contract: calls walked through Twilio's call webhooks, signed as Twilio
signs them. A caller dials a line, hears the menu, presses 2, leaves a spoken message that is
recorded and transcribed for real; outbound calls ring, are answered or end busy; time-outs
fall through the TwiML as Twilio's do."""

from __future__ import annotations

import io
import uuid
import wave
from collections.abc import Callable
from typing import Any

import pytest
from twilio.twiml.voice_response import Gather, VoiceResponse  # type: ignore[import-untyped]

from courier.config import Settings
from courier.providers.common import DeliveryStatus, Permanent, Providers
from courier.providers.twilio_signature import verify_twilio
from courier.providers.voice import VOICE, OutboundCall, VoiceProvider
from tests import provider_kinds_support as support
from tests.provider_kinds_support import Received, World

receiver, world = support.receiver, support.world  # the module's fixtures
ADAPTERS = ["sandbox"]
CALLER = "+14155550150"


@pytest.fixture(params=ADAPTERS)
def voice(
    request: pytest.FixtureRequest, world: World, own_providers: Callable[[Settings], Providers]
) -> VoiceProvider:
    settings = world.settings.model_copy(update={"voice_provider": request.param})
    adapter: VoiceProvider = own_providers(settings).get(VOICE)
    assert isinstance(adapter, VoiceProvider)
    return adapter


def script(world: World, prefix: str) -> dict[str, str]:
    """An IVR under ``prefix``: a menu (digits or speech), a voicemail that is transcribed."""
    url = world.receiver.url
    menu = VoiceResponse()
    gather = Gather(input="dtmf speech", action=url(f"{prefix}/menu"), timeout=5, num_digits=1)
    gather.say("Press 2 to leave a message for your nurse")
    menu.append(gather)
    menu.say("We did not hear you. Goodbye")
    voicemail = VoiceResponse()
    voicemail.say("Leave your message after the tone")
    voicemail.record(
        action=url(f"{prefix}/recorded"),
        transcribe=True,
        transcribe_callback=url(f"{prefix}/transcribed"),
        recording_status_callback=url(f"{prefix}/status"),
        timeout=10,
    )
    done = VoiceResponse()
    done.say("Thank you")
    done.hangup()
    world.receiver.answers.update(
        {
            f"{prefix}/ivr": str(menu),
            f"{prefix}/menu": str(voicemail),
            f"{prefix}/recorded": str(done),
        }
    )
    return {name: url(f"{prefix}/{name}") for name in ("ivr", "status")}


def signed(voice: VoiceProvider, requests: list[Received]) -> list[dict[str, str]]:
    for request in requests:
        assert voice.verify(request.raw()), request.path
    return [r.form for r in requests]


async def test_a_caller_leaves_a_message_that_is_transcribed(
    voice: VoiceProvider, world: World
) -> None:
    prefix = f"/voice/{uuid.uuid4().hex}"
    urls = script(world, prefix)
    line = "+14155550160"
    await voice.configure_line(line, voice_url=urls["ivr"], status_callback_url=urls["status"])

    call = await world.act("voice", "call", **{"from": CALLER, "to": line})
    sid = call["call-sid"]
    assert call["said"] == ["Press 2 to leave a message for your nurse"]
    assert call["waiting-for"] == "digits or speech" and call["status"] == "in-progress"

    call = await world.act("voice", "press", call=sid, digits="2")
    assert call["said"][-1] == "Leave your message after the tone"
    assert call["waiting-for"] == "recording"
    await world.act("voice", "say", call=sid, text="please call the clinic tomorrow morning")
    await world.act("voice", "wait", call=sid, seconds=1)
    call = await world.act("voice", "hang-up", call=sid)
    assert call["status"] == "completed" and len(call["recordings"]) == 1

    ivr = signed(voice, world.receiver.at(f"{prefix}/ivr"))
    assert ivr[0]["CallSid"] == sid and ivr[0]["From"] == CALLER and ivr[0]["To"] == line
    assert ivr[0]["Direction"] == "inbound"
    assert signed(voice, world.receiver.at(f"{prefix}/menu"))[0]["Digits"] == "2"
    recorded = signed(voice, world.receiver.at(f"{prefix}/recorded"))[0]
    assert recorded["RecordingSid"] == call["recordings"][0]
    transcribed = signed(voice, world.receiver.at(f"{prefix}/transcribed"))[0]
    assert transcribed["TranscriptionStatus"] == "completed"
    assert {"tomorrow", "morning"} <= set(transcribed["TranscriptionText"].split())

    statuses = world.receiver.at(f"{prefix}/status")
    events = [e for r in statuses for e in voice.parse(r.raw())]
    kinds = [(e.type, e.vendor_status) for e in events]
    assert ("recording", "completed") in kinds and kinds[-1] == ("status", "completed")
    assert events[-1].status is DeliveryStatus.DELIVERED and events[-1].vendor_id == sid
    assert int(statuses[-1].form["CallDuration"]) >= 2

    recording = await voice.recording(call["recordings"][0])
    with wave.open(io.BytesIO(recording.audio)) as audio:
        assert audio.getnframes() / audio.getframerate() > 2.0
    shown = await world.act("voice", "recording", "GET", sid=recording.vendor_id)
    assert "morning" in shown["transcription"]
    await voice.delete_recording(recording.vendor_id)
    with pytest.raises(Permanent):
        await voice.recording(recording.vendor_id)


async def test_signatures_are_twilios(voice: VoiceProvider, world: World) -> None:
    prefix = f"/voice/{uuid.uuid4().hex}"
    urls = script(world, prefix)
    line = "+14155550161"
    await voice.configure_line(line, voice_url=urls["ivr"], status_callback_url=urls["status"])
    await world.act("voice", "call", **{"from": CALLER, "to": line})
    request = world.receiver.at(f"{prefix}/ivr")[0].raw()
    assert request.header("x-twilio-signature")
    assert voice.verify(request)
    assert not verify_twilio("another-accounts-token-0000000000", request)
    form = [(k, v) for k, v in request.form if k != "From"] + [("From", "+14155550199")]
    forged = type(request)(request.method, request.url, request.headers, request.body, form)
    assert not voice.verify(forged)


async def test_a_gather_times_out_into_the_next_verb(voice: VoiceProvider, world: World) -> None:
    prefix = f"/voice/{uuid.uuid4().hex}"
    urls = script(world, prefix)
    line = "+14155550162"
    await voice.configure_line(line, voice_url=urls["ivr"], status_callback_url=urls["status"])
    call = await world.act("voice", "call", **{"from": CALLER, "to": line})
    call = await world.act("voice", "wait", call=call["call-sid"], seconds=6)
    assert call["said"][-1] == "We did not hear you. Goodbye" and call["status"] == "completed"
    refused = await world.control("voice", "press", call=call["call-sid"], digits="2")
    assert refused.status_code == 400 and "completed" in refused.text


async def outbound(voice: VoiceProvider, world: World, to: str) -> tuple[str, dict[str, str]]:
    prefix = f"/voice/{uuid.uuid4().hex}"
    urls = script(world, prefix)
    delivery = uuid.uuid4()
    placed = await voice.place_call(
        OutboundCall(
            to=to,
            from_="+14155550160",
            url=urls["ivr"],
            status_callback_url=f"{urls['status']}?d={delivery}",
        ),
        delivery_id=delivery,
    )
    await voice.idle()  # type: ignore[attr-defined]
    return placed.vendor_id, {"prefix": prefix, "delivery": str(delivery)}


async def test_an_outbound_call_is_answered(voice: VoiceProvider, world: World) -> None:
    sid, placed = await outbound(voice, world, "+14155552671")
    status = await voice.fetch(sid)
    assert status is not None and status.vendor_status == "ringing"
    call = await world.act("voice", "answer", call=sid)
    assert call["direction"] == "outbound-api" and call["waiting-for"] == "digits or speech"
    ivr = signed(voice, world.receiver.at(f"{placed['prefix']}/ivr"))
    assert ivr[0]["CallStatus"] == "in-progress"
    await world.act("voice", "hang-up", call=sid)
    events = [
        e for r in world.receiver.at(f"{placed['prefix']}/status") for e in voice.parse(r.raw())
    ]
    assert [e.vendor_status for e in events] == ["ringing", "in-progress", "completed"]
    assert {str(e.delivery_id) for e in events} == {placed["delivery"]}
    assert len({e.dedupe_key for e in events}) == 3


@pytest.mark.parametrize(
    ("number", "fate", "status"),
    [
        ("+14155550102", "busy", DeliveryStatus.UNDELIVERED),
        ("+14155550103", "no-answer", DeliveryStatus.UNDELIVERED),
        ("+14155550104", "failed", DeliveryStatus.FAILED),
    ],
)
async def test_reserved_numbers_choose_the_fate(
    voice: VoiceProvider, world: World, number: str, fate: str, status: Any
) -> None:
    sid, placed = await outbound(voice, world, number)
    events = [
        e for r in world.receiver.at(f"{placed['prefix']}/status") for e in voice.parse(r.raw())
    ]
    assert events[-1].vendor_status == fate and events[-1].status is status
    assert world.receiver.at(f"{placed['prefix']}/ivr") == []  # never answered
    fetched = await voice.fetch(sid)
    assert fetched is not None and fetched.status is status


async def test_bad_numbers_and_armed_failures(voice: VoiceProvider, world: World) -> None:
    with pytest.raises(Permanent) as invalid:
        await outbound(voice, world, "+1415")
    assert invalid.value.code == "21211"
    await world.act("voice", "failures", error="ambiguous", target="+14155552672")
    with pytest.raises(Exception) as ambiguous:
        await outbound(voice, world, "+14155552672")
    assert type(ambiguous.value).__name__ == "Ambiguous"
    unknown = await world.control("voice", "call", **{"from": CALLER, "to": "+14155550177"})
    assert unknown.status_code == 400 and "not a line" in unknown.text


async def test_client_access_tokens(voice: VoiceProvider) -> None:
    """A browser agent's token names its identity and lives as long as asked; bad identities
    and lifetimes are refused before anything is minted."""
    from datetime import timedelta

    import jwt

    from courier.core.time import utcnow

    grant = voice.access_token("agent-7", ttl=timedelta(minutes=10), room="queue-1")
    claims = jwt.decode(grant.token, options={"verify_signature": False})
    assert claims["grants"]["identity"] == "agent-7" == grant.identity
    assert "voice" in claims["grants"]
    assert abs(claims["exp"] - (utcnow() + timedelta(minutes=10)).timestamp()) < 5
    assert grant.room == "queue-1"
    if voice.name == "sandbox":
        from courier.providers.voice.sandbox import SandboxVoice

        assert isinstance(voice, SandboxVoice)
        assert voice.check_token(grant.token)["grants"]["identity"] == "agent-7"
        with pytest.raises(Permanent):
            voice.check_token(grant.token[:-2] + ("A" if grant.token[-2] != "A" else "B") + "x")
    for identity, ttl in (("", timedelta(minutes=1)), ("x" * 122, timedelta(minutes=1)),
                          ("agent", timedelta(0)), ("agent", timedelta(days=2))):  # fmt: skip
        with pytest.raises(Permanent):
            voice.access_token(identity, ttl=ttl)
