"""End to end over HTTP against a real `courier serve` and a real `courier worker`, through the
voice sandbox: a survey call is answered, the callee presses digits, keeps silent and speaks,
and the survey completes with its answers (another, hung up mid-way, fails keeping its
answer); a conference dials two phones, runs once they answer and completes once both hang up,
with one dial log per leg; a forged call webhook is 401."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.notify_support import new_phone
from tests.sms_support import Courier, doc, new_org, until


def _setup(courier: Courier, http: httpx.Client) -> dict[str, str]:
    admin = new_org(http)
    headers = {"Authorization": admin["Authorization"]}
    account = http.post("/v1/text-accounts/", json=doc("text-accounts", {}), headers=headers)
    assert account.status_code == 201, account.text
    created = http.post(
        "/v1/text-account-numbers/",
        json=doc("text-account-numbers", {"area-code": "415"}),
        headers=headers,
    )
    assert created.status_code == 201, created.text
    number_id = created.json()["data"]["id"]

    def active() -> bool:
        got = http.get(f"/v1/text-account-numbers/{number_id}/", headers=headers).json()
        return bool(got["data"]["attributes"]["status"] == "active")

    until(active, "the number to be provisioned\n" + courier.logs_text())
    return headers


def _person(http: httpx.Client, headers: dict[str, str], **attributes: Any) -> str:
    values = {"first-name": "Ana", "last-name": "Lopez", "phone": new_phone(), **attributes}
    response = http.post("/v1/individuals/", json=doc("individuals", values), headers=headers)
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


def _act(http: httpx.Client, headers: dict[str, str], path: str, **params: Any) -> dict[str, Any]:
    response = http.post(f"/sandbox/voice/{path}", json=params, headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _ringing_legs(
    courier: Courier, http: httpx.Client, headers: dict[str, str], query: str, count: int
) -> list[dict[str, Any]]:
    def ringing() -> list[dict[str, Any]] | None:
        data = http.get(f"/v1/voice-dial-logs/?{query}", headers=headers).json()["data"]
        if len(data) == count and all(
            d["attributes"]["call-sid"] and d["attributes"]["status"] == "ringing" for d in data
        ):
            return list(data)
        return None

    found: list[dict[str, Any]] = until(ringing, "the calls to ring\n" + courier.logs_text())
    return found


def test_survey_and_conference_calls_through_the_sandbox(
    database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    courier = Courier(database_url, data_dir, tmp_path, {})
    courier.serve()
    courier.worker()
    try:
        with httpx.Client(base_url=courier.base, timeout=60) as http:
            headers = _setup(courier, http)
            ana = _person(http, headers)
            nurse = _person(http, headers, **{"first-name": "Nurse", "account-type": "provider"})

            # --- a survey ------------------------------------------------------------------
            spec = {
                "greeting": "Hello from your clinic.",
                "questions": [
                    {
                        "name": "pain",
                        "prompt": "Press a number from 0 to 9 for your pain.",
                        "answer": "dtmf",
                        "min": 0,
                        "max": 9,
                    },
                    {
                        "name": "sleep",
                        "prompt": "Did you sleep well? Say yes or no.",
                        "answer": "speech",
                        "choices": ["yes", "no"],
                    },
                ],
                "goodbye": "Thank you, goodbye.",
            }
            created = http.post(
                "/v1/voice-surveys/",
                json=doc("voice-surveys", {"individual-id": ana, "spec": spec}),
                headers=headers,
            )
            assert created.status_code == 201, created.text
            survey = created.json()["data"]["id"]
            [leg] = _ringing_legs(courier, http, headers, f"filter[survey-id]={survey}", 1)
            sid = leg["attributes"]["call-sid"]

            forged = http.post(
                f"/providers/voice/calls/{leg['id']}",
                data={"CallSid": sid, "CallStatus": "in-progress"},
            )
            assert forged.status_code == 401

            call = _act(http, headers, "answer", call=sid)
            assert call["said"][:2] == [
                "Hello from your clinic.",
                "Press a number from 0 to 9 for your pain.",
            ]
            assert call["waiting-for"] == "digits"
            call = _act(http, headers, "press", call=sid, digits="12")  # out of range
            assert call["said"][-2:] == [
                "Sorry, that is not a valid answer.",
                "Press a number from 0 to 9 for your pain.",
            ]
            call = _act(http, headers, "press", call=sid, digits="4")
            assert call["said"][-1] == "Did you sleep well? Say yes or no."
            assert call["waiting-for"] == "speech"
            call = _act(http, headers, "wait", call=sid, seconds=6)  # silence: asked again
            assert call["said"][-2:] == [
                "We did not hear an answer.",
                "Did you sleep well? Say yes or no.",
            ]
            call = _act(http, headers, "say", call=sid, text="yes I slept fine")
            assert call["said"][-1] == "Thank you, goodbye." and call["status"] == "completed"

            def survey_done() -> dict[str, Any] | None:
                got = http.get(f"/v1/voice-surveys/{survey}/", headers=headers).json()
                attributes: dict[str, Any] = got["data"]["attributes"]
                return attributes if attributes["state"] == "completed" else None

            done = until(survey_done, "the survey to complete\n" + courier.logs_text())
            assert [(a["question"], a["answer"], a["valid"]) for a in done["result"]] == [
                ("pain", 4, True),
                ("sleep", "yes", True),
            ]

            def leg_completed() -> bool:
                got = http.get(f"/v1/voice-dial-logs/{leg['id']}/", headers=headers).json()
                return bool(got["data"]["attributes"]["status"] == "completed")

            until(leg_completed, "the survey call's leg to complete\n" + courier.logs_text())

            # A hang-up mid-survey: failed, with the answer given.
            again = http.post(
                "/v1/voice-surveys/",
                json=doc("voice-surveys", {"individual-id": ana, "spec": spec}),
                headers=headers,
            ).json()["data"]["id"]
            [leg] = _ringing_legs(courier, http, headers, f"filter[survey-id]={again}", 1)
            sid = leg["attributes"]["call-sid"]
            _act(http, headers, "answer", call=sid)
            _act(http, headers, "press", call=sid, digits="2")
            assert _act(http, headers, "hang-up", call=sid)["status"] == "completed"

            def survey_failed() -> dict[str, Any] | None:
                got = http.get(f"/v1/voice-surveys/{again}/", headers=headers).json()
                attributes: dict[str, Any] = got["data"]["attributes"]
                return attributes if attributes["state"] == "failed" else None

            failed = until(survey_failed, "the survey to fail\n" + courier.logs_text())
            assert failed["failure"] == "hung-up"
            assert [(a["question"], a["answer"]) for a in failed["result"]] == [("pain", 2)]

            # --- a conference --------------------------------------------------------------
            started = http.post(
                "/v1/voice-conferences/",
                json=doc("voice-conferences", {"individual-id": ana, "provider-id": nurse}),
                headers=headers,
            )
            assert started.status_code == 201, started.text
            conference = started.json()["data"]["id"]
            assert started.json()["data"]["attributes"]["state"] == "created"
            legs = _ringing_legs(courier, http, headers, f"filter[conference-id]={conference}", 2)
            room = f"courier-{conference.replace('-', '')}"
            for each in legs:
                call = _act(http, headers, "answer", call=each["attributes"]["call-sid"])
                assert call["status"] == "in-progress" and call["waiting-for"] == "connected"
                assert call["said"][-1] == f"[dial {room}]"

            def state() -> str:
                got = http.get(f"/v1/voice-conferences/{conference}/", headers=headers).json()
                return str(got["data"]["attributes"]["state"])

            until(lambda: state() == "running", "the conference to run\n" + courier.logs_text())
            token = http.get(
                f"/v1/voice-conferences/{conference}/get-credentials/",
                params={"individual-id": nurse},
                headers=headers,
            )
            assert token.status_code == 200, token.text
            assert token.json()["room"] == room
            for seconds, each in zip((30, 45), legs, strict=True):
                sid = each["attributes"]["call-sid"]
                _act(http, headers, "wait", call=sid, seconds=seconds)
                assert _act(http, headers, "hang-up", call=sid)["status"] == "completed"
            until(
                lambda: state() == "completed", "the conference to complete\n" + courier.logs_text()
            )
            logs = http.get(
                f"/v1/voice-dial-logs/?filter[conference-id]={conference}", headers=headers
            ).json()["data"]
            assert len(logs) == 2
            assert {d["attributes"]["status"] for d in logs} == {"completed"}
            assert sorted(d["attributes"]["call-duration"] for d in logs) == [30, 45]
            assert {d["attributes"]["individual-id"] for d in logs} == {ana, nurse}
            assert {d["attributes"]["direction"] for d in logs} == {"outbound-api"}
    finally:
        courier.stop()
