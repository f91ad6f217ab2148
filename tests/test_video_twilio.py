"""The twilio video adapter through the real twilio client against the local fake Twilio
(tests/twilio_fake.py with tests/twilio_video_fake.py): rooms, AccessToken + VideoGrant
verified with the API key secret, muting through subscribe rules, and signed room status
callbacks parsed into the sandbox's events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest

from courier.config import Settings
from courier.providers.common import Permanent, RawRequest, providers_for
from courier.providers.video import VIDEO, RoomStatus, VideoProvider
from courier.providers.video.twilio import TwilioVideo
from tests import provider_kinds_support as support
from tests.provider_kinds_support import Receiver
from tests.twilio_fake import FakeTwilio, start_fake_twilio
from tests.twilio_video_fake import FakeTwilioVideo

receiver = support.receiver  # the module's fixture
HOOK = "/providers/video/status"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    yield from start_fake_twilio()


@pytest.fixture
def rooms(fake: FakeTwilio) -> FakeTwilioVideo:
    return FakeTwilioVideo.install(fake)


@pytest.fixture
def video(fake: FakeTwilio, rooms: FakeTwilioVideo, tmp_path: Path) -> TwilioVideo:
    settings = Settings(
        data_dir=tmp_path,
        video_provider="twilio",
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=fake.auth_token,
        twilio_api_base_url=fake.url,
        twilio_api_key_sid=rooms.api_key_sid,
        twilio_api_key_secret=rooms.api_key_secret,
    )
    adapter = providers_for(settings).get(VIDEO)
    assert isinstance(adapter, TwilioVideo) and isinstance(adapter, VideoProvider)
    return adapter


def events(video: TwilioVideo, receiver: Receiver, room_sid: str) -> list[tuple[str, str]]:
    found = []
    for request in receiver.at(HOOK):
        raw = request.raw()
        assert video.verify(raw), "every callback carries a valid X-Twilio-Signature"
        for event in video.parse(raw):
            if event.vendor_id == room_sid:
                found.append((event.type, event.raw.get("ParticipantIdentity", "")))
    return found


async def test_a_visit_from_creation_to_the_end(
    video: TwilioVideo, rooms: FakeTwilioVideo, receiver: Receiver
) -> None:
    name = f"visit-{uuid.uuid4()}"
    room = await video.create_room(
        name, max_participants=2, record=True, status_callback_url=receiver.url(HOOK)
    )
    # Twilio's rooms are in progress from their creation.
    assert room.status is RoomStatus.IN_PROGRESS and room.unique_name == name
    assert room.max_participants == 2 and room.record and room.created_at is not None
    assert rooms.rooms[room.vendor_id]["status_callback"] == receiver.url(HOOK)
    again = await video.create_room(name, status_callback_url=receiver.url(HOOK))
    assert again.vendor_id == room.vendor_id  # 53113: the room in progress under that name

    doctor = await video.grant(room, "dr-lee", ttl=timedelta(minutes=30))
    patient = await video.grant(room, "patient-7", ttl=timedelta(minutes=30))
    claims = jwt.decode(doctor.token, rooms.api_key_secret, algorithms=["HS256"])
    assert claims["grants"] == {"identity": "dr-lee", "video": {"room": name}}
    assert claims["iss"] == rooms.api_key_sid and claims["sub"] == rooms.twilio.account_sid
    assert doctor.expires_at.timestamp() == pytest.approx(claims["exp"], abs=1)
    rooms.join(doctor.token)
    rooms.join(patient.token)
    third = await video.grant(room, "cousin", ttl=timedelta(minutes=5))
    with pytest.raises(ValueError, match="full"):
        rooms.join(third.token)

    # Courier mutes the patient: nobody else subscribes to their audio any more.
    await video.set_audio(room.vendor_id, "patient-7", muted=True)
    people = {p.identity: p for p in await video.participants(room.vendor_id)}
    assert people["patient-7"].audio_muted and not people["dr-lee"].audio_muted
    doctor_sid = people["dr-lee"].vendor_id
    assert {"type": "exclude", "publisher": people["patient-7"].vendor_id, "kind": "audio"} in (
        rooms.rules[doctor_sid]
    )
    await video.set_audio(room.vendor_id, "patient-7", muted=False)
    people = {p.identity: p for p in await video.participants(room.vendor_id)}
    assert not people["patient-7"].audio_muted
    # The patient mutes their own microphone, then unmutes it (track events).
    rooms.microphone(room.vendor_id, "patient-7", enabled=False)
    people = {p.identity: p for p in await video.participants(room.vendor_id)}
    assert people["patient-7"].audio_muted
    rooms.microphone(room.vendor_id, "patient-7", enabled=True)
    rooms.leave(room.vendor_id, "dr-lee")
    people = {p.identity: p for p in await video.participants(room.vendor_id)}
    assert people["dr-lee"].connected is False and people["dr-lee"].disconnected_at is not None
    with pytest.raises(Permanent) as gone:
        await video.set_audio(room.vendor_id, "dr-lee", muted=True)
    assert gone.value.code == "53204"

    ended = await video.end_room(room.vendor_id)
    assert ended.status is RoomStatus.COMPLETED and ended.ended_at is not None
    assert (await video.end_room(room.vendor_id)).status is RoomStatus.COMPLETED  # 53118
    assert all(not p.connected for p in await video.participants(room.vendor_id))
    with pytest.raises(ValueError, match="ended"):
        rooms.join(patient.token)
    assert (await video.create_room(name)).vendor_id != room.vendor_id
    fetched = await video.fetch_room(room.vendor_id)
    assert fetched is not None and fetched.status is RoomStatus.COMPLETED
    assert await video.fetch_room("RM" + "0" * 32) is None

    assert events(video, receiver, room.vendor_id) == [
        ("room-created", ""),
        ("participant-connected", "dr-lee"),
        ("participant-connected", "patient-7"),
        ("participant-audio", "patient-7"),
        ("participant-audio", "patient-7"),
        ("participant-disconnected", "dr-lee"),
        ("participant-disconnected", "patient-7"),
        ("room-ended", ""),
    ]
    await video.close()


async def test_tokens_signatures_and_errors(
    video: TwilioVideo, rooms: FakeTwilioVideo, fake: FakeTwilio, receiver: Receiver
) -> None:
    name = f"visit-{uuid.uuid4()}"
    room = await video.create_room(name, status_callback_url=receiver.url(HOOK))
    grant = await video.grant(room, "patient-1", ttl=timedelta(minutes=5))
    with pytest.raises(ValueError, match="not valid"):
        rooms.join(grant.token[:-4] + ("AAAA" if not grant.token.endswith("AAAA") else "BBBB"))
    with pytest.raises(Permanent):
        await video.grant(room, "", ttl=timedelta(minutes=5))

    created = next(r for r in receiver.at(HOOK) if name in r.body.decode())
    raw = created.raw()
    forged = RawRequest(
        raw.method,
        raw.url,
        raw.headers,
        raw.body.replace(b"room-created", b"room-ended"),
        form=tuple((k, "room-ended" if v == "room-created" else v) for k, v in raw.form),
    )
    assert video.verify(raw) and not video.verify(forged)
    first, second = video.parse(raw), video.parse(raw)
    assert first[0].dedupe_key == second[0].dedupe_key and first[0].vendor_id == room.vendor_id

    fake.fail_next.append((429, 20429))
    from courier.providers.common import NotSent

    with pytest.raises(NotSent):
        await video.create_room(f"visit-{uuid.uuid4()}")
    await video.close()
