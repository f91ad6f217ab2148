"""End to end over HTTP against a real `courier serve` and a real `courier worker`, through the
voice sandbox: a line on a provisioned number; a caller walks the IVR into the queue; an agent
joins by browser and, with its access token, picks up; what the caller says is recorded and
transcribed (spoken by the TTS engine into the recording, found again by the recogniser); the
recording downloads through its counted link; the queue and the agent settle; a second caller
leaves a transcribed voicemail; a forged call webhook is 401."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.sms_support import Courier, doc, new_org, until

CALLER = "+14155550150"
# PocketSphinx hears this eSpeak sentence in every rendering measured (300 of 300); "please
# call me back tomorrow morning", which the voicemail said before, in only 60% of them.
SENTENCE = "please call the clinic tomorrow morning"


def test_a_caller_reaches_an_agent_and_the_call_is_recorded_and_transcribed(
    database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    courier = Courier(database_url, data_dir, tmp_path, {})
    courier.serve()
    courier.worker()
    try:
        with httpx.Client(base_url=courier.base, timeout=60) as http:
            flow(courier, http)
    finally:
        courier.stop()


def flow(courier: Courier, http: httpx.Client) -> None:
    admin = new_org(http)
    headers = {"Authorization": admin["Authorization"]}

    def sandbox(action: str, **params: Any) -> dict[str, Any]:
        answer = http.post(f"/sandbox/voice/{action}", json=params, headers=headers)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()["data"]
        return result

    def show(sid: str) -> dict[str, Any]:
        answer = http.get("/sandbox/voice/calls", params={"call": sid}, headers=headers)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()["data"]
        return result

    assert http.post("/v1/text-accounts/", json=doc("text-accounts", {}), headers=headers)
    made = http.post(
        "/v1/text-account-numbers/",
        json=doc("text-account-numbers", {"area-code": "415"}),
        headers=headers,
    )
    assert made.status_code == 201, made.text

    def provisioned() -> str | None:
        got = http.get(f"/v1/text-account-numbers/{made.json()['data']['id']}/", headers=headers)
        attributes = got.json()["data"]["attributes"]
        return str(attributes["phone-number"]) if attributes["status"] == "active" else None

    number = until(provisioned, "the number\n" + courier.logs_text())
    line = http.post(
        "/v1/voice-settings/",
        json=doc(
            "voice-settings",
            {
                "phone-number": number,
                "greeting-message": "Thank you for calling the clinic",
                "wait-message": "Please hold, a nurse will be with you shortly",
                "recording-message": "This call is recorded for your care",
                "recording-enabled": True,
            },
        ),
        headers=headers,
    )
    assert line.status_code == 201, line.text
    line_id = line.json()["data"]["id"]

    def configured() -> bool:
        got = http.get(f"/v1/voice-settings/{line_id}/", headers=headers)
        return bool(got.json()["data"]["attributes"]["line-state"] == "configured")

    until(configured, "the line to be configured\n" + courier.logs_text())

    # The caller dials the line and walks the IVR into the queue.
    call = sandbox("call", **{"from": CALLER, "to": number})
    sid = call["call-sid"]
    assert call["said"][0] == "Thank you for calling the clinic"
    assert call["waiting-for"] == "digits or speech"
    call = sandbox("press", call=sid, digits="1")
    assert "Please hold, a nurse will be with you shortly" in call["said"]
    assert call["waiting-for"] == "connected" and call["said"][-1].startswith("[enqueue")
    queue = http.get("/v1/voice-queue-entries/", params={"setting-id": line_id}, headers=headers)
    [entry] = queue.json()["data"]
    assert entry["attributes"]["state"] == "waiting" and entry["attributes"]["position"] == 1
    assert entry["attributes"]["phone-number"] == CALLER

    # An agent joins by browser; the caller is put through to the agent's client.
    joined = http.post(
        "/v1/voice-queue-agents/",
        json=doc("voice-queue-agents", {"setting-id": line_id}),
        headers=headers,
    )
    assert joined.status_code == 201, joined.text
    agent = joined.json()["data"]
    token, identity = agent["attributes"]["access-token"], agent["attributes"]["identity"]

    def dialled() -> dict[str, Any] | None:
        shown = show(sid)
        return shown if any(s.startswith("[dial") for s in shown["said"]) else None

    shown = until(dialled, "the caller to be put through\n" + courier.logs_text())
    assert "This call is recorded for your care" in shown["said"]  # announced before
    assert shown["said"][-1] == f"[dial {identity}]"
    forged_answer = http.post(
        "/sandbox/voice/client-answer", json={"call": sid, "token": token[:-4] + "AAAA"},
        headers=headers,
    )  # fmt: skip
    assert forged_answer.status_code == 400
    talking = sandbox("client-answer", call=sid, token=token)
    assert talking["waiting-for"] == "talking"
    entry = http.get(f"/v1/voice-queue-entries/{entry['id']}/", headers=headers).json()["data"]
    assert entry["attributes"]["state"] == "connected" and entry["attributes"]["position"] is None
    got_agent = http.get(f"/v1/voice-queue-agents/{agent['id']}/", headers=headers).json()
    assert got_agent["data"]["attributes"]["state"] == "busy"
    assert got_agent["data"]["attributes"]["call"] == {"id": entry["id"]}

    # The caller speaks; the call is recorded, then transcribed.
    sandbox("say", call=sid, text=SENTENCE)
    sandbox("wait", call=sid, seconds=1)
    ended = sandbox("hang-up", call=sid)
    assert ended["status"] == "completed" and len(ended["recordings"]) == 1

    def transcribed() -> dict[str, Any] | None:
        listed = http.get(
            "/v1/voice-recordings/",
            params={"organization-id": admin["org"], "filter[setting-id]": line_id},
            headers=headers,
        ).json()["data"]
        if listed and listed[0]["attributes"]["state"] == "failed":
            raise AssertionError(listed)
        done = listed and listed[0]["attributes"]["state"] == "completed"
        return listed[0] if done else None

    recording = until(transcribed, "the recording\n" + courier.logs_text())
    attributes = recording["attributes"]
    assert {"tomorrow", "morning"} <= set(attributes["transcription"].split()), attributes
    assert attributes["kind"] == "call" and attributes["duration"] > 2
    assert attributes["phone-number"] == CALLER
    audio = httpx.get(attributes["download-url"], timeout=30)
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    again = http.get(f"/v1/voice-recordings/{recording['id']}/", headers=headers).json()
    assert again["data"]["attributes"]["download-count"] == 1

    # The call's end frees the agent; the entry keeps how long the caller waited.
    def settled() -> bool:
        got = http.get(f"/v1/voice-queue-agents/{agent['id']}/", headers=headers).json()
        return bool(got["data"]["attributes"]["state"] == "available")

    until(settled, "the agent to be free again\n" + courier.logs_text())
    entry = http.get(f"/v1/voice-queue-entries/{entry['id']}/", headers=headers).json()["data"]
    assert entry["attributes"]["ended-at"] is not None

    # A second caller leaves a voicemail: the consent announcement, the recording, the voice
    # service's own transcription callback.
    second = sandbox("call", **{"from": "+14155550151", "to": number})
    message = sandbox("press", call=second["call-sid"], digits="2")
    assert message["waiting-for"] == "recording"
    assert message["said"].index("This call is recorded for your care") < len(message["said"])
    sandbox("say", call=second["call-sid"], text=SENTENCE)
    sandbox("wait", call=second["call-sid"], seconds=6)  # the <Record> times out
    assert show(second["call-sid"])["said"][-1].startswith("Thank you. Your message")

    def voicemail() -> dict[str, Any] | None:
        listed = http.get(
            "/v1/voice-recordings/",
            params={"organization-id": admin["org"], "filter[states]": "completed"},
            headers=headers,
        ).json()["data"]
        found = [r for r in listed if r["attributes"]["phone-number"] == "+14155550151"]
        return found[0] if found and found[0]["attributes"]["transcription"] else None

    left = until(voicemail, "the voicemail\n" + courier.logs_text())
    assert left["attributes"]["kind"] == "voicemail"
    assert {"tomorrow", "morning"} <= set(left["attributes"]["transcription"].split()), left

    # A forged call webhook is refused.
    forged = http.post(
        f"/v1/voice-ivrs/{line_id}/twiml/",
        content=urlencode({"CallSid": sid, "From": CALLER, "CallStatus": "ringing"}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl",
        },
    )
    assert forged.status_code == 401
