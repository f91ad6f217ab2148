"""End to end over HTTP against a real `courier serve` and a real `courier worker` (SQLite
and PostgreSQL): an appointment booked as a video call produces a visit whose credentials
verify (the sandbox engine's key); the visit opens when a participant joins through the
sandbox's control surface; a participant is muted (the engine applies it and reports back
through the signed webhook); it terminates; the composition of the recording completes and
downloads as a decodable video; the encounter is finalized exactly once."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from courier.config import Settings
from courier.core.time import format_timestamp, utcnow
from courier.providers.video.sandbox import SandboxVideo
from tests.sms_support import Courier, doc, new_org, until

SANDBOX_SECRET = "video-e2e-sandbox-secret"


@pytest.fixture
def courier(database_url: str, data_dir: Path, tmp_path: Path) -> Iterator[Courier]:
    running = Courier(database_url, data_dir, tmp_path, {"sandbox_secret": SANDBOX_SECRET})
    running.serve()
    running.worker()
    try:
        yield running
    finally:
        running.stop()


def individual(http: httpx.Client, headers: dict[str, str], **attributes: Any) -> str:
    created = http.post(
        "/v1/individuals/",
        headers=headers,
        json=doc("individuals", {"first-name": "Sam", "last-name": "Video", **attributes}),
    )
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["id"])


def test_a_video_call_appointment_from_booking_to_the_encounter(
    courier: Courier, tmp_path: Path
) -> None:
    with httpx.Client(base_url=courier.base, timeout=30) as http:
        admin = new_org(http)
        headers = {"Authorization": admin["Authorization"]}
        provider = individual(http, headers, **{"account-type": "provider"})
        patient = individual(http, headers)
        start = utcnow() + timedelta(minutes=3)
        booked = http.post(
            "/v1/appointments/",
            headers=headers,
            json=doc(
                "appointments",
                {
                    "name": "Video follow-up",
                    "start-time": format_timestamp(start),
                    "end-time": format_timestamp(start + timedelta(minutes=30)),
                    "host": provider,
                    "attendees": [patient],
                    "interaction-type": "video_call",
                },
            ),
        )
        assert booked.status_code == 201, booked.text
        call = booked.json()["data"]["attributes"]["video-call"]
        visit = call["meeting-id"]
        assert call["join-url"] == f"{courier.base}/v1/video-channels/{visit}/get-credentials/"
        path = f"/v1/video-channels/{visit}/"
        # The clinic records this one (decided before the visit opens).
        recorded = http.patch(
            path,
            headers=headers,
            json={
                "data": {"type": "video-channels", "id": visit, "attributes": {"recorded": True}}
            },
        )
        assert recorded.status_code == 200, recorded.text
        assert recorded.json()["data"]["attributes"]["recorded"] is True

        def credentials(who: str) -> dict[str, Any] | None:
            got = http.get(
                path + "get-credentials/", headers=headers, params={"individual-id": who}
            )
            if got.status_code == 409 and "being prepared" in got.text:
                return None
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()
            return body

        patient_pass = until(lambda: credentials(patient), "the room\n" + courier.logs_text())
        provider_pass = credentials(provider)
        assert provider_pass is not None
        # The credentials verify with the sandbox engine's key.
        engine = SandboxVideo(
            Settings(database_url="sqlite+aiosqlite://", sandbox_secret=SANDBOX_SECRET)
        )
        claims = engine.check_token(patient_pass["access-token"])
        assert claims["sub"] == patient and claims["room"] == visit

        def attributes() -> dict[str, Any]:
            got = http.get(path, headers=headers)
            assert got.status_code == 200, got.text
            attrs: dict[str, Any] = got.json()["data"]["attributes"]
            return attrs

        assert attributes()["channel-state"] == "scheduled"
        for held in (patient_pass, provider_pass):
            joined = http.post(
                "/sandbox/video/join", headers=headers, json={"token": held["access-token"]}
            )
            assert joined.status_code == 200, joined.text
        until(
            lambda: (
                attributes()["channel-state"] == "open"
                and all(p["status"] == "connected" for p in attributes()["participants"])
            ),
            "the visit to open\n" + courier.logs_text(),
        )

        muted = http.post(
            path + "participant-audio-states/",
            headers=headers,
            json={
                "individual-id": provider,
                "participants": [{"id": patient, "audio-state": "muted"}],
            },
        )
        assert muted.status_code == 201, muted.text

        def audio() -> dict[str, str]:
            return {p["individual-id"]: p["audio-state"] for p in attributes()["participants"]}

        until(
            lambda: audio() == {patient: "muted", provider: "unmuted"},
            "the patient muted\n" + courier.logs_text(),
        )

        ended = http.post(path + "terminate/", headers=headers, json={})
        assert ended.status_code == 201, ended.text
        assert ended.json()["data"]["attributes"]["channel-state"] == "terminated"

        def composed() -> dict[str, Any] | None:
            got = http.get(
                "/v1/video-compositions/", headers=headers, params={"video-channel-id": visit}
            )
            assert got.status_code == 200, got.text
            items = got.json()["data"]
            if not items:
                return None
            attrs: dict[str, Any] = items[0]["attributes"]
            assert attrs["processing-status"] != "failed", attrs
            return attrs if attrs["processing-status"] == "completed" else None

        composition = until(composed, "the composition\n" + courier.logs_text())
        assert composition["size"] > 0 and composition["media-url"].startswith(courier.base)
        media = http.get(composition["media-url"])
        assert media.status_code == 200 and len(media.content) == composition["size"]
        with av.open(io.BytesIO(media.content)) as container:
            assert sum(1 for _ in container.decode(video=0)) >= 10
        after = attributes()
        assert after["channel-state"] == "terminated"
        assert all(p["disconnected"] for p in after["participants"])

        finalized = http.post(
            path + "finalize-encounter/",
            headers=headers,
            json={"service-type-id": "11111111-1111-4111-8111-111111111111"},
        )
        assert finalized.status_code == 201, finalized.text
        encounter = finalized.json()["data"]["attributes"]["encounter"]
        assert encounter["service-type-id"] == "11111111-1111-4111-8111-111111111111"
        again = http.post(path + "finalize-encounter/", headers=headers, json={})
        assert again.status_code == 409, again.text
        v2 = http.post(f"/v2/video-channels/{visit}/finalize-encounter/", headers=headers, json={})
        assert v2.status_code == 409, v2.text
