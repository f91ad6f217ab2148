"""Video visits over HTTP, in process, on SQLite and PostgreSQL: create, list (individual-id,
filter[states]), get, PATCH; credentials that the sandbox engine accepts, only for
participants and only within the join window; the engine's events (signed callbacks, relayed
here from a local receiver standing in for Courier's public URL) opening the visit, connecting
and muting participants; terminate; a composition of the recorded visit that completes and
downloads as a decodable video; the encounter finalized once (v1 and v2); reminders; the visit
of a video_call appointment; purge; bad input and permissions."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import httpx
import pytest
from sqlalchemy import select

from courier.app import create_app
from courier.core.tenancy import unscoped
from courier.core.time import format_timestamp, utcnow
from courier.jobs import load_job_modules, run_until_idle
from courier.models.event import Event
from courier.models.user_notification import UserNotification
from courier.models.video import VideoChannel
from courier.providers.common import SANDBOX_SIGNATURE_HEADER, Permanent, providers_for
from courier.providers.video import VIDEO, VideoProvider
from courier.providers.video.base import VideoCompositions
from courier.providers.video.sandbox import SandboxVideo
from tests import provider_kinds_support as support
from tests.conftest import Org, bearer, doc, make_settings, openapi_checked
from tests.factories import individual_token, make_individual_id
from tests.provider_kinds_support import Receiver
from tests.test_purge import purge

receiver = support.receiver  # the module's fixture: stands in for Courier's public URL
CHANNELS = "/v1/video-channels/"
PARTICIPANTS = "/v1/video-participants/"
COMPOSITIONS = "/v1/video-compositions/"
HOOK = "/providers/video/status"


@pytest.fixture(scope="module")
async def app(database_url: str, data_dir: Path, receiver: Receiver) -> AsyncIterator[Any]:
    """Courier whose public URL is the receiver: the sandbox engine's signed callbacks land
    there, and :func:`relay` hands them to this app as the engine would."""
    settings = make_settings(
        database_url, data_dir, public_url=receiver.base, sandbox_delay_seconds=0
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with openapi_checked(app, base_url="http://courier.test") as http:
        yield http


def raw_client(app: Any) -> httpx.AsyncClient:
    """A client without the OpenAPI check (webhooks and file links are not API operations)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://courier.test")


RELAYED: dict[int, int] = {}


async def relay(app: Any, receiver: Receiver) -> int:
    """Post the engine's callbacks received since the last relay to Courier's webhook, as
    signed (the signature covers the public URL, which is the receiver's)."""
    received = receiver.at(HOOK)
    start = RELAYED.get(id(receiver), 0)
    async with raw_client(app) as http:
        for request in received[start:]:
            response = await http.post(
                HOOK,
                content=request.body,
                headers={
                    "content-type": request.headers["content-type"],
                    SANDBOX_SIGNATURE_HEADER: request.headers[SANDBOX_SIGNATURE_HEADER.lower()],
                },
            )
            assert response.status_code == 204, response.text
    RELAYED[id(receiver)] = len(received)
    return len(received) - start


async def run_jobs(app: Any, horizon: float = 0.0) -> None:
    load_job_modules(app.state.settings)
    await run_until_idle(app.state.database, app.state.settings, horizon=horizon)


async def settle(app: Any, receiver: Receiver, horizon: float = 0.0) -> None:
    """Run jobs and relay the engine's callbacks until nothing more happens."""
    for _ in range(10):
        await run_jobs(app, horizon)
        if not await relay(app, receiver):
            return
    raise AssertionError("the visit never settled")


async def control(client: httpx.AsyncClient, org: Org, path: str, **params: Any) -> Any:
    response = await client.post(f"/sandbox/video/{path}", json=params, headers=org.admin)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def people(client: httpx.AsyncClient, org: Org) -> tuple[str, str, str]:
    provider = await make_individual_id(client, org, **{"account-type": "provider"})
    patient = await make_individual_id(client, org, email="patient@example.org")
    outsider = await make_individual_id(client, org)
    return provider, patient, outsider


