"""Voice lines over HTTP, in process: settings (a voice-capable number, business hours), the
IVR's TwiML step by step (signed webhooks, safe answers), the queue (exact positions under
concurrent arrivals and departures), agents (browser token, PSTN, leaving, a released number),
run-task reconciling the queue, recordings (fetched, transcribed, downloaded through a signed
link that counts) and TTS."""

from __future__ import annotations

import asyncio
import io
import uuid
import wave
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import update

from courier.core.tenancy import scoped
from courier.domains.voice.service import callback_url, twiml_url
from courier.models.text_account import TextAccountNumber
from courier.providers.common import providers_for
from courier.providers.voice import VOICE
from tests.conftest import Org, doc
from tests.voice_support import (
    CALLER,
    app_of,
    call_form,
    make_line,
    queued_call,
    run_jobs,
    webhook,
)


def settings_of(client: httpx.AsyncClient) -> Any:
    return app_of(client).state.settings


def new_sid() -> str:
    return f"CA{uuid.uuid4().hex}"


async def entries(client: httpx.AsyncClient, org: Org, line_id: str) -> list[dict[str, Any]]:
    got = await client.get(
        "/v1/voice-queue-entries/", params={"setting-id": line_id}, headers=org.admin
    )
    assert got.status_code == 200, got.text
    return [e["attributes"] | {"id": e["id"]} for e in got.json()["data"]]


