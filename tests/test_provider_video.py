"""The video kind's contract: rooms with a lifecycle and unique names, access tokens that
let exactly their holder into exactly their room, and participant events (connected,
disconnected, audio) reported to Courier, signed. The sandbox's participants act through
its control surface, over HTTP."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from courier.providers.common import Permanent, RawRequest, providers_for
from courier.providers.video import VIDEO, RoomStatus, VideoProvider
from tests import provider_kinds_support as support
from tests.provider_kinds_support import Receiver, World

receiver, world = support.receiver, support.world  # the module's fixtures
ADAPTERS = ["sandbox"]
HOOK = "/providers/video/status"


@pytest.fixture(params=ADAPTERS)
def video(request: pytest.FixtureRequest, world: World) -> VideoProvider:
    settings = world.settings.model_copy(update={"video_provider": request.param})
    adapter: VideoProvider = providers_for(settings).get(VIDEO)
    assert isinstance(adapter, VideoProvider)
    return adapter


def events(video: VideoProvider, receiver: Receiver, room_sid: str) -> list[tuple[str, str]]:
    """The (type, identity) of every verified event about the room, in order."""
    found = []
    for request in receiver.at(HOOK):
        raw = request.raw()
        assert video.verify(raw), "every callback carries a valid signature"
        for event in video.parse(raw):
            if event.vendor_id == room_sid:
                found.append((event.type, event.raw.get("ParticipantIdentity", "")))
    return found


async def test_a_visit_from_creation_to_the_end(video: VideoProvider, world: World) -> None:
    name = f"visit-{uuid.uuid4()}"
    room = await video.create_room(
        name, max_participants=2, status_callback_url=world.receiver.url(HOOK)
    )
    assert room.status is RoomStatus.CREATED and room.unique_name == name
    again = await video.create_room(name, status_callback_url=world.receiver.url(HOOK))
    assert again.vendor_id == room.vendor_id  # a unique name is one room

    doctor = await video.grant(room, "dr-lee", ttl=timedelta(minutes=30))
    patient = await video.grant(room, "patient-7", ttl=timedelta(minutes=30))
    assert doctor.expires_at > room.created_at  # type: ignore[operator]
    joined = await world.act("video", "join", token=doctor.token)
    assert joined["identity"] == "dr-lee" and joined["connected"] is True
    await world.act("video", "join", token=patient.token)
    fetched = await video.fetch_room(room.vendor_id)
    assert fetched is not None and fetched.status is RoomStatus.IN_PROGRESS

    # Full: a third person is refused, with the vendor's code.
    third = await video.grant(room, "cousin", ttl=timedelta(minutes=5))
    refused = await world.control("video", "join", token=third.token)
    assert refused.status_code == 400 and "full" in refused.text

    # Courier mutes the patient; the patient unmutes; the doctor leaves.
    await video.set_audio(room.vendor_id, "patient-7", muted=True)
    people = {p.identity: p for p in await video.participants(room.vendor_id)}
    assert people["patient-7"].audio_muted is True
    await world.act("video", "audio", room=name, identity="patient-7", muted=False)
    await world.act("video", "leave", room=name, identity="dr-lee")
    people = {p.identity: p for p in await video.participants(room.vendor_id)}
    assert people["dr-lee"].connected is False and people["patient-7"].audio_muted is False

    ended = await video.end_room(room.vendor_id)
    assert ended.status is RoomStatus.COMPLETED and ended.ended_at is not None
    assert all(not p.connected for p in await video.participants(room.vendor_id))
    late = await world.control("video", "join", token=patient.token)
    assert late.status_code == 400 and "ended" in late.text
    # A new room under the same name is a new room once the old one ended.
    assert (await video.create_room(name)).vendor_id != room.vendor_id

    assert events(video, world.receiver, room.vendor_id) == [
        ("room-created", ""),
        ("participant-connected", "dr-lee"),
        ("participant-connected", "patient-7"),
        ("participant-audio", "patient-7"),
        ("participant-audio", "patient-7"),
        ("participant-disconnected", "dr-lee"),
        ("participant-disconnected", "patient-7"),
        ("room-ended", ""),
    ]
    shown = await world.act("video", "room", "GET", room=room.vendor_id)
    assert shown["status"] == "completed" and len(shown["participants"]) == 2


async def test_tokens_are_verified(video: VideoProvider, world: World) -> None:
    room = await video.create_room(f"visit-{uuid.uuid4()}")
    grant = await video.grant(room, "patient-1", ttl=timedelta(minutes=5))
    forged = grant.token[:-4] + ("AAAA" if not grant.token.endswith("AAAA") else "BBBB")
    response = await world.control("video", "join", token=forged)
    assert response.status_code == 400 and "not valid" in response.text
    with pytest.raises(Permanent):
        await video.grant(room, "", ttl=timedelta(minutes=5))


async def test_forged_and_duplicate_events(video: VideoProvider, world: World) -> None:
    name = f"visit-{uuid.uuid4()}"
    room = await video.create_room(name, status_callback_url=world.receiver.url(HOOK))
    created = next(r for r in world.receiver.at(HOOK) if name in r.body.decode())
    raw = created.raw()
    forged = RawRequest(
        raw.method, raw.url, raw.headers, raw.body.replace(b"room-created", b"room-ended")
    )
    assert video.verify(raw) and not video.verify(forged)
    first, second = video.parse(raw), video.parse(raw)
    assert first[0].dedupe_key == second[0].dedupe_key and first[0].vendor_id == room.vendor_id


async def test_armed_failure(video: VideoProvider, world: World) -> None:
    name = f"visit-{uuid.uuid4()}"
    await world.act("video", "failures", error="not-sent", code="20429", target=name)
    with pytest.raises(Exception) as failed:
        await video.create_room(name)
    assert getattr(failed.value, "code", None) == "20429"
    assert (await video.create_room(name)).unique_name == name
