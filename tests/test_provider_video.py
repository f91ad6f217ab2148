"""The video kind's contract: rooms with a lifecycle and unique names, access tokens that
let exactly their holder into exactly their room, and participant events (connected,
disconnected, audio) reported to Courier, authenticated. Every engine passes it: the
sandbox (its participants act through its control surface, over HTTP), twilio (through the
twilio client against the local fake Twilio) and janus (a private Janus server with real
WebRTC peers on 127.0.0.1; skipped without the janus binary, aiortc or a C compiler).
tests/video_clients.py is each engine's outside world."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta

import pytest

from courier.config import Settings
from courier.providers.common import Permanent, Providers
from courier.providers.video import VIDEO, RoomStatus, VideoProvider
from tests import provider_kinds_support as support
from tests.janus_support import JanusServer, local_ice, start_janus
from tests.provider_kinds_support import Receiver, World
from tests.twilio_fake import start_fake_twilio
from tests.twilio_video_fake import FakeTwilioVideo
from tests.video_clients import (
    Clients,
    JanusClients,
    Refused,
    SandboxClients,
    TwilioClients,
)

receiver, world = support.receiver, support.world  # the module's fixtures
ADAPTERS = ["sandbox", "twilio", "janus"]


@pytest.fixture(scope="module")
def janus_server(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[JanusServer]:  # fmt: skip
    yield from start_janus(tmp_path_factory.mktemp("janus"), receiver.url(JanusClients.hook))


@pytest.fixture(params=ADAPTERS)
async def engine(
    request: pytest.FixtureRequest,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    own_providers: Callable[[Settings], Providers],
) -> AsyncIterator[tuple[VideoProvider, Clients]]:
    """The adapter named by the parameter, configured for its engine, and that engine's
    clients."""
    name = request.param
    update: dict[str, object] = {"video_provider": name}
    clients: Clients
    if name == "sandbox":
        clients = SandboxClients(world.receiver, world=world)
    elif name == "twilio":
        fakes = start_fake_twilio()
        fake = next(fakes)
        request.addfinalizer(lambda: next(fakes, None))
        rooms = FakeTwilioVideo.install(fake)
        fake.send_callbacks = False
        update.update(
            twilio_account_sid=fake.account_sid,
            twilio_auth_token=fake.auth_token,
            twilio_api_base_url=fake.url,
            twilio_api_key_sid=rooms.api_key_sid,
            twilio_api_key_secret=rooms.api_key_secret,
        )
        clients = TwilioClients(world.receiver, fake=fake, rooms=rooms)
    else:
        server: JanusServer = request.getfixturevalue("janus_server")
        local_ice(monkeypatch, server)
        update.update(
            janus_url=server.url,
            janus_admin_key=server.admin_key,
            janus_events_secret=server.events_secret,
        )
        clients = JanusClients(world.receiver, url=server.url)
    settings = world.settings.model_copy(update=update)
    adapter: VideoProvider = own_providers(settings).get(VIDEO)
    assert isinstance(adapter, VideoProvider) and adapter.name == name
    try:
        yield adapter, clients
    finally:
        await clients.close()


async def test_a_visit_from_creation_to_the_end(
    engine: tuple[VideoProvider, Clients], world: World
) -> None:
    video, clients = engine
    hook = world.receiver.url("/providers/video/status")
    name = f"visit-{uuid.uuid4()}"
    room = await video.create_room(name, max_participants=2, status_callback_url=hook)
    assert room.unique_name == name
    assert room.status is (
        RoomStatus.IN_PROGRESS if clients.rooms_start_in_progress else RoomStatus.CREATED
    )
    again = await video.create_room(name, status_callback_url=hook)
    assert again.vendor_id == room.vendor_id  # a unique name is one room

    doctor = await video.grant(room, "dr-lee", ttl=timedelta(minutes=30))
    patient = await video.grant(room, "patient-7", ttl=timedelta(minutes=30))
    assert doctor.expires_at > room.created_at  # type: ignore[operator]
    await clients.join(doctor)
    await clients.join(patient)
    fetched = await video.fetch_room(room.vendor_id)
    assert fetched is not None and fetched.status is RoomStatus.IN_PROGRESS
    people = {p.identity: p for p in await video.participants(room.vendor_id)}
    assert people["dr-lee"].connected and people["patient-7"].connected

    # Full: a third person is refused, with the vendor's reason.
    third = await video.grant(room, "cousin", ttl=timedelta(minutes=5))
    with pytest.raises(Refused, match="full"):
        await clients.join(third)

    # Courier mutes the patient, then unmutes them.
    await video.set_audio(room.vendor_id, "patient-7", muted=True)
    people = {p.identity: p for p in await video.participants(room.vendor_id)}
    assert people["patient-7"].audio_muted is True and people["dr-lee"].audio_muted is False
    await video.set_audio(room.vendor_id, "patient-7", muted=False)
    people = {p.identity: p for p in await video.participants(room.vendor_id)}
    assert people["patient-7"].audio_muted is False
    audio_events = 2 if clients.reports_moderation else 0
    if clients.clients_mute_themselves:  # the patient mutes their microphone, then unmutes
        await clients.mute_self(room, "patient-7", True)
        people = {p.identity: p for p in await video.participants(room.vendor_id)}
        assert people["patient-7"].audio_muted is True
        await clients.mute_self(room, "patient-7", False)
        audio_events += 2
    # The doctor leaves.
    await clients.leave(room, "dr-lee")
    people = {p.identity: p for p in await video.participants(room.vendor_id)}
    assert people["dr-lee"].connected is False and people["patient-7"].connected is True
    assert people["patient-7"].audio_muted is False

    ended = await video.end_room(room.vendor_id)
    assert ended.status is RoomStatus.COMPLETED and ended.ended_at is not None
    assert (await video.end_room(room.vendor_id)).status is RoomStatus.COMPLETED
    assert all(not p.connected for p in await video.participants(room.vendor_id))
    with pytest.raises(Refused, match="ended"):
        await clients.join(patient)
    # A new room under the same name is a new room once the old one ended.
    assert (await video.create_room(name)).vendor_id != room.vendor_id

    expected = [
        ("room-created", ""),
        ("participant-connected", "dr-lee"),
        ("participant-connected", "patient-7"),
        *[("participant-audio", "patient-7")] * audio_events,
        ("participant-disconnected", "dr-lee"),
        ("participant-disconnected", "patient-7"),
        ("room-ended", ""),
    ]
    seen = await clients.events(video, room.vendor_id, at_least=len(expected))
    assert [e for e in seen if e[1] != "cousin"] == expected
    if isinstance(clients, SandboxClients):
        shown = await world.act("video", "room", "GET", room=room.vendor_id)
        assert shown["status"] == "completed" and len(shown["participants"]) == 2


async def test_tokens_are_verified(engine: tuple[VideoProvider, Clients]) -> None:
    video, clients = engine
    room = await video.create_room(f"visit-{uuid.uuid4()}")
    grant = await video.grant(room, "patient-1", ttl=timedelta(minutes=5))
    forged = grant.token[:-4] + ("AAAA" if not grant.token.endswith("AAAA") else "BBBB")
    with pytest.raises(Refused, match="not valid"):
        await clients.join(type(grant)(**{**grant.__dict__, "token": forged}))
    with pytest.raises(Permanent):
        await video.grant(room, "", ttl=timedelta(minutes=5))
    await video.end_room(room.vendor_id)


async def test_forged_and_duplicate_events(
    engine: tuple[VideoProvider, Clients], world: World
) -> None:
    video, clients = engine
    name = f"visit-{uuid.uuid4()}"
    room = await video.create_room(
        name, status_callback_url=world.receiver.url("/providers/video/status")
    )
    assert await clients.events(video, room.vendor_id, at_least=1)
    created = next(r for r in world.receiver.at(clients.hook) if room.vendor_id in r.body.decode())
    raw = created.raw()
    assert video.verify(raw) and not video.verify(clients.forged(raw))
    first = [e for e in video.parse(raw) if e.vendor_id == room.vendor_id]
    second = [e for e in video.parse(raw) if e.vendor_id == room.vendor_id]
    assert first[0].dedupe_key == second[0].dedupe_key and first[0].type == "room-created"
    await video.end_room(room.vendor_id)


async def test_armed_failure(engine: tuple[VideoProvider, Clients]) -> None:
    video, clients = engine
    name = f"visit-{uuid.uuid4()}"
    if not await clients.fail_next(name):
        pytest.skip(f"{video.name}: a real engine cannot be made to fail on demand")
    with pytest.raises(Exception) as failed:
        await video.create_room(name)
    assert getattr(failed.value, "code", None) == "20429"
    assert (await video.create_room(name)).unique_name == name