async def test_a_line_needs_an_active_voice_capable_number(
    client: httpx.AsyncClient, org: Org
) -> None:
    line = await make_line(
        client,
        org,
        **{
            "forward-number": "+14155552671",
            "recording-enabled": True,
            "business-hours": [{"day": "mon", "open": "08:00", "close": "17:30"}],
        },
    )
    attributes = line["attributes"]
    assert attributes["line-state"] == "configured" and attributes["recording-enabled"] is True
    assert attributes["business-hours"] == [{"day": "mon", "open": "08:00", "close": "17:30"}]
    # The sandbox now sends the number's calls to the line's IVR.
    adapter = providers_for(settings_of(client)).get(VOICE)
    configured = await adapter.store.get("lines", attributes["phone-number"])  # type: ignore[attr-defined]
    assert configured["voice-url"].endswith(f"/v1/voice-ivrs/{line['id']}/twiml/")

    unknown = await client.post(
        "/v1/voice-settings/",
        headers=org.admin,
        json=doc("voice-settings", {"phone-number": "+13035559999"}),
    )
    assert unknown.status_code == 422 and "voice capability" in unknown.text
    twice = await client.post(
        "/v1/voice-settings/",
        headers=org.admin,
        json=doc("voice-settings", {"phone-number": attributes["phone-number"]}),
    )
    assert twice.status_code == 409
    bad = await client.post(
        "/v1/voice-settings/",
        headers=org.admin,
        json=doc("voice-settings", {"phone-number": "12345"}),
    )
    assert bad.status_code == 400
    hours = await client.post(
        "/v1/voice-settings/",
        headers=org.admin,
        json=doc(
            "voice-settings",
            {
                "phone-number": attributes["phone-number"],
                "business-hours": [{"day": "mon", "open": "18:00", "close": "08:00"}],
            },
        ),
    )
    assert hours.status_code == 400

    patched = await client.patch(
        f"/v1/voice-settings/{line['id']}/",
        headers=org.admin,
        json=doc("voice-settings", {"wait-message": "One moment please"}, line["id"]),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["attributes"]["wait-message"] == "One moment please"
    assert patched.json()["data"]["attributes"]["line-state"] == "pending"
    await run_jobs(client, "voice.configure-line")
    listed = await client.get(
        "/v1/voice-settings/", params={"organization-id": org.id}, headers=org.readonly
    )
    assert [s["attributes"]["line-state"] for s in listed.json()["data"]] == ["configured"]


async def test_the_ivr_walks_greeting_menu_queue_and_voicemail(
    client: httpx.AsyncClient, org: Org
) -> None:
    line = await make_line(client, org, **{"forward-number": "+14155552671"})
    settings = settings_of(client)
    ident = uuid.UUID(line["id"])
    sid = new_sid()

    forged = await webhook(client, twiml_url(settings, ident), call_form(sid), forged=True)
    assert forged.status_code == 401

    greeting = await webhook(client, twiml_url(settings, ident), call_form(sid))
    assert greeting.status_code == 200
    assert greeting.headers["content-type"].startswith("application/xml")
    assert "<Gather" in greeting.text and "press 3" in greeting.text
    assert 'input="dtmf speech"' in greeting.text

    choices = [({"Digits": "1"}, "queue"), ({"SpeechResult": "leave a message"}, "voicemail")]
    choices += [({"Digits": "3"}, "forward"), ({"Digits": "9"}, "")]
    for form, step in choices:
        menu = await webhook(client, twiml_url(settings, ident, "menu"), call_form(sid, **form))
        redirect = menu.text.split("<Redirect")[1]
        if step:
            assert f"step={step}" in redirect, (form, menu.text)
        else:
            assert "not one of the choices" in menu.text and "step=" not in redirect

    voicemail = await webhook(client, twiml_url(settings, ident, "voicemail"), call_form(sid))
    assert "<Record" in voicemail.text and 'transcribe="true"' in voicemail.text
    assert voicemail.text.index("recorded") < voicemail.text.index("<Record")  # consent first
    assert callback_url(settings, "recording") in voicemail.text

    forward = await webhook(client, twiml_url(settings, ident, "forward"), call_form(sid))
    assert "<Dial" in forward.text and "+14155552671" in forward.text

    for step in ("nonsense", "connect"):  # unknown step; a step missing what it needs
        safe = await webhook(client, twiml_url(settings, ident, step), call_form(sid))
        assert safe.status_code == 200 and "sorry" in safe.text.lower()
        assert "step=voicemail" in safe.text
    malformed = await webhook(
        client, twiml_url(settings, ident, "connect", entry="not-a-uuid"), call_form(sid)
    )
    assert malformed.status_code == 200 and "step=voicemail" in malformed.text
    unknown_line = await webhook(client, twiml_url(settings, uuid.uuid4()), call_form(sid))
    assert unknown_line.status_code == 200 and "not in service" in unknown_line.text


async def test_after_hours_callers_hear_the_message_and_voicemail(
    client: httpx.AsyncClient, org: Org
) -> None:
    never = [{"day": "mon", "open": "00:00", "close": "00:01"}]
    line = await make_line(
        client, org, **{"business-hours": never, "after-hours-message": "We are closed now"}
    )
    answer = await webhook(
        client, twiml_url(settings_of(client), uuid.UUID(line["id"])), call_form(new_sid())
    )
    assert "We are closed now" in answer.text and "<Record" in answer.text
    assert "<Gather" not in answer.text


async def test_positions_are_exact_under_concurrent_arrivals_and_departures(
    client: httpx.AsyncClient, org: Org
) -> None:
    line = await make_line(client, org)
    sids = [new_sid() for _ in range(6)]
    await asyncio.gather(
        *(queued_call(client, line["id"], sid, f"+1415555{i:04d}") for i, sid in enumerate(sids))
    )
    await queued_call(client, line["id"], sids[0])  # the same call again: still one entry
    waiting = await entries(client, org, line["id"])
    assert len(waiting) == 6
    assert sorted(e["position"] for e in waiting) == [1, 2, 3, 4, 5, 6]
    assert all(e["state"] == "waiting" and e["queue-time"] >= 0 for e in waiting)
    by_position = sorted(waiting, key=lambda e: e["position"])

    # Two callers hang up at once (the voice service's status callbacks, through the
    # inbound path); the others move up.
    leaving = [by_position[0]["phone-number"], by_position[3]["phone-number"]]
    gone = [e for e in waiting if e["phone-number"] in leaving]
    settings = settings_of(client)
    sid_of = {f"+1415555{i:04d}": sid for i, sid in enumerate(sids)}
    answers = await asyncio.gather(
        *(
            webhook(
                client,
                callback_url(settings, "line"),
                call_form(sid_of[e["phone-number"]], e["phone-number"], "completed"),
            )
            for e in gone
        )
    )
    assert all(a.status_code == 204 for a in answers)
    await run_jobs(client, "providers.apply-inbound")
    after = {e["id"]: e for e in await entries(client, org, line["id"])}
    for e in gone:
        assert after[e["id"]]["state"] == "abandoned" and after[e["id"]]["position"] is None
    still = sorted(
        (e for e in after.values() if e["state"] == "waiting"), key=lambda e: e["position"]
    )
    assert [e["position"] for e in still] == [1, 2, 3, 4]
    assert [e["id"] for e in still] == [e["id"] for e in by_position if e not in gone]
    one = await client.get(f"/v1/voice-queue-entries/{still[0]['id']}/", headers=org.readonly)
    assert one.json()["data"]["attributes"]["position"] == 1

    missing = await client.get("/v1/voice-queue-entries/", headers=org.admin)
    assert missing.status_code == 400


async def test_the_longest_waiting_caller_goes_to_the_next_free_agent(
    client: httpx.AsyncClient, org: Org
) -> None:
    line = await make_line(client, org)
    sids = [new_sid() for _ in range(3)]
    for i, sid in enumerate(sids):
        await queued_call(client, line["id"], sid, f"+1303555{i:04d}")
    browser = await client.post(
        "/v1/voice-queue-agents/",
        headers=org.staff,
        json=doc("voice-queue-agents", {"setting-id": line["id"]}),
    )
    assert browser.status_code == 201, browser.text
    agent = browser.json()["data"]["attributes"]
    claims = jwt.decode(agent["access-token"], options={"verify_signature": False})
    assert claims["grants"]["identity"] == agent["identity"] and "voice" in claims["grants"]
    assert agent["state"] == "available" and agent["use-pstn"] is False
    phone = await client.post(
        "/v1/voice-queue-agents/",
        headers=org.staff,
        json=doc(
            "voice-queue-agents",
            {"setting-id": line["id"], "use-pstn": True, "phone-number": "+14155552671"},
        ),
    )
    assert phone.status_code == 201 and phone.json()["data"]["attributes"]["access-token"] is None
    no_phone = await client.post(
        "/v1/voice-queue-agents/",
        headers=org.staff,
        json=doc("voice-queue-agents", {"setting-id": line["id"], "use-pstn": True}),
    )
    assert no_phone.status_code == 400

    await run_jobs(client, "voice.dispatch")
    queue = sorted(await entries(client, org, line["id"]), key=lambda e: e["phone-number"])
    assert [e["state"] for e in queue] == ["connected", "connected", "waiting"]
    assert queue[0]["agent-id"] == browser.json()["data"]["id"]  # first caller, first agent
    assert queue[1]["agent-id"] == phone.json()["data"]["id"]
    assert queue[2]["position"] == 1
    got = await client.get(
        f"/v1/voice-queue-agents/{browser.json()['data']['id']}/", headers=org.readonly
    )
    assert got.json()["data"]["attributes"]["state"] == "busy"
    assert got.json()["data"]["attributes"]["call"] == {"id": queue[0]["id"]}
    assert got.json()["data"]["attributes"]["access-token"] is None

    # What the caller hears once redirected to the agent: the browser client, or the phone.
    settings = settings_of(client)
    ident = uuid.UUID(line["id"])
    to_browser = await webhook(
        client, twiml_url(settings, ident, "connect", entry=queue[0]["id"]), call_form(sids[0])
    )
    assert f"<Client>{agent['identity']}</Client>" in to_browser.text
    to_phone = await webhook(
        client, twiml_url(settings, ident, "connect", entry=queue[1]["id"]), call_form(sids[1])
    )
    assert "<Number>+14155552671</Number>" in to_phone.text

    # The first call ends: its agent is free again and takes the caller still waiting.
    ended = await webhook(
        client, callback_url(settings, "line"), call_form(sids[0], "+13035550000", "completed")
    )
    assert ended.status_code == 204
    await run_jobs(client, "providers.apply-inbound", "voice.dispatch")
    queue = sorted(await entries(client, org, line["id"]), key=lambda e: e["phone-number"])
    assert queue[0]["ended-at"] is not None and queue[2]["state"] == "connected"
    assert queue[2]["agent-id"] == browser.json()["data"]["id"]

    left = await client.delete(
        f"/v1/voice-queue-agents/{phone.json()['data']['id']}/", headers=org.staff
    )
    assert left.status_code == 200 and left.json()["data"]["attributes"]["state"] == "left"
    listed = await client.get(
        "/v1/voice-queue-agents/", params={"setting-id": line["id"]}, headers=org.readonly
    )
    assert {a["attributes"]["state"] for a in listed.json()["data"]} == {"busy", "left"}


async def test_no_agent_for_a_line_whose_number_was_released(
    client: httpx.AsyncClient, org: Org
) -> None:
    line = await make_line(client, org)
    async with app_of(client).state.database.sessionmaker() as session:
        await session.execute(
            scoped(
                update(TextAccountNumber)
                .where(TextAccountNumber.phone_number == line["attributes"]["phone-number"])
                .values(status="released"),
                TextAccountNumber,
                uuid.UUID(org.id),
            )
        )
        await session.commit()
    refused = await client.post(
        "/v1/voice-queue-agents/",
        headers=org.staff,
        json=doc("voice-queue-agents", {"setting-id": line["id"]}),
    )
    assert refused.status_code == 422 and "released" in refused.text


async def test_run_task_reconciles_the_queue_with_the_voice_service(
    client: httpx.AsyncClient, org: Org
) -> None:
    line = await make_line(client, org)
    await queued_call(client, line["id"], new_sid())  # a call the voice service never had
    task = await client.post(
        f"/v1/voice-settings/{line['id']}/run-task/",
        headers=org.admin,
        json={"method": "refresh_queue_entries", "kwargs": {}},
    )
    assert task.status_code == 201, task.text
    body = task.json()["data"]
    assert body["type"] == "voice-tasks" and body["attributes"]["state"] == "created"
    assert body["attributes"]["setting"] == {"id": line["id"]}
    await run_jobs(client, "voice.run-task")
    done = await client.get(f"/v1/voice-tasks/{body['id']}/", headers=org.readonly)
    attributes = done.json()["data"]["attributes"]
    assert attributes["state"] == "completed"
    assert attributes["result"]["checked"] == 1 and attributes["result"]["abandoned"] == 1
    assert [e["state"] for e in await entries(client, org, line["id"])] == ["abandoned"]
    wrong = await client.post(
        f"/v1/voice-settings/{line['id']}/run-task/", headers=org.admin, json={"method": "drop"}
    )
    assert wrong.status_code == 400


async def test_a_voicemail_is_fetched_transcribed_and_downloaded_through_a_counted_link(
    client: httpx.AsyncClient, org: Org
) -> None:
    line = await make_line(client, org)
    settings = settings_of(client)
    sid = new_sid()
    await webhook(client, twiml_url(settings, uuid.UUID(line["id"])), call_form(sid))
    # The voice service holds the recording of what the caller said ...
    adapter: Any = providers_for(settings).get(VOICE)
    recording_sid = f"RE{uuid.uuid4().hex}"
    from courier.providers.voice.sandbox import _wav

    audio = _wav(await adapter._speak("please call the clinic tomorrow morning"))
    await adapter.store.put(
        "recordings",
        recording_sid,
        {"sid": recording_sid, "call-sid": sid, "duration": 3.0, "transcription": None,
         "audio": __import__("base64").b64encode(audio).decode()},
    )  # fmt: skip
    # ... and says so on the recording status callback.
    told = await webhook(
        client,
        callback_url(settings, "recording"),
        call_form(sid, RecordingSid=recording_sid, RecordingStatus="completed"),
    )
    assert told.status_code == 204
    await run_jobs(client, "providers.apply-inbound")
    listed = await client.get(
        "/v1/voice-recordings/",
        params={"organization-id": org.id, "filter[setting-id]": line["id"]},
        headers=org.readonly,
    )
    assert [r["attributes"]["state"] for r in listed.json()["data"]] == ["inprogress"]
    await run_jobs(client, "voice.fetch-recording")
    ident = listed.json()["data"][0]["id"]
    got = await client.get(f"/v1/voice-recordings/{ident}/", headers=org.readonly)
    recording = got.json()["data"]["attributes"]
    assert recording["state"] == "completed" and recording["kind"] == "voicemail"
    assert {"tomorrow", "morning"} <= set(recording["transcription"].split())
    assert recording["duration"] > 2 and recording["download-count"] == 0
    assert recording["phone-number"] == CALLER

    link = urlsplit(recording["download-url"])
    downloaded = await client.get(f"{link.path}?{link.query}")
    assert downloaded.status_code == 200 and downloaded.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(downloaded.content)) as heard:
        assert heard.getnframes() / heard.getframerate() > 2
    tampered = await client.get(f"{link.path}?{link.query[:-3]}abc")
    assert tampered.status_code == 403
    again = await client.get(f"/v1/voice-recordings/{ident}/", headers=org.readonly)
    assert again.json()["data"]["attributes"]["download-count"] == 1

    for query, expected in (({"filter[states]": "completed"}, 1),
                            ({"filter[states]": "failed,inprogress"}, 0)):  # fmt: skip
        found = await client.get(
            "/v1/voice-recordings/", params={"organization-id": org.id, **query},
            headers=org.readonly,
        )  # fmt: skip
        assert len(found.json()["data"]) == expected
    bad = await client.get(
        "/v1/voice-recordings/",
        params={"organization-id": org.id, "filter[states]": "lost"},
        headers=org.readonly,
    )
    assert bad.status_code == 400


