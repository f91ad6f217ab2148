"""The janus video adapter against a real, private Janus WebRTC server (tests/janus_support.py),
with real WebRTC peers (aiortc) joining its rooms with the credentials the adapter granted,
their media on 127.0.0.1. Janus' event handler posts the plugin's events to a local receiver
standing in for Courier's /providers/video/janus. Skips, saying why, without the janus
binary; the media tests also without aiortc or a C compiler (for Janus' loopback shim)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from courier.app import create_app
from courier.config import Settings
from courier.core.time import parse_timestamp, utcnow
from courier.models.delivery import ProviderInbound
from courier.providers.common import NotSent, Permanent, RawRequest, providers_for
from courier.providers.video import VIDEO, RoomStatus, VideoProvider
from courier.providers.video.base import Grant
from courier.providers.video.janus import JanusVideo
from tests import provider_kinds_support as support
from tests.conftest import make_settings
from tests.janus_support import JanusServer, Peer, local_ice, start_janus
from tests.provider_kinds_support import Receiver
from tests.sms_support import Courier, doc, free_port, new_org

receiver = support.receiver  # the module's fixture
HOOK = "/providers/video/janus"


@pytest.fixture(scope="module")
def janus(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusServer]:
    yield from start_janus(tmp_path_factory.mktemp("janus"), receiver.url(HOOK))


@pytest.fixture
def video(janus: JanusServer, tmp_path: Path) -> JanusVideo:
    settings = Settings(
        data_dir=tmp_path,
        video_provider="janus",
        janus_url=janus.url,
        janus_admin_key=janus.admin_key,
        janus_events_secret=janus.events_secret,
        janus_room_key="test-room-key",
        janus_client_url="https://127.0.0.1:8089/janus",
    )
    adapter = providers_for(settings).get(VIDEO)
    assert isinstance(adapter, JanusVideo) and isinstance(adapter, VideoProvider)
    return adapter


async def events_about(
    video: JanusVideo, receiver: Receiver, room_id: str, until: int
) -> list[tuple[str, str]]:
    """The (type, identity) of every verified event about the room, in Janus' order; waits
    (Janus' event handler posts asynchronously) until ``until`` of them have arrived."""
    for _ in range(100):
        found = []
        for request in receiver.at(HOOK):
            raw = request.raw()
            assert video.verify(raw), "Janus' event handler sends the events secret"
            for event in video.parse(raw):
                if event.vendor_id == room_id:
                    found.append(
                        (event.occurred_at, event.type, event.raw.get("ParticipantIdentity", ""))
                    )
        if len(found) >= until:
            return [(kind, who) for _, kind, who in sorted(found, key=lambda e: e[0] or utcnow())]
        await asyncio.sleep(0.1)
    return [(kind, who) for _, kind, who in found]


async def test_two_webrtc_peers_in_a_visit(
    video: JanusVideo, receiver: Receiver, janus: JanusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_ice(monkeypatch, janus)
    name = f"visit-{uuid.uuid4()}"
    room = await video.create_room(name, max_participants=2)
    assert room.status is RoomStatus.CREATED and room.unique_name == name
    assert room.created_at is not None and room.max_participants == 2
    assert (await video.create_room(name)).vendor_id == room.vendor_id  # one room per name

    doctor = Peer(janus.url, await video.grant(room, "dr-lee", ttl=timedelta(minutes=30)))
    patient = Peer(janus.url, await video.grant(room, "patient-7", ttl=timedelta(minutes=30)))
    assert doctor.grant.extra["room"] == room.vendor_id and doctor.grant.extra["pin"]
    assert doctor.grant.extra["server"] == "https://127.0.0.1:8089/janus"
    try:
        for peer in (doctor, patient):
            joined = await peer.join()
            assert joined["videoroom"] == "joined", joined
            published = await peer.publish_audio()
            assert published.get("configured") == "ok", published

        people = {p.identity: p for p in await video.participants(room.vendor_id)}
        assert set(people) == {"dr-lee", "patient-7"}
        assert all(p.connected and not p.audio_muted for p in people.values())
        fetched = await video.fetch_room(room.vendor_id)
        assert fetched is not None and fetched.status is RoomStatus.IN_PROGRESS

        # Full: a third person may enter, but Janus refuses a third microphone.
        cousin = Peer(janus.url, await video.grant(room, "cousin", ttl=timedelta(minutes=5)))
        await cousin.join()
        refused = await cousin.publish_audio()
        assert refused.get("error_code") == 432, refused  # maximum number of publishers
        await cousin.leave()

        # Courier mutes the patient (Janus' moderate), then unmutes.
        await video.set_audio(room.vendor_id, "patient-7", muted=True)
        people = {p.identity: p for p in await video.participants(room.vendor_id)}
        assert people["patient-7"].audio_muted and not people["dr-lee"].audio_muted
        await video.set_audio(room.vendor_id, "patient-7", muted=False)

        await doctor.leave()
        people = {p.identity: p for p in await video.participants(room.vendor_id)}
        assert people["dr-lee"].connected is False and people["patient-7"].connected is True
        assert people["patient-7"].audio_muted is False
    finally:
        for peer in (doctor, patient):
            if peer.session is not None:
                await peer.leave()

    ended = await video.end_room(room.vendor_id)
    assert ended.status is RoomStatus.COMPLETED and ended.ended_at is not None
    assert await video.fetch_room(room.vendor_id) is None
    assert (await video.end_room(room.vendor_id)).status is RoomStatus.COMPLETED
    assert (await video.create_room(name)).vendor_id != room.vendor_id

    seen = await events_about(video, receiver, room.vendor_id, until=8)
    assert [e for e in seen if e[1] != "cousin"] == [
        ("room-created", ""),
        ("participant-connected", "dr-lee"),
        ("participant-connected", "patient-7"),
        ("participant-audio", "patient-7"),
        ("participant-audio", "patient-7"),
        ("participant-disconnected", "dr-lee"),
        ("participant-disconnected", "patient-7"),
        ("room-ended", ""),
    ]


async def test_tokens_pins_and_forged_events(
    video: JanusVideo, receiver: Receiver, janus: JanusServer
) -> None:
    room = await video.create_room(f"visit-{uuid.uuid4()}")
    grant = await video.grant(room, "patient-1", ttl=timedelta(minutes=5))
    forged = Peer(janus.url, replace(grant, token=grant.token[:-4] + "0000"))
    try:
        refused = await forged.join()
        assert refused.get("error_code") == 433, refused  # unauthorized: not an allowed token
    finally:
        await forged.leave()
    with pytest.raises(Permanent):
        await video.grant(room, "", ttl=timedelta(minutes=5))

    created = await events_about(video, receiver, room.vendor_id, until=1)
    assert created == [("room-created", "")]
    request = next(r for r in receiver.at(HOOK) if room.vendor_id in r.body.decode())
    raw = request.raw()
    assert video.verify(raw)
    wrong = base64.b64encode(b"janus:guess").decode()
    forged_raw = RawRequest(
        raw.method, raw.url, {**raw.headers, "authorization": f"Basic {wrong}"}, raw.body
    )
    assert not video.verify(forged_raw)
    assert not video.verify(RawRequest(raw.method, raw.url, {}, raw.body))
    first = [e for e in video.parse(raw) if e.vendor_id == room.vendor_id]
    again = [e for e in video.parse(raw) if e.vendor_id == room.vendor_id]
    assert first[0].dedupe_key == again[0].dedupe_key
    await video.end_room(room.vendor_id)


async def test_janus_unreachable_is_not_sent(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, janus_url="http://127.0.0.1:9/janus")
    with pytest.raises(NotSent):
        await JanusVideo(settings).create_room("visit-x")


def test_a_join_with_somebody_elses_token_is_not_their_connection(tmp_path: Path) -> None:
    """Janus does not bind a token to a participant id: a participant who joins under
    another's id with their own token is not reported as the other connecting."""
    video = JanusVideo(Settings(data_dir=tmp_path, janus_room_key="k", janus_events_secret="s"))
    room = "courier-1-abc"

    def joined(identity: str, token_of: str) -> RawRequest:
        event = {
            "emitter": "test",
            "type": 64,
            "timestamp": 1_700_000_000_000_000,
            "event": {
                "plugin": "janus.plugin.videoroom",
                "data": {
                    "event": "joined",
                    "room": room,
                    "id": video.participant_id(room, identity),
                    "token": video.token(room, token_of),
                },
            },
        }
        return RawRequest(
            "POST", "http://127.0.0.1/providers/video/janus", {}, orjson.dumps([event])
        )

    (honest,) = video.parse(joined("patient-7", "patient-7"))
    assert honest.type == "participant-connected"
    assert honest.raw["ParticipantIdentity"] == "patient-7" and honest.vendor_id == room
    assert video.parse(joined("patient-7", "dr-lee")) == []
    forged_id = RawRequest(
        "POST",
        "http://127.0.0.1/providers/video/janus",
        {},
        joined("patient-7", "patient-7").body.replace(b"patient-7.", b"patient-8."),
    )
    assert video.parse(forged_id) == []
    assert video.parse(RawRequest("POST", "http://x", {}, b"not json")) == []


async def test_janus_events_reach_courier(
    janus: JanusServer, receiver: Receiver, database_url: str, data_dir: Path
) -> None:
    """What Janus' event handler posted, sent to a Courier configured for Janus: verified
    with the events secret, stored once each in provider_inbound (a wrong secret: 401)."""
    settings = make_settings(
        database_url,
        data_dir,
        video_provider="janus",
        janus_url=janus.url,
        janus_admin_key=janus.admin_key,
        janus_events_secret=janus.events_secret,
        janus_room_key="test-room-key",
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        video = providers_for(settings).get(VIDEO)
        room = await video.create_room(f"visit-{uuid.uuid4()}")
        peer = Peer(janus.url, await video.grant(room, "patient-9", ttl=timedelta(minutes=5)))
        try:
            assert (await peer.join())["videoroom"] == "joined"
        finally:
            await peer.leave()
        assert isinstance(video, JanusVideo)
        await events_about(video, receiver, room.vendor_id, until=3)
        posted = [r for r in receiver.at(HOOK) if room.vendor_id.encode() in r.body]
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            for request in posted + posted:  # each twice: Janus retransmits
                headers = {k: request.headers[k] for k in ("authorization", "content-type")}
                answer = await http.post(HOOK, content=request.body, headers=headers)
                assert answer.status_code == 204, answer.text
            forged = await http.post(
                HOOK,
                content=posted[0].body,
                headers={
                    "authorization": "Basic amFudXM6Z3Vlc3M=",
                    "content-type": "application/json",
                },
            )
            assert forged.status_code == 401
        async with application.state.database.sessionmaker() as session:
            rows = (
                (
                    await session.execute(
                        select(ProviderInbound).where(
                            ProviderInbound.provider == "video:janus",
                            ProviderInbound.vendor_id == room.vendor_id,
                        )
                    )
                )
                .scalars()
                .all()
            )
        stored = sorted((r.event_type, r.raw.get("ParticipantIdentity", "")) for r in rows)
        assert stored == [
            ("participant-connected", "patient-9"),
            ("participant-disconnected", "patient-9"),
            ("room-created", ""),
        ]
        await video.end_room(room.vendor_id)


async def test_two_webrtc_peers_in_a_visit_over_http(
    database_url: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `courier serve` and worker configured for a real Janus, whose event handler
    posts to Courier: a visit's two participants join its room with the credentials Courier
    issued, as real WebRTC peers; Courier's participant list shows both connected, then the
    one who left disconnected."""
    port = free_port()
    servers = start_janus(tmp_path / "janus", f"http://127.0.0.1:{port}{HOOK}")
    janus = next(servers)
    courier = Courier(
        database_url,
        data_dir,
        tmp_path,
        {
            "video_provider": "janus",
            "janus_url": janus.url,
            "janus_admin_key": janus.admin_key,
            "janus_events_secret": janus.events_secret,
        },
    )
    try:
        local_ice(monkeypatch, janus)
        courier.serve(port)
        courier.worker()
        await visit_over_http(courier, janus)
    finally:
        courier.stop()
        next(servers, None)


async def visit_over_http(courier: Courier, janus: JanusServer) -> None:
    with httpx.Client(base_url=courier.base, timeout=30, trust_env=False) as setup:
        admin = new_org(setup)
    async with httpx.AsyncClient(base_url=courier.base, timeout=30, trust_env=False) as http:
        headers = {"Authorization": admin["Authorization"]}

        async def individual(**attributes: str) -> str:
            created = await http.post(
                "/v1/individuals/",
                headers=headers,
                json=doc("individuals", {"first-name": "Sam", "last-name": "Janus", **attributes}),
            )
            assert created.status_code == 201, created.text
            return str(created.json()["data"]["id"])

        provider = await individual(**{"account-type": "provider"})
        patient = await individual()
        created = await http.post(
            "/v1/video-channels/",
            headers=headers,
            json=doc("video-channels", {"participants": [provider, patient]}),
        )
        assert created.status_code == 201, created.text
        path = f"/v1/video-channels/{created.json()['data']['id']}/"

        async def until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
            for _ in range(600):
                value = await check()
                if value:
                    return value
                await asyncio.sleep(0.1)
            raise AssertionError(f"timed out waiting for {what}\n{courier.logs_text()}")

        async def peer(who: str) -> Peer | None:
            got = await http.get(
                path + "get-credentials/", headers=headers, params={"individual-id": who}
            )
            if got.status_code == 409 and "room-not-ready" in got.text:
                return None
            assert got.status_code == 200, got.text
            held = got.json()
            assert held["provider"] == "janus" and held["identity"] == who
            grant = Grant(
                token=held["access-token"],
                identity=held["identity"],
                unique_name=held["name"],
                expires_at=parse_timestamp(held["expires-at"]),
                extra=held["extra"],
            )
            return Peer(janus.url, grant)

        async def participants() -> dict[str, dict[str, Any]]:
            got = await http.get(path, headers=headers)
            assert got.status_code == 200, got.text
            listed = got.json()["data"]["attributes"]["participants"]
            return {p["individual-id"]: p for p in listed}

        doctor = await until(lambda: peer(provider), "the room")
        patient_app = await peer(patient)
        assert patient_app is not None
        try:
            for app in (doctor, patient_app):
                assert (await app.join())["videoroom"] == "joined"
                assert (await app.publish_audio()).get("configured") == "ok"

            async def both_connected() -> bool:
                people = await participants()
                return all(people[p]["status"] == "connected" for p in (provider, patient))

            await until(both_connected, "both participants connected")
            shown = await http.get(path, headers=headers)
            assert shown.json()["data"]["attributes"]["channel-state"] == "open"

            await doctor.leave()

            async def doctor_left() -> bool:
                people = await participants()
                return bool(people[provider]["disconnected"])

            await until(doctor_left, "the provider disconnected")
            people = await participants()
            assert people[patient]["status"] == "connected" and not people[patient]["disconnected"]
        finally:
            for app in (doctor, patient_app):
                if app.session is not None:
                    await app.leave()
