"""Voice conferences, dial logs and surveys over HTTP (in process): starting them, the legs'
status callbacks moving legs, conferences and surveys, the TwiML each leg is answered with,
get-credentials, filters, permissions, bad input, events and the purge. The same flows
against a real server and worker, driven through the sandbox: test_voice_calls_e2e.py."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from courier.core.tenancy import scoped
from courier.models.event import Event
from courier.providers.common import providers_for
from courier.providers.voice import VOICE
from tests.conftest import Org, doc
from tests.factories import individual_token
from tests.notify_support import app_of
from tests.test_purge import purge as purge_individual
from tests.voice_calls_support import (
    SURVEY,
    caller_id,
    legs,
    person,
    report,
    run_jobs,
    start_conference,
    start_survey,
    twiml,
)


async def get(client: httpx.AsyncClient, org: Org, path: str) -> dict[str, Any]:
    response = await client.get(path, headers=org.admin)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def events(client: httpx.AsyncClient, org: Org, ident: str) -> list[str]:
    async with app_of(client).state.database.sessionmaker() as session:
        rows = (
            await session.execute(
                scoped(
                    select(Event.type)
                    .where(Event.resource_id == uuid.UUID(ident))
                    .order_by(Event.seq),
                    Event,
                    uuid.UUID(org.id),
                )
            )
        ).scalars()
        return list(rows)


# --- conferences --------------------------------------------------------------------------------


async def test_a_conference_dials_both_and_follows_its_legs(
    client: httpx.AsyncClient, org: Org
) -> None:
    await caller_id(client, org)
    ana = await person(client, org)
    nurse = await person(client, org, provider=True)
    created = await start_conference(client, org, ana, nurse, extended={"visit": "v-42"})
    assert created.status_code == 201, created.text
    conference = created.json()["data"]
    ident = conference["id"]
    attributes = conference["attributes"]
    assert attributes["state"] == "created"
    assert attributes["individual-id"] == ana and attributes["provider-id"] == nurse
    assert attributes["organization-id"] == org.id
    assert attributes["extended"] == {"visit": "v-42"}

    listed = await get(client, org, f"/v1/voice-dial-logs/?filter[conference-id]={ident}")
    assert sorted(d["attributes"]["role"] for d in listed) == ["individual", "provider"]
    assert {d["attributes"]["status"] for d in listed} == {"queued"}
    assert all(d["attributes"]["extended"] == {"visit": "v-42"} for d in listed)

    patient_leg, provider_leg = await legs(client, org, conference=ident)
    assert patient_leg.role == "individual" and provider_leg.role == "provider"
    await run_jobs(client, horizon=0.5)  # the send jobs place both calls
    [patient_leg, provider_leg] = await legs(client, org, conference=ident)
    assert patient_leg.from_number and patient_leg.from_number.startswith("+1303")

    await report(client, patient_leg, "ringing")
    await report(client, provider_leg, "ringing")
    assert (await get(client, org, f"/v1/voice-conferences/{ident}/"))["attributes"][
        "state"
    ] == "created"
    await report(client, patient_leg, "in-progress")
    shown = (await get(client, org, f"/v1/voice-conferences/{ident}/"))["attributes"]
    assert shown["state"] == "running" and shown["started-at"]
    await report(client, provider_leg, "in-progress")
    await report(
        client, provider_leg, "completed", CallDuration="61", Price="-0.0130", PriceUnit="USD"
    )
    assert (await get(client, org, f"/v1/voice-conferences/{ident}/"))["attributes"][
        "state"
    ] == "running"
    await report(client, patient_leg, "completed", CallDuration="63")
    shown = (await get(client, org, f"/v1/voice-conferences/{ident}/"))["attributes"]
    assert shown["state"] == "completed" and shown["ended-at"]

    provider_log = await get(client, org, f"/v1/voice-dial-logs/{provider_leg.id}/")
    attributes = provider_log["attributes"]
    assert attributes["status"] == "completed" and attributes["direction"] == "outbound-api"
    assert attributes["call-duration"] == 61
    assert attributes["cost"] == "0.0130" and attributes["cost-unit"] == "USD"
    assert attributes["call-sid"] == "CA" + provider_leg.id.hex
    assert attributes["conference-id"] == ident and attributes["individual-id"] == nurse
    patient_log = (await get(client, org, f"/v1/voice-dial-logs/{patient_leg.id}/"))["attributes"]
    assert patient_log["call-duration"] == 63 and patient_log["cost"] is None

    assert await events(client, org, ident) == [
        "voice-conferences.created",
        "voice-conferences.running",
        "voice-conferences.completed",
    ]
    leg_events = await events(client, org, str(provider_leg.id))
    assert leg_events == [
        "voice-dial-logs.created",
        "voice-dial-logs.ringing",
        "voice-dial-logs.in-progress",
        "voice-dial-logs.completed",
    ]


async def test_a_conference_nobody_answers_fails(client: httpx.AsyncClient, org: Org) -> None:
    await caller_id(client, org)
    ana, nurse = await person(client, org), await person(client, org, provider=True)
    ident = (await start_conference(client, org, ana, nurse)).json()["data"]["id"]
    patient_leg, provider_leg = await legs(client, org, conference=ident)
    await report(client, patient_leg, "busy")
    assert (await get(client, org, f"/v1/voice-conferences/{ident}/"))["attributes"][
        "state"
    ] == "created"
    await report(client, provider_leg, "no-answer")
    assert (await get(client, org, f"/v1/voice-conferences/{ident}/"))["attributes"][
        "state"
    ] == "failed"
    statuses = {
        d["attributes"]["role"]: d["attributes"]["status"]
        for d in await get(client, org, f"/v1/voice-dial-logs/?filter[conference-id]={ident}")
    }
    assert statuses == {"individual": "busy", "provider": "no-answer"}
    # A late report changes nothing: the first final status stands.
    await report(client, patient_leg, "completed")
    assert (await get(client, org, f"/v1/voice-dial-logs/{patient_leg.id}/"))["attributes"][
        "status"
    ] == "busy"


async def test_a_call_that_cannot_be_placed_fails_its_conference(
    client: httpx.AsyncClient, org: Org
) -> None:
    await caller_id(client, org)
    ana = await person(client, org)
    phone = (await get(client, org, f"/v1/individuals/{ana}/"))["attributes"]["phone"]
    armed = await client.post(
        "/sandbox/voice/failures",
        headers=org.admin,
        json={"error": "permanent", "code": "21215", "target": phone},
    )
    assert armed.status_code == 200, armed.text
    ident = (await start_conference(client, org, ana, None)).json()["data"]["id"]
    await run_jobs(client, horizon=0.5)
    [leg] = await get(client, org, f"/v1/voice-dial-logs/?filter[conference-id]={ident}")
    assert leg["attributes"]["status"] == "failed"
    assert leg["attributes"]["error-code"] == "21215"
    assert (await get(client, org, f"/v1/voice-conferences/{ident}/"))["attributes"][
        "state"
    ] == "failed"


async def test_the_conference_twiml_joins_the_room(client: httpx.AsyncClient, org: Org) -> None:
    await caller_id(client, org)
    ana, nurse = await person(client, org), await person(client, org, provider=True)
    ident = (await start_conference(client, org, ana, nurse)).json()["data"]["id"]
    patient_leg, provider_leg = await legs(client, org, conference=ident)
    forged = await twiml(client, patient_leg, signed=False)
    assert forged.status_code == 401
    answered = await twiml(client, patient_leg)
    assert answered.status_code == 200, answered.text
    assert answered.headers["content-type"].startswith("application/xml")
    room = f"courier-{uuid.UUID(ident).hex}"
    assert f">{room}</Conference></Dial>" in answered.text
    assert "Please hold" in answered.text and 'endConferenceOnExit="false"' in answered.text
    # Answering is enough to make the conference run (the status callback may come later).
    assert (await get(client, org, f"/v1/voice-conferences/{ident}/"))["attributes"][
        "state"
    ] == "running"
    provider_twiml = await twiml(client, provider_leg)
    assert 'endConferenceOnExit="true"' in provider_twiml.text and "Please hold" not in (
        provider_twiml.text
    )
    unknown = await twiml(client, patient_leg.__class__(id=uuid.uuid4(), to_number="+1"))
    assert unknown.status_code == 200 and "<Hangup" in unknown.text


async def test_get_credentials_for_participants_only(client: httpx.AsyncClient, org: Org) -> None:
    await caller_id(client, org)
    ana, nurse = await person(client, org), await person(client, org, provider=True)
    stranger = await person(client, org)
    ident = (await start_conference(client, org, ana, nurse)).json()["data"]["id"]
    path = f"/v1/voice-conferences/{ident}/get-credentials/"
    got = await client.get(path, params={"individual-id": nurse}, headers=org.staff)
    assert got.status_code == 200, got.text
    body = got.json()
    adapter: Any = providers_for(app_of(client).state.settings).get(VOICE)
    claims = adapter.check_token(body["access-token"])
    assert claims["sub"] or claims
    assert body["room"] == f"courier-{uuid.UUID(ident).hex}"
    assert body["identity"] == f"individual-{nurse}"

    assert (await client.get(path, headers=org.staff)).status_code == 400
    bad = await client.get(path, params={"individual-id": "nope"}, headers=org.staff)
    assert bad.status_code == 400
    other = await client.get(path, params={"individual-id": stranger}, headers=org.staff)
    assert other.status_code == 403
    # An individual token: its own conference, itself implied.
    own = {"Authorization": f"Bearer {await individual_token(client, org, ana)}"}
    mine = await client.get(path, headers=own)
    assert mine.status_code == 200, mine.text
    assert mine.json()["identity"] == f"individual-{ana}"
    as_nurse = await client.get(path, params={"individual-id": nurse}, headers=own)
    assert as_nurse.status_code == 403
    theirs = {"Authorization": f"Bearer {await individual_token(client, org, stranger)}"}
    assert (await client.get(path, headers=theirs)).status_code == 404
    assert (await client.get(f"/v1/voice-conferences/{ident}/", headers=theirs)).status_code == 404
    assert (await client.get(f"/v1/voice-conferences/{ident}/", headers=own)).status_code == 200

    # Over: no more tokens.
    for leg in await legs(client, org, conference=ident):
        await report(client, leg, "no-answer")
    over = await client.get(path, params={"individual-id": ana}, headers=org.staff)
    assert over.status_code == 409


async def test_conference_input_and_permissions(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    ana, nurse = await person(client, org), await person(client, org, provider=True)
    # No text account yet: nothing to call from.
    refused = await start_conference(client, org, ana, nurse)
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "no-caller-id"
    await caller_id(client, org)
    silent = await person(client, org, phone=False)
    no_phone = await start_conference(client, org, silent, nurse)
    assert no_phone.status_code == 422
    assert no_phone.json()["errors"][0]["source"]["pointer"] == "/data/attributes/individual-id"
    provider_no_phone = await start_conference(client, org, ana, silent)
    assert provider_no_phone.json()["errors"][0]["source"]["pointer"] == (
        "/data/attributes/provider-id"
    )
    same = await start_conference(client, org, ana, ana)
    assert same.status_code == 422
    unknown = await start_conference(client, org, str(uuid.uuid4()), nurse)
    assert unknown.status_code == 404
    malformed = await start_conference(client, org, "not-a-uuid", nurse)
    assert malformed.status_code == 400
    missing = await client.post(
        "/v1/voice-conferences/", headers=org.staff, json=doc("voice-conferences", {})
    )
    assert missing.status_code == 400
    snake = await client.post(
        "/v1/voice-conferences/",
        headers=org.staff,
        json=doc("voice-conferences", {"individual_id": ana}),
    )
    assert snake.status_code == 400
    bad_extended = await start_conference(client, org, ana, nurse, extended=[1])
    assert bad_extended.status_code == 400
    wrong_org = await start_conference(client, org, ana, nurse, **{"organization-id": other_org.id})
    assert wrong_org.status_code == 404
    readonly = await client.post(
        "/v1/voice-conferences/",
        headers=org.readonly,
        json=doc("voice-conferences", {"individual-id": ana}),
    )
    assert readonly.status_code == 403
    foreign = await start_conference(client, other_org, ana, None)
    assert foreign.status_code in (404, 422)

    # A participant's token may not start one; a provider's starts one as itself.
    patient = {"Authorization": f"Bearer {await individual_token(client, org, ana)}"}
    body = doc("voice-conferences", {"individual-id": ana})
    assert (
        await client.post("/v1/voice-conferences/", headers=patient, json=body)
    ).status_code == 403
    clinician = {"Authorization": f"Bearer {await individual_token(client, org, nurse)}"}
    started = await client.post(
        "/v1/voice-conferences/",
        headers=clinician,
        json=doc("voice-conferences", {"individual-id": ana}),
    )
    assert started.status_code == 201, started.text
    assert started.json()["data"]["attributes"]["provider-id"] == nurse
    as_other = await client.post(
        "/v1/voice-conferences/",
        headers=clinician,
        json=doc("voice-conferences", {"individual-id": ana, "provider-id": str(uuid.uuid4())}),
    )
    assert as_other.status_code == 403
    # With an API key and no provider-id, only the individual is dialled.
    alone = await start_conference(client, org, ana, None)
    assert alone.status_code == 201
    ident = alone.json()["data"]["id"]
    assert len(await legs(client, org, conference=ident)) == 1


async def test_conference_and_dial_log_lists_filter(client: httpx.AsyncClient, org: Org) -> None:
    await caller_id(client, org)
    ana, bob = await person(client, org), await person(client, org)
    nurse = await person(client, org, provider=True)
    first = (await start_conference(client, org, ana, nurse)).json()["data"]["id"]
    second = (await start_conference(client, org, bob, nurse)).json()["data"]["id"]
    for leg in await legs(client, org, conference=second):
        await report(client, leg, "in-progress")

    def ids(data: list[dict[str, Any]]) -> set[str]:
        return {d["id"] for d in data}

    everything = await get(client, org, "/v1/voice-conferences/")
    assert {first, second} <= ids(everything)
    assert ids(await get(client, org, f"/v1/voice-conferences/?filter[individual-id]={ana}")) == {
        first
    }
    assert ids(await get(client, org, "/v1/voice-conferences/?filter[states]=running")) >= {second}
    assert first not in ids(await get(client, org, "/v1/voice-conferences/?filter[states]=running"))
    both = "/v1/voice-conferences/?filter[states]=created,running"
    assert {first, second} <= ids(await get(client, org, both))
    repeated = "/v1/voice-conferences/?filter[states]=created&filter[states]=running"
    assert {first, second} <= ids(await get(client, org, repeated))
    bad = await client.get("/v1/voice-conferences/?filter[states]=ringing", headers=org.admin)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["source"]["parameter"] == "filter[states]"
    with_org = await get(client, org, f"/v1/voice-conferences/?organization-id={org.id}")
    assert {first, second} <= ids(with_org)

    nurse_legs = await get(client, org, f"/v1/voice-dial-logs/?filter[individual-id]={nurse}")
    assert {d["attributes"]["conference-id"] for d in nurse_legs} == {first, second}
    combined = await get(
        client,
        org,
        f"/v1/voice-dial-logs/?filter[individual-id]={nurse}&filter[conference-id]={second}",
    )
    assert len(combined) == 1 and combined[0]["attributes"]["status"] == "in-progress"
    bad_uuid = await client.get("/v1/voice-dial-logs/?filter[conference-id]=x", headers=org.admin)
    assert bad_uuid.status_code == 400
    # An individual token lists its own calls only.
    own = {"Authorization": f"Bearer {await individual_token(client, org, ana)}"}
    mine = await client.get("/v1/voice-dial-logs/", headers=own)
    assert mine.status_code == 200
    assert {d["attributes"]["individual-id"] for d in mine.json()["data"]} == {ana}
    conferences = await client.get("/v1/voice-conferences/", headers=own)
    assert ids(conferences.json()["data"]) == {first}


# --- surveys ------------------------------------------------------------------------------------


async def test_a_survey_asks_validates_retries_and_records(
    client: httpx.AsyncClient, org: Org
) -> None:
    await caller_id(client, org)
    ana = await person(client, org)
    created = await start_survey(client, org, ana)
    assert created.status_code == 201, created.text
    ident = created.json()["data"]["id"]
    assert created.json()["data"]["attributes"]["state"] == "created"
    assert created.json()["data"]["attributes"]["result"] == []
    [leg] = await legs(client, org, survey=ident)

    asked = await twiml(client, leg)
    assert asked.status_code == 200, asked.text
    assert "Hello, this is your clinic" in asked.text and "how bad is your pain" in asked.text
    assert 'input="dtmf"' in asked.text and 'numDigits="1"' in asked.text
    assert "q=0" in asked.text
    survey = (await get(client, org, f"/v1/voice-surveys/{ident}/"))["attributes"]
    assert survey["state"] == "running"

    retried = await twiml(client, leg, query="q=0", Digits="*")
    assert "not a valid answer" in retried.text and "how bad is your pain" in retried.text
    stale = await twiml(client, leg, query="q=1", Digits="3")  # not the question asked now
    assert "how bad is your pain" in stale.text
    second = await twiml(client, leg, query="q=0", Digits="7")
    assert "Did you sleep well" in second.text and 'input="speech"' in second.text
    silent = await twiml(client, leg, query="q=1&silent=1")
    assert "We did not hear an answer" in silent.text
    done = await twiml(client, leg, query="q=1", SpeechResult="Yes, I did.")
    assert "Thank you, goodbye." in done.text and "<Hangup" in done.text

    survey = (await get(client, org, f"/v1/voice-surveys/{ident}/"))["attributes"]
    assert survey["state"] == "completed" and survey["ended-at"]
    assert survey["result"] == [
        {"question": "pain", "answer": 7, "valid": True, "given": "7", "attempts": 2},
        {
            "question": "sleep",
            "answer": "yes",
            "valid": True,
            "given": "Yes, I did.",
            "attempts": 2,
        },
    ]
    await report(client, leg, "completed", CallDuration="40")
    survey = (await get(client, org, f"/v1/voice-surveys/{ident}/"))["attributes"]
    assert survey["state"] == "completed"
    [log] = await get(client, org, f"/v1/voice-dial-logs/?filter[survey-id]={ident}")
    assert log["attributes"]["role"] == "survey" and log["attributes"]["call-duration"] == 40
    after = await twiml(client, leg, query="q=1", SpeechResult="no")
    assert "This survey is over" in after.text
    assert await events(client, org, ident) == [
        "voice-surveys.created",
        "voice-surveys.running",
        "voice-surveys.answered",
        "voice-surveys.answered",
        "voice-surveys.completed",
    ]


async def test_retries_run_out_and_a_hang_up_keeps_the_answers(
    client: httpx.AsyncClient, org: Org
) -> None:
    await caller_id(client, org)
    ana = await person(client, org)
    spec = {
        "questions": [
            {"prompt": "Press your 4 digit code", "answer": "dtmf", "digits": 4, "retries": 0},
            {"prompt": "Press 1 for yes, 2 for no", "answer": "dtmf", "choices": ["1", "2"]},
            {"prompt": "Anything else?", "answer": "speech"},
        ]
    }
    ident = (await start_survey(client, org, ana, spec)).json()["data"]["id"]
    [leg] = await legs(client, org, survey=ident)
    await twiml(client, leg)
    moved_on = await twiml(client, leg, query="q=0", Digits="12")  # wrong length, no retries
    assert "Press 1 for yes" in moved_on.text
    await twiml(client, leg, query="q=1", Digits="2")
    await report(client, leg, "completed", CallDuration="20")  # hung up at question 3
    survey = (await get(client, org, f"/v1/voice-surveys/{ident}/"))["attributes"]
    assert survey["state"] == "failed" and survey["failure"] == "hung-up"
    assert survey["result"] == [
        {"question": "q1", "answer": None, "valid": False, "given": "12", "attempts": 1},
        {"question": "q2", "answer": "2", "valid": True, "given": "2", "attempts": 1},
    ]
    # Nobody answers another: failed, with nothing.
    unanswered = (await start_survey(client, org, ana, spec)).json()["data"]["id"]
    [leg] = await legs(client, org, survey=unanswered)
    await report(client, leg, "no-answer")
    survey = (await get(client, org, f"/v1/voice-surveys/{unanswered}/"))["attributes"]
    assert survey["state"] == "failed" and survey["failure"] == "no-answer"
    assert survey["result"] == []
    failed = await get(client, org, "/v1/voice-surveys/?filter[states]=failed")
    assert {ident, unanswered} <= {d["id"] for d in failed}
    mine = await get(client, org, f"/v1/voice-surveys/?filter[individual-id]={ana}")
    assert {ident, unanswered} == {d["id"] for d in mine}


BAD_SPECS: list[tuple[Any, set[str]]] = [
    ("not an object", {"/data/attributes/spec"}),
    ({}, {"/data/attributes/spec/questions"}),
    ({"questions": []}, {"/data/attributes/spec/questions"}),
    (
        {
            "questions": [
                {"prompt": "", "answer": "dtmf"},
                {"prompt": "Say", "answer": "voice", "colour": 1},
                {"prompt": "Range", "answer": "dtmf", "min": 5, "max": 2},
                {"prompt": "Words", "answer": "speech", "digits": 2},
                {"prompt": "Keys", "answer": "dtmf", "choices": ["a"], "retries": 9},
                {"prompt": "Both", "answer": "dtmf", "choices": ["1"], "min": 1},
                {"name": "x", "prompt": "One", "answer": "dtmf", "timeout": 0},
                {"name": "x", "prompt": "Two", "answer": "dtmf", "digits": 2, "choices": ["1"]},
            ],
            "intro": "hi",
        },
        {
            "/data/attributes/spec/intro",
            "/data/attributes/spec/questions/0/prompt",
            "/data/attributes/spec/questions/1/answer",
            "/data/attributes/spec/questions/1/colour",
            "/data/attributes/spec/questions/2/min",
            "/data/attributes/spec/questions/3/digits",
            "/data/attributes/spec/questions/4/choices",
            "/data/attributes/spec/questions/4/retries",
            "/data/attributes/spec/questions/5/choices",
            "/data/attributes/spec/questions/6/timeout",
            "/data/attributes/spec/questions/7/name",
            "/data/attributes/spec/questions/7/choices",
        },
    ),
]


@pytest.mark.parametrize(("spec", "pointers"), BAD_SPECS)
async def test_a_bad_spec_is_422_naming_each_problem(
    client: httpx.AsyncClient, org: Org, spec: Any, pointers: set[str]
) -> None:
    await caller_id(client, org)
    ana = await person(client, org)
    response = await client.post(
        "/v1/voice-surveys/",
        headers=org.staff,
        json=doc("voice-surveys", {"individual-id": ana, "spec": spec}),
    )
    if not isinstance(spec, dict):
        assert response.status_code == 400  # not even an object
        return
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert {e["source"]["pointer"] for e in errors} == pointers
    assert isinstance(response.json()["message"], list)
    assert len(response.json()["message"]) == len(errors)


async def test_survey_input_and_permissions(client: httpx.AsyncClient, org: Org) -> None:
    ana = await person(client, org)
    assert (await start_survey(client, org, ana)).status_code == 422  # no caller id
    await caller_id(client, org)
    silent = await person(client, org, phone=False)
    assert (await start_survey(client, org, silent)).status_code == 422
    assert (await start_survey(client, org, str(uuid.uuid4()))).status_code == 404
    readonly = await client.post(
        "/v1/voice-surveys/",
        headers=org.readonly,
        json=doc("voice-surveys", {"individual-id": ana, "spec": SURVEY}),
    )
    assert readonly.status_code == 403
    own = {"Authorization": f"Bearer {await individual_token(client, org, ana)}"}
    by_token = await client.post(
        "/v1/voice-surveys/",
        headers=own,
        json=doc("voice-surveys", {"individual-id": ana, "spec": SURVEY}),
    )
    assert by_token.status_code == 403
    ident = (await start_survey(client, org, ana)).json()["data"]["id"]
    seen = await client.get(f"/v1/voice-surveys/{ident}/", headers=own)
    assert seen.status_code == 200
    bob = await person(client, org)
    theirs = {"Authorization": f"Bearer {await individual_token(client, org, bob)}"}
    assert (await client.get(f"/v1/voice-surveys/{ident}/", headers=theirs)).status_code == 404
    bad_state = await client.get("/v1/voice-surveys/?filter[states]=done", headers=org.admin)
    assert bad_state.status_code == 400


# --- purge --------------------------------------------------------------------------------------


async def test_purging_an_individual_erases_their_calls(
    client: httpx.AsyncClient, org: Org
) -> None:
    await caller_id(client, org)
    ana, nurse = await person(client, org), await person(client, org, provider=True)
    conference = (await start_conference(client, org, ana, nurse)).json()["data"]["id"]
    survey = (await start_survey(client, org, ana)).json()["data"]["id"]
    bob = await person(client, org)
    kept = (await start_conference(client, org, bob, nurse)).json()["data"]["id"]
    await run_jobs(client, horizon=0.5)

    receipt = await purge_individual(client, app_of(client), org, ana)
    assert receipt["attributes"]["state"] == "completed", receipt
    for path in (f"/v1/voice-conferences/{conference}/", f"/v1/voice-surveys/{survey}/"):
        assert (await client.get(path, headers=org.admin)).status_code == 404
    assert await legs(client, org, conference=conference) == []
    assert await legs(client, org, survey=survey) == []
    assert len(await legs(client, org, conference=kept)) == 2

    # The provider purged: their leg goes, the patient's conference stays without them.
    receipt = await purge_individual(client, app_of(client), org, nurse)
    assert receipt["attributes"]["state"] == "completed", receipt
    shown = (await get(client, org, f"/v1/voice-conferences/{kept}/"))["attributes"]
    assert shown["provider-id"] is None
    [left] = await legs(client, org, conference=kept)
    assert str(left.individual_id) == bob