async def test_tts_speaks_wav_of_plausible_length(client: httpx.AsyncClient, org: Org) -> None:
    short = await client.post(
        "/v1/tts-synthesizers/",
        headers=org.staff,
        json=doc("tts-synthesizers", {"text": "Your appointment is confirmed", "locale": "en-US"}),
    )
    assert short.status_code == 201, short.text
    assert short.headers["content-type"] == "audio/wav"
    long_text = "Please remember to bring your insurance card and a list of your medicines. " * 3
    longer = await client.post(
        "/v1/tts-synthesizers/",
        headers=org.staff,
        json=doc("tts-synthesizers", {"text": long_text, "locale": "en-US"}),
    )
    durations = []
    for answer in (short, longer):
        with wave.open(io.BytesIO(answer.content)) as audio:
            assert audio.getnchannels() == 1 and audio.getsampwidth() == 2
            durations.append(audio.getnframes() / audio.getframerate())
    words = (4, len(long_text.split()))
    for seconds, count in zip(durations, words, strict=True):
        assert 0.15 * count < seconds < 1.0 * count + 1  # 60 to 400 words a minute
    assert durations[1] > 4 * durations[0]

    for attributes, code in (
        ({"text": "hola", "locale": "xx-YY"}, "unsupported-locale"),
        ({"text": "x " * 2000, "locale": "en-US"}, "text-too-long"),
        ({"text": "hello", "format": "mp3"}, "unsupported-format"),
    ):
        refused = await client.post(
            "/v1/tts-synthesizers/", headers=org.staff, json=doc("tts-synthesizers", attributes)
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"][0]["code"] == code
    spanish = await client.post(
        "/v1/tts-synthesizers/",
        headers=org.staff,
        json=doc("tts-synthesizers", {"text": "Su cita está confirmada", "locale": "es"}),
    )
    assert spanish.status_code == 201
    readonly = await client.post(
        "/v1/tts-synthesizers/", headers=org.readonly, json=doc("tts-synthesizers", {"text": "hi"})
    )
    assert readonly.status_code == 403


@pytest.mark.parametrize("role", ["readonly"])
async def test_readonly_keys_cannot_change_lines(
    client: httpx.AsyncClient, org: Org, role: str
) -> None:
    refused = await client.post(
        "/v1/voice-settings/",
        headers=getattr(org, role),
        json=doc("voice-settings", {"phone-number": "+13035550100"}),
    )
    assert refused.status_code == 403


async def test_purging_an_individual_erases_their_recordings_and_queue_entries(
    client: httpx.AsyncClient, org: Org
) -> None:
    from tests.factories import make_individual_id
    from tests.test_purge import purge

    caller = "+14155550177"
    patient = await make_individual_id(client, org, phone=caller)
    line = await make_line(client, org)
    settings = settings_of(client)
    sid = new_sid()
    await queued_call(client, line["id"], sid, caller)
    [entry] = await entries(client, org, line["id"])
    assert entry["individual-id"] == patient
    adapter: Any = providers_for(settings).get(VOICE)
    recording_sid = f"RE{uuid.uuid4().hex}"
    from courier.providers.voice.sandbox import _wav

    audio = _wav(b"\0\0" * 22050)
    await adapter.store.put(
        "recordings", recording_sid,
        {"sid": recording_sid, "call-sid": sid, "duration": 1.0, "transcription": None,
         "audio": __import__("base64").b64encode(audio).decode()},
    )  # fmt: skip
    await webhook(
        client,
        callback_url(settings, "recording"),
        call_form(sid, caller, RecordingSid=recording_sid, RecordingStatus="completed"),
    )
    await run_jobs(client, "providers.apply-inbound", "voice.fetch-recording")
    listed = await client.get(
        "/v1/voice-recordings/",
        params={"organization-id": org.id, "filter[individual-id]": patient},
        headers=org.readonly,
    )
    [recording] = listed.json()["data"]
    assert recording["attributes"]["state"] == "completed"

    receipt = await purge(client, app_of(client), org, patient)
    assert receipt["attributes"]["state"] == "completed", receipt
    await run_jobs(client, "voice.delete-recording")
    gone = await client.get(f"/v1/voice-recordings/{recording['id']}/", headers=org.readonly)
    assert gone.status_code == 404
    assert await entries(client, org, line["id"]) == []
    assert await adapter.store.get("recordings", recording_sid) is None  # the service's copy