async def create(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    response = await client.post(
        CHANNELS, headers=org.staff, json=doc("video-channels", attributes)
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def visit_of(client: httpx.AsyncClient, org: Org, ident: str) -> dict[str, Any]:
    response = await client.get(f"{CHANNELS}{ident}/", headers=org.readonly)
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


async def credentials(
    client: httpx.AsyncClient, ident: str, headers: dict[str, str], individual: str | None = None
) -> httpx.Response:
    params = {"individual-id": individual} if individual else {}
    return await client.get(f"{CHANNELS}{ident}/get-credentials/", headers=headers, params=params)


def soon(minutes: float = 5) -> str:
    return format_timestamp(utcnow() + timedelta(minutes=minutes))


async def test_a_recorded_visit_from_scheduling_to_the_finalized_encounter(
    app: Any, client: httpx.AsyncClient, org: Org, receiver: Receiver
) -> None:
    provider, patient, outsider = await people(client, org)
    visit = await create(
        client,
        org,
        participants=[provider, patient],
        appointment={"start": soon(), "duration": 30},
        recorded=True,
        note="follow-up on the rash",
        type="direct",
        **{"subject-id": patient},
    )
    ident = visit["id"]
    attrs = visit["attributes"]
    assert attrs["channel-state"] == "scheduled" and attrs["recorded"] is True
    assert [p["individual-id"] for p in attrs["participants"]] == [provider, patient]
    assert [p["account-type"] for p in attrs["participants"]] == ["provider", "participant"]
    assert attrs["join-url"].endswith(f"/v1/video-channels/{ident}/get-credentials/")
    assert attrs["provider"] == "sandbox" and attrs["room-name"] == ident
    assert attrs["appointment"]["duration"] == 30 and attrs["subject-id"] == patient

    # The room is made by a job: until then there is nothing to join.
    early = await credentials(client, ident, org.staff, patient)
    assert early.status_code == 409 and "being prepared" in early.text
    await settle(app, receiver)

    # Credentials: for participants only, and the sandbox engine accepts them.
    granted = await credentials(client, ident, org.staff, patient)
    assert granted.status_code == 200, granted.text
    body = granted.json()
    claims = SandboxVideo(app.state.settings).check_token(body["access-token"])
    assert claims["sub"] == patient and claims["room"] == ident and body["name"] == ident
    assert (await credentials(client, ident, org.staff, outsider)).status_code == 403
    missing = await credentials(client, ident, org.staff)
    assert missing.status_code == 400 and "individual-id" in missing.text
    patient_token = bearer(await individual_token(client, org, patient))
    own = await credentials(client, ident, patient_token)
    assert own.status_code == 200 and own.json()["identity"] == patient
    assert (await credentials(client, ident, patient_token, provider)).status_code == 403
    outsider_token = bearer(await individual_token(client, org, outsider))
    assert (await credentials(client, ident, outsider_token)).status_code == 404
    doctor = await credentials(client, ident, org.staff, provider)

    # Both join through the sandbox engine: the visit opens, both show connected.
    await control(client, org, "join", token=body["access-token"])
    await control(client, org, "join", token=doctor.json()["access-token"])
    await settle(app, receiver)
    attrs = await visit_of(client, org, ident)
    assert attrs["channel-state"] == "open" and attrs["opened-at"]
    assert all(p["status"] == "connected" and p["connected-at"] for p in attrs["participants"])

    # The provider mutes the patient; the engine applies it and reports it back.
    refused = await client.post(
        f"{CHANNELS}{ident}/participant-audio-states/",
        headers=org.staff,
        json={"individual-id": patient, "participants": [{"id": provider, "audio-state": "muted"}]},
    )
    assert refused.status_code == 403  # a patient mutes nobody
    muted = await client.post(
        f"{CHANNELS}{ident}/participant-audio-states/",
        headers=org.staff,
        json={"individual-id": provider, "participants": [{"id": patient, "audio-state": "muted"}]},
    )
    assert muted.status_code == 201, muted.text
    await settle(app, receiver)
    listed = await client.get(
        PARTICIPANTS,
        headers=org.readonly,
        params={"video-channel-id": ident, "individual-id": provider},
    )
    assert listed.status_code == 200, listed.text
    states = {p["attributes"]["individual-id"]: p for p in listed.json()["data"]}
    assert states[patient]["attributes"]["audio-state"] == "muted"
    assert states[provider]["attributes"]["audio-state"] == "unmuted"
    room = await client.get("/sandbox/video/room", params={"room": ident}, headers=org.admin)
    assert {p["identity"]: p["audio-muted"] for p in room.json()["data"]["participants"]} == {
        patient: True,
        provider: False,
    }
    # The provider writes a note on their participation (their encounter note).
    note = await client.patch(
        f"{PARTICIPANTS}{states[provider]['id']}/",
        headers=org.staff,
        json=doc("video-participants", {"note": "rash resolving"}, states[provider]["id"]),
    )
    assert note.status_code == 200, note.text

    # A participant leaves; the visit is terminated; the engine ends the room.
    await control(client, org, "leave", room=ident, identity=patient)
    ended = await client.post(f"{CHANNELS}{ident}/terminate/", headers=org.staff, json={})
    assert ended.status_code == 201, ended.text
    assert ended.json()["data"]["attributes"]["channel-state"] == "terminated"
    await settle(app, receiver, horizon=3.0)
    attrs = await visit_of(client, org, ident)
    assert attrs["channel-state"] == "terminated" and attrs["duration"] is not None
    assert all(p["disconnected"] for p in attrs["participants"])
    late = await credentials(client, ident, org.staff, patient)
    assert late.status_code == 409 and "ended" in late.text
    again = await client.post(f"{CHANNELS}{ident}/terminate/", headers=org.staff, json={})
    assert again.status_code == 201  # terminating an ended visit changes nothing

    # The recording: composed by jobs, then downloadable as a real video.
    made = await client.get(COMPOSITIONS, headers=org.readonly, params={"video-channel-id": ident})
    assert made.status_code == 200, made.text
    [composition] = made.json()["data"]
    shown = composition["attributes"]
    assert shown["processing-status"] == "completed" and shown["processing-pct"] == 100
    assert shown["status"] == "available" and shown["size"] > 0 and shown["duration"] >= 1
    assert shown["content-type"] == "video/mp4"
    link = urlsplit(shown["media-url"])
    async with raw_client(app) as http:
        media = await http.get(f"{link.path}?{link.query}")
    assert media.status_code == 200 and len(media.content) == shown["size"]
    with av.open(io.BytesIO(media.content)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 10
    one = await client.get(f"{COMPOSITIONS}{composition['id']}/", headers=org.readonly)
    assert one.status_code == 200
    assert (await visit_of(client, org, ident))["compositions"][0]["status"] == "available"

    # The encounter, exactly once (v1, then v1 and v2 again: 409).
    finalized = await client.post(
        f"{CHANNELS}{ident}/finalize-encounter/",
        headers=org.staff,
        json={
            "service-type-id": str(uuid.uuid4()),
            "use-note-from-author-participant": True,
            "individual-id": provider,
        },
    )
    assert finalized.status_code == 201, finalized.text
    encounter = finalized.json()["data"]["attributes"]["encounter"]
    assert encounter["note"] == "rash resolving" and encounter["author-id"] == provider
    assert set(encounter["participants"]) == {provider, patient}
    assert finalized.json()["data"]["attributes"]["encounter-id"] == encounter["id"]
    twice = await client.post(f"{CHANNELS}{ident}/finalize-encounter/", headers=org.staff, json={})
    assert twice.status_code == 409
    v2 = await client.post(
        f"/v2/video-channels/{ident}/finalize-encounter/", headers=org.staff, json={}
    )
    assert v2.status_code == 409

    # Every state change was announced; the encounter for EHR integration among them.
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(select(Event).where(Event.resource_id == uuid.UUID(ident)), "test")
        events = sorted((await session.execute(stmt)).scalars().all(), key=lambda e: e.seq)
    types = [e.type for e in events]
    for wanted in (
        "video-channels.created",
        "video-channels.room-created",
        "video-channels.opened",
        "video-channels.terminated",
        "video-channels.encounter-finalized",
    ):
        assert wanted in types, types
    assert types.count("video-channels.encounter-finalized") == 1
    [published] = [e for e in events if e.type == "video-channels.encounter-finalized"]
    assert published.data["encounter-id"] == encounter["id"]
    assert published.data["author-id"] == provider and "note" not in published.data

    # Lists by individual and state.
    async def listing(**params: str) -> list[str]:
        response = await client.get(CHANNELS, headers=org.readonly, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    assert ident in await listing(**{"individual-id": patient})
    assert ident in await listing(**{"individual-id": patient, "filter[states]": "terminated"})
    assert ident in await listing(**{"individual-id": patient, "filter[states]": "open,terminated"})
    assert ident not in await listing(**{"individual-id": patient, "filter[states]": "open"})
    assert ident not in await listing(**{"individual-id": outsider})


async def test_v2_finalizes_once_with_the_authors_note(
    app: Any, client: httpx.AsyncClient, org: Org, receiver: Receiver
) -> None:
    provider, patient, _ = await people(client, org)
    ident = (await create(client, org, participants=[provider, patient], note="visit note"))["id"]
    early = await client.post(
        f"/v2/video-channels/{ident}/finalize-encounter/", headers=org.staff, json={}
    )
    assert early.status_code == 409 and "not taken place" in early.text
    await settle(app, receiver)
    first = (await credentials(client, ident, org.staff, provider)).json()["access-token"]
    engine = SandboxVideo(app.state.settings)
    old_room = engine.check_token(first)["room_sid"]
    # Recording decided after the room was made: the room is replaced by a recording one.
    recorded = await client.patch(
        f"{CHANNELS}{ident}/",
        headers=org.staff,
        json=doc("video-channels", {"recorded": True}, ident),
    )
    assert recorded.status_code == 200, recorded.text
    await settle(app, receiver)
    token = (await credentials(client, ident, org.staff, provider)).json()["access-token"]
    new_room = await engine.fetch_room(engine.check_token(token)["room_sid"])
    assert new_room is not None and new_room.record is True
    assert new_room.vendor_id != old_room
    gone = await engine.fetch_room(old_room)
    assert gone is not None and gone.status.value == "completed"
    assert (await visit_of(client, org, ident))["channel-state"] == "scheduled"
    await control(client, org, "join", token=token)
    await settle(app, receiver)
    provider_token = bearer(await individual_token(client, org, provider))
    foreign = await client.post(
        f"/v2/video-channels/{ident}/finalize-encounter/",
        headers=provider_token,
        json={"individual-id": patient},
    )
    assert foreign.status_code == 403
    done = await client.post(
        f"/v2/video-channels/{ident}/finalize-encounter/",
        headers=provider_token,
        json={"service-type-id": str(uuid.uuid4())},
    )
    assert done.status_code == 201, done.text
    encounter = done.json()["data"]["attributes"]["encounter"]
    assert encounter["version"] == "v2" and encounter["note"] == "visit note"
    assert encounter["author-id"] == provider
    again = await client.post(
        f"/v2/video-channels/{ident}/finalize-encounter/", headers=provider_token, json={}
    )
    assert again.status_code == 409
    v1 = await client.post(f"{CHANNELS}{ident}/finalize-encounter/", headers=org.staff, json={})
    assert v1.status_code == 409


async def test_the_join_window(
    app: Any, client: httpx.AsyncClient, org: Org, receiver: Receiver
) -> None:
    provider, patient, _ = await people(client, org)
    later = await create(
        client, org, participants=[provider, patient], appointment={"start": soon(120)}
    )
    custom = await create(
        client,
        org,
        participants=[provider, patient],
        appointment={"start": soon(120), "join-start": soon(-1)},
    )
    past = await create(
        client,
        org,
        participants=[provider, patient],
        appointment={"start": soon(-200), "duration": 30},
    )
    await settle(app, receiver)
    opens = await credentials(client, later["id"], org.staff, patient)
    assert opens.status_code == 409 and "opens for joining at" in opens.text
    assert later["attributes"]["appointment"]["join-start"] is not None
    assert (await credentials(client, custom["id"], org.staff, patient)).status_code == 200
    closed = await credentials(client, past["id"], org.staff, patient)
    assert closed.status_code == 409 and "closed" in closed.text
    # Moving the appointment moves the window.
    moved = await client.patch(
        f"{CHANNELS}{later['id']}/",
        headers=org.staff,
        json=doc("video-channels", {"appointment-start": soon(2)}, later["id"]),
    )
    assert moved.status_code == 200, moved.text
    assert (await credentials(client, later["id"], org.staff, patient)).status_code == 200


async def test_bad_input_and_modifications(client: httpx.AsyncClient, org: Org) -> None:
    provider, patient, _ = await people(client, org)

    async def refused(attributes: dict[str, Any], status: int, pointer: str = "") -> None:
        response = await client.post(
            CHANNELS, headers=org.staff, json=doc("video-channels", attributes)
        )
        assert response.status_code == status, response.text
        if pointer:
            assert response.json()["errors"][0]["source"]["pointer"].startswith(pointer)

    await refused({}, 400, "/data/attributes/participants")
    await refused({"participants": []}, 400, "/data/attributes/participants")
    await refused({"participants": [str(uuid.uuid4())]}, 404, "/data/attributes/participants")
    await refused({"participants": ["nope"]}, 400)
    await refused({"participants": [provider, provider]}, 400, "/data/attributes/participants")
    await refused({"participants": [provider, patient], "max-participants": 1}, 422)
    await refused(
        {"participants": [provider], "appointment": {"start": "2030-01-01T10:00:00"}}, 400
    )
    await refused(
        {
            "participants": [provider],
            "appointment": {"start": soon(60), "join-start": soon(70)},
        },
        400,
        "/data/attributes/appointment",
    )
    await refused(
        {"participants": [provider], "messaging-channel-id": str(uuid.uuid4())},
        404,
        "/data/attributes/messaging-channel-id",
    )
    await refused({"participants": [provider], "subject-id": str(uuid.uuid4())}, 404)
    await refused(
        {"participants": [provider], "appointment": {"start": soon(), "duration": 0}}, 400
    )
    await refused({"participants": [provider], "unknown": 1}, 400)
    forbidden = await client.post(
        CHANNELS, headers=org.readonly, json=doc("video-channels", {"participants": [provider]})
    )
    assert forbidden.status_code == 403

    visit = await create(client, org, participants=[provider, patient])
    ident = visit["id"]

    async def patch(attributes: dict[str, Any]) -> httpx.Response:
        return await client.patch(
            f"{CHANNELS}{ident}/", headers=org.staff, json=doc("video-channels", attributes, ident)
        )

    assert (await patch({"appointment-duration": 20})).status_code == 422  # no start yet
    changed = await patch({"appointment-start": soon(30), "note": "n", "recorded": True})
    assert changed.status_code == 200, changed.text
    attrs = changed.json()["data"]["attributes"]
    assert attrs["note"] == "n" and attrs["recorded"] is True
    assert attrs["appointment"]["duration"] == 30
    assert (await patch({"appointment-duration": 45})).json()["data"]["attributes"]["appointment"][
        "duration"
    ] == 45
    assert (await patch({"recorded": None})).status_code == 400
    assert (await patch({"note": None})).json()["data"]["attributes"]["note"] is None
    assert (await patch({"channel-state": "open"})).status_code == 400
    ended = await client.post(f"{CHANNELS}{ident}/terminate/", headers=org.staff, json={})
    assert ended.status_code == 201
    late = await patch({"appointment-start": soon(60)})
    assert late.status_code == 409
    assert (await patch({"note": "after the visit"})).status_code == 200
    audio = await client.post(
        f"{CHANNELS}{ident}/participant-audio-states/",
        headers=org.staff,
        json={"participants": [{"id": patient, "audio-state": "muted"}]},
    )
    assert audio.status_code == 409  # not open
    bad_audio = await client.post(
        f"{CHANNELS}{ident}/participant-audio-states/",
        headers=org.staff,
        json={"participants": [{"id": patient, "audio-state": "loud"}]},
    )
    assert bad_audio.status_code == 400
    missing = await client.get(f"{CHANNELS}{uuid.uuid4()}/", headers=org.readonly)
    assert missing.status_code == 404
    assert (await client.get(CHANNELS, headers=org.readonly)).status_code == 400
    bad_state = await client.get(
        CHANNELS,
        headers=org.readonly,
        params={"individual-id": patient, "filter[states]": "closed"},
    )
    assert bad_state.status_code == 400


async def test_participants_list_and_modify(
    app: Any, client: httpx.AsyncClient, org: Org, receiver: Receiver
) -> None:
    provider, patient, outsider = await people(client, org)
    ident = (await create(client, org, participants=[provider, patient]))["id"]
    await settle(app, receiver)
    params = {"video-channel-id": ident, "individual-id": patient}
    listed = await client.get(PARTICIPANTS, headers=org.readonly, params=params)
    assert listed.status_code == 200
    rows = listed.json()["data"]
    assert [r["attributes"]["individual-id"] for r in rows] == [provider, patient]
    assert rows[0]["attributes"]["video-channel-id"] == ident
    outsiders = await client.get(
        PARTICIPANTS,
        headers=org.readonly,
        params={"video-channel-id": ident, "individual-id": outsider},
    )
    assert outsiders.json()["data"] == []
    for missing in ({"video-channel-id": ident}, {"individual-id": patient}):
        assert (
            await client.get(PARTICIPANTS, headers=org.readonly, params=missing)
        ).status_code == 400
    patient_row = rows[1]["id"]
    patient_token = bearer(await individual_token(client, org, patient))
    mine = await client.get(f"{PARTICIPANTS}{patient_row}/", headers=patient_token)
    assert mine.status_code == 200
    outsider_token = bearer(await individual_token(client, org, outsider))
    assert (
        await client.get(f"{PARTICIPANTS}{patient_row}/", headers=outsider_token)
    ).status_code == 404

    async def patch(
        row: str, headers: dict[str, str], attributes: dict[str, Any]
    ) -> httpx.Response:
        return await client.patch(
            f"{PARTICIPANTS}{row}/",
            headers=headers,
            json=doc("video-participants", attributes, row),
        )

    not_connected = await patch(patient_row, org.staff, {"audio-state": "muted"})
    assert not_connected.status_code == 409
    own_note = await patch(patient_row, patient_token, {"note": "my note"})
    assert own_note.status_code == 200, own_note.text
    assert own_note.json()["data"]["attributes"]["note"] == "my note"
    assert (await patch(rows[0]["id"], patient_token, {"note": "x"})).status_code == 403
    gone = await patch(patient_row, org.staff, {"disconnected": True})
    assert gone.json()["data"]["attributes"]["disconnected"] is True
    assert (await patch(patient_row, org.staff, {"disconnected": None})).status_code == 400
    assert (await patch(patient_row, org.staff, {"audio-state": "loud"})).status_code == 400
    assert (await patch(patient_row, org.readonly, {"note": "x"})).status_code == 403


async def test_reminders_reach_the_participants(
    app: Any, client: httpx.AsyncClient, org: Org, receiver: Receiver
) -> None:
    provider, patient, _ = await people(client, org)
    ident = (
        await create(client, org, participants=[provider, patient], appointment={"start": soon(30)})
    )["id"]
    timer = await client.post(
        f"{CHANNELS}{ident}/reminder-timer/",
        headers=org.staff,
        json={"minutes-before": [60, 15]},
    )
    assert timer.status_code == 201, timer.text
    assert timer.json()["data"]["attributes"]["reminders"] == [60, 15]
    await run_jobs(app)  # the 60-minute reminder is already due: sent now
    source = f"video-channel:{ident}"

    async def notified() -> list[UserNotification]:
        async with app.state.database.sessionmaker() as session:
            stmt = unscoped(select(UserNotification).where(UserNotification.source == source), "t")
            return list((await session.execute(stmt)).scalars().all())

    first = await notified()
    assert {str(n.individual_id) for n in first} == {provider, patient}
    templates = await client.get(
        "/v1/templates/", headers=org.readonly, params={"filter[name]": "video-visit-reminder"}
    )
    assert len(templates.json()["data"]) == 1
    from tests.support import jobs_fall_due

    assert await jobs_fall_due(app.state.database, org.id, kinds=["video.remind"]) == 2
    await run_jobs(app)
    assert len(await notified()) == 4
    await run_jobs(app)
    assert len(await notified()) == 4  # never twice

    no_start = (await create(client, org, participants=[provider]))["id"]
    refused = await client.post(f"{CHANNELS}{no_start}/reminder-timer/", headers=org.staff, json={})
    assert refused.status_code == 422
    unknown = await client.post(
        f"{CHANNELS}{ident}/reminder-timer/", headers=org.staff, json={"template-id": "nope"}
    )
    assert unknown.status_code == 404
    bad = await client.post(
        f"{CHANNELS}{ident}/reminder-timer/", headers=org.staff, json={"minutes-before": [0]}
    )
    assert bad.status_code == 400


async def test_a_video_call_appointment_gets_its_visit(
    app: Any, client: httpx.AsyncClient, org: Org, receiver: Receiver
) -> None:
    provider, patient, _ = await people(client, org)
    start = utcnow() + timedelta(minutes=5)
    booked = await client.post(
        "/v1/appointments/",
        headers=org.staff,
        json=doc(
            "appointments",
            {
                "name": "Video follow-up",
                "start-time": format_timestamp(start),
                "end-time": format_timestamp(start + timedelta(minutes=20)),
                "host": provider,
                "attendees": [patient],
                "interaction-type": "video_call",
            },
        ),
    )
    assert booked.status_code == 201, booked.text
    call = booked.json()["data"]["attributes"]["video-call"]
    visit_id = call["meeting-id"]
    assert call["join-url"].endswith(f"/v1/video-channels/{visit_id}/get-credentials/")
    visit = await visit_of(client, org, visit_id)
    assert visit["appointment"]["id"] == booked.json()["data"]["id"]
    assert visit["appointment"]["duration"] == 20
    assert [p["individual-id"] for p in visit["participants"]] == [provider, patient]
    await settle(app, receiver)
    token = (await credentials(client, visit_id, org.staff, patient)).json()["access-token"]
    assert SandboxVideo(app.state.settings).check_token(token)["room"] == visit_id
    moved = await client.patch(
        f"/v1/appointments/{booked.json()['data']['id']}/",
        headers=org.staff,
        json=doc(
            "appointments",
            {
                "updated-by": provider,
                "start-time": format_timestamp(start + timedelta(hours=1)),
                "end-time": format_timestamp(start + timedelta(hours=1, minutes=30)),
            },
            booked.json()["data"]["id"],
        ),
    )
    assert moved.status_code == 200, moved.text
    visit = await visit_of(client, org, visit_id)
    assert visit["appointment"]["start"] == format_timestamp(start + timedelta(hours=1))
    assert visit["appointment"]["duration"] == 30
    in_person = await client.post(
        "/v1/appointments/",
        headers=org.staff,
        json=doc(
            "appointments",
            {
                "name": "Clinic",
                "start-time": format_timestamp(start),
                "end-time": format_timestamp(start + timedelta(minutes=20)),
                "host": provider,
                "attendees": [patient],
            },
        ),
    )
    assert in_person.json()["data"]["attributes"]["video-call"] is None


async def test_purge_erases_the_patients_visits(
    app: Any, client: httpx.AsyncClient, org: Org, receiver: Receiver
) -> None:
    provider, patient, _ = await people(client, org)
    other = await make_individual_id(client, org)
    start = utcnow() + timedelta(days=1)
    booked = await client.post(
        "/v1/appointments/",
        headers=org.staff,
        json=doc(
            "appointments",
            {
                "name": "Video visit",
                "start-time": format_timestamp(start),
                "end-time": format_timestamp(start + timedelta(minutes=20)),
                "host": provider,
                "attendees": [patient, other],
                "interaction-type": "video_call",
            },
        ),
    )
    assert booked.status_code == 201, booked.text
    booked_visit = booked.json()["data"]["attributes"]["video-call"]["meeting-id"]
    theirs = (await create(client, org, participants=[provider, patient]))["id"]
    kept = (await create(client, org, participants=[provider, other]))["id"]
    await settle(app, receiver)
    receipt = await purge(client, app, org, patient)
    assert receipt["attributes"]["state"] == "completed", receipt
    assert (await client.get(f"{CHANNELS}{theirs}/", headers=org.readonly)).status_code == 404
    assert (await client.get(f"{CHANNELS}{kept}/", headers=org.readonly)).status_code == 200
    assert (await client.get(f"{CHANNELS}{booked_visit}/", headers=org.readonly)).status_code == 404
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(select(VideoChannel).where(VideoChannel.id == uuid.UUID(theirs)), "t")
        assert (await session.execute(stmt)).first() is None


async def test_the_sandbox_composes_and_engines_without_compositions_still_qualify(
    app: Any,
) -> None:
    adapter = providers_for(app.state.settings).get(VIDEO)
    assert isinstance(adapter, VideoProvider) and isinstance(adapter, VideoCompositions)

    class RoomsOnly:
        """An engine with rooms and no recordings (as Janus without its recorder)."""

        name = "rooms-only"

        async def create_room(self, *args: Any, **kwargs: Any) -> Any: ...
        async def fetch_room(self, vendor_id: str) -> Any: ...
        async def end_room(self, vendor_id: str) -> Any: ...
        async def grant(self, *args: Any, **kwargs: Any) -> Any: ...
        async def participants(self, vendor_id: str) -> Any: ...
        async def set_audio(self, *args: Any, **kwargs: Any) -> None: ...
        def verify(self, request: Any) -> bool:
            return False

        def parse(self, request: Any) -> list[Any]:
            return []

    assert isinstance(RoomsOnly(), VideoProvider)
    assert not isinstance(RoomsOnly(), VideoCompositions)
    sandbox = SandboxVideo(app.state.settings)
    room = await sandbox.create_room(f"unrecorded-{uuid.uuid4()}")
    await sandbox.end_room(room.vendor_id)
    with pytest.raises(Permanent, match="not recorded"):
        await sandbox.create_composition(room.vendor_id)


async def test_concurrent_finalizes_make_one_encounter_and_participants_show_preferences(
    app: Any, client: httpx.AsyncClient, org: Org, receiver: Receiver
) -> None:
    provider, patient, _ = await people(client, org)
    user = await client.post(
        "/v1/users/",
        headers=org.admin,
        json=doc(
            "users",
            {
                "username": f"pat{uuid.uuid4().hex[:8]}",
                "primary-individual-id": patient,
                "email-verified": True,
                "communication-preferences": {"sms": {"enabled": False}},
            },
        ),
    )
    assert user.status_code == 201, user.text
    ident = (await create(client, org, participants=[provider, patient]))["id"]
    shown = {p["individual-id"]: p for p in (await visit_of(client, org, ident))["participants"]}
    assert shown[patient]["user"]["id"] == user.json()["data"]["id"]
    assert shown[patient]["user"]["email-verified"] is True
    assert shown[patient]["user"]["communication-preferences"] == {"sms": {"enabled": False}}
    assert shown[provider]["user"] is None
    await settle(app, receiver)
    token = (await credentials(client, ident, org.staff, patient)).json()["access-token"]
    await control(client, org, "join", token=token)
    await settle(app, receiver)

    async def finalize(version: str) -> int:
        response = await client.post(
            f"/{version}/video-channels/{ident}/finalize-encounter/",
            headers=org.staff,
            json={"individual-id": provider},
        )
        return response.status_code

    statuses = await asyncio.gather(finalize("v1"), finalize("v2"), finalize("v1"))
    assert sorted(statuses) == [201, 409, 409]
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(
            select(Event).where(
                Event.resource_id == uuid.UUID(ident),
                Event.type == "video-channels.encounter-finalized",
            ),
            "test",
        )
        assert len((await session.execute(stmt)).scalars().all()) == 1


async def test_with_email_invitations_and_appless_join_links(
    app: Any, client: httpx.AsyncClient, org: Org, receiver: Receiver
) -> None:
    from email import policy
    from email.parser import BytesParser

    from courier.domains.video.links import join_link, signature
    from tests.test_email import sandbox_raw

    provider = await make_individual_id(client, org, **{"account-type": "provider"})
    address = f"guest-{uuid.uuid4().hex[:8]}@example.org"
    guest = await make_individual_id(client, org, email=address)
    visit = await create(
        client,
        org,
        participants=[provider, guest],
        appointment={"start": soon(5)},
        appless=True,
        **{"with-email": True},
    )
    ident = visit["id"]
    assert visit["attributes"]["appless"] is True and visit["attributes"]["with-email"] is True
    await settle(app, receiver, horizon=2.0)
    [raw] = await sandbox_raw(client, org, address)
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["Subject"] == "Your video visit"
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    [link] = [line for line in text.splitlines() if "/video/join/" in line]
    assert link.startswith(receiver.base + f"/video/join/{ident}/{guest}?")

    async with raw_client(app) as http:
        parts = urlsplit(link)
        joined = await http.get(f"{parts.path}?{parts.query}")
        assert joined.status_code == 200, joined.text
        assert joined.json()["identity"] == guest
        claims = SandboxVideo(app.state.settings).check_token(joined.json()["access-token"])
        assert claims["room"] == ident
        # The link is the guest's alone: not another participant's, not altered, not expired.
        other = await http.get(parts.path.replace(guest, provider) + "?" + parts.query)
        assert other.status_code == 401
        forged = await http.get(f"{parts.path}?{parts.query[:-4]}beef")
        assert forged.status_code == 401
        past = int((utcnow() - timedelta(minutes=1)).timestamp())
        sig = signature(app.state.settings, uuid.UUID(ident), uuid.UUID(guest), past)
        expired = await http.get(f"{parts.path}?expires={past}&sig={sig}")
        assert expired.status_code == 401
        assert (await http.get(f"/video/join/{ident}/nope?expires=1&sig=x")).status_code == 404

        # A visit that is not appless has no join links.
        plain = (await create(client, org, participants=[provider, guest]))["id"]
        async with app.state.database.sessionmaker() as session:
            row = (
                await session.execute(
                    unscoped(select(VideoChannel).where(VideoChannel.id == uuid.UUID(plain)), "t")
                )
            ).scalar_one()
            made = urlsplit(join_link(app.state.settings, row, uuid.UUID(guest)))
        assert (await http.get(f"{made.path}?{made.query}")).status_code == 404
    # The provider has no address: no email for them.
    assert len(await sandbox_raw(client, org, address)) == 1
