"""Escalation ladders: a notification not acknowledged climbs push -> SMS -> call -> a
care-team member's own notification, one scheduled job per step (the test drives the job
clock by making the next step due); the ack stops the ladder, and the ladder's progress is
on the notification's read shape."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.domains.user_notifications.service import (
    ESCALATE_JOB,
    InvalidEscalationError,
    check_escalation,
)
from courier.models.delivery import Delivery
from courier.models.job import Job
from courier.models.user_notification import UserNotification
from tests.conftest import Org, bearer
from tests.factories import individual_token, text_number
from tests.notify_support import (
    accept_sms_consent,
    app_of,
    get_notification,
    listed,
    make_device,
    make_patient,
    make_template,
    new_phone,
    notified_id,
    run_jobs,
    screen,
    send,
    texts_to,
)
from tests.support import jobs_fall_due

LADDER = [
    {"channel": "sms", "after-minutes": 10},
    {"channel": "voice", "after-minutes": 30},
]


async def make_due(client: httpx.AsyncClient, org: Org, ident: uuid.UUID, step: int) -> None:
    """Drive the job clock: the step's job falls due now (instead of in N minutes)."""
    key = f"{ESCALATE_JOB}:{ident}:{step}"
    assert await jobs_fall_due(app_of(client).state.database, org.id, dedupe_key=key) == 1


async def job_states(client: httpx.AsyncClient, org: Org, ident: uuid.UUID) -> list[str]:
    async with app_of(client).state.database.sessionmaker() as session:
        rows = (
            await session.execute(
                scoped(
                    select(Job.dedupe_key, Job.state).where(
                        Job.dedupe_key.like(f"{ESCALATE_JOB}:{ident}:%")
                    ),
                    Job,
                    uuid.UUID(org.id),
                )
            )
        ).all()
    return [state for _key, state in sorted(rows)]


async def calls_to(client: httpx.AsyncClient, org: Org, ident: uuid.UUID) -> list[dict[str, Any]]:
    """The sandbox's record of each call placed for the notification."""
    async with app_of(client).state.database.sessionmaker() as session:
        sids = (
            await session.execute(
                scoped(
                    select(Delivery.vendor_id).where(
                        Delivery.resource_id == ident, Delivery.channel == "voice"
                    ),
                    Delivery,
                    uuid.UUID(org.id),
                )
            )
        ).scalars()
        found = [sid for sid in sids if sid]
    calls = []
    for sid in found:
        got = await client.get("/sandbox/voice/calls", params={"call": sid}, headers=org.admin)
        assert got.status_code == 200, got.text
        calls.append(got.json()["data"])
    return calls


async def patient(client: httpx.AsyncClient, org: Org) -> tuple[str, str, str, dict[str, Any]]:
    await text_number(client, org)
    phone = new_phone()
    ana, user = await make_patient(client, org, phone=phone, notifications=["push"])
    await accept_sms_consent(client, org, user, phone)
    device = await make_device(client, org, ana, type="apn")
    return ana, user, phone, device


async def test_the_ladder_walks_push_sms_call_then_the_care_team(
    client: httpx.AsyncClient, org: Org
) -> None:
    template = await make_template(client, org)
    ana, _user, phone, device = await patient(client, org)
    nurse, _nurse_user = await make_patient(client, org, first_name="Nurse")
    nurse_phone = await make_device(client, org, nurse, type="fcm", token="fcm-" + uuid.uuid4().hex)
    ladder = [*LADDER, {"channel": "care-team", "after-minutes": 45, "individual-id": nurse}]
    ident = notified_id(
        await send(client, org, template["id"], [(ana, None)], escalation=ladder), ana
    )
    await run_jobs(client, horizon=0.5)
    # Step 0: the push (the notification itself); no SMS yet (the user did not ask for texts).
    assert len(await screen(client, org, device["attributes"]["token"])) == 1
    assert await texts_to(client, org, phone) == []
    escalation = (await get_notification(client, org.admin, ident))["escalation"]
    assert escalation["state"] == "waiting" and escalation["level"] == 0
    assert [s["state"] for s in escalation["steps"]] == ["scheduled"] * 3
    assert [s["after-seconds"] for s in escalation["steps"]] == [600, 1800, 2700]
    assert await job_states(client, org, ident) == ["queued"] * 3

    await make_due(client, org, ident, 0)
    await run_jobs(client, horizon=0.5)
    assert await texts_to(client, org, phone) == ["Ana: visit with Dr. Oz, room 4"]
    escalation = (await get_notification(client, org.admin, ident))["escalation"]
    assert escalation["state"] == "escalated" and escalation["level"] == 1
    assert escalation["steps"][0]["state"] == "done"
    assert escalation["steps"][0]["result"] == "sms queued"
    assert await calls_to(client, org, ident) == []

    await make_due(client, org, ident, 1)
    await run_jobs(client, horizon=0.5)
    [call] = await calls_to(client, org, ident)
    assert call["to"] == phone and call["direction"] == "outbound-api"
    escalation = (await get_notification(client, org.admin, ident))["escalation"]
    assert escalation["steps"][1]["state"] == "done"

    await make_due(client, org, ident, 2)
    await run_jobs(client, horizon=0.5)
    escalation = (await get_notification(client, org.admin, ident))["escalation"]
    assert escalation["state"] == "done" and escalation["level"] == 3
    alert_id = escalation["steps"][2]["notification-id"]
    [alert] = await listed(client, org.admin, f"?individual-id={nurse}")
    assert alert["id"] == alert_id
    assert alert["attributes"]["source"] == f"ladder:{ident}"
    [on_nurse_phone] = await screen(client, org, nurse_phone["attributes"]["token"])
    assert on_nurse_phone["data"]["notification-id"] == alert_id

    async with app_of(client).state.database.sessionmaker() as session:
        from courier.models.event import Event

        escalated = (
            await session.execute(
                scoped(
                    select(Event.data).where(
                        Event.type == "user-notifications.escalated", Event.resource_id == ident
                    ),
                    Event,
                    uuid.UUID(org.id),
                ).order_by(Event.seq)
            )
        ).scalars()
        assert [e["channel"] for e in escalated] == ["sms", "voice", "care-team"]


async def test_the_ack_stops_the_ladder(client: httpx.AsyncClient, org: Org) -> None:
    template = await make_template(client, org)
    ana, _user, phone, _device = await patient(client, org)
    ident = notified_id(
        await send(client, org, template["id"], [(ana, None)], escalation=LADDER), ana
    )
    await run_jobs(client, horizon=0.5)
    await make_due(client, org, ident, 0)
    await run_jobs(client, horizon=0.5)
    assert len(await texts_to(client, org, phone)) == 1

    token = bearer(await individual_token(client, org, ana))
    acked = await client.post(f"/v1/user-notifications/{ident}/ack/", headers=token, json={})
    assert acked.status_code == 201, acked.text
    escalation = acked.json()["data"]["attributes"]["escalation"]
    assert escalation["state"] == "stopped"
    assert [s["state"] for s in escalation["steps"]] == ["done", "cancelled"]
    assert await job_states(client, org, ident) == ["succeeded", "cancelled"]
    await run_jobs(client, horizon=0.5)
    assert await calls_to(client, org, ident) == []
    assert len(await texts_to(client, org, phone)) == 1


async def test_a_step_that_starts_after_the_ack_does_nothing(
    client: httpx.AsyncClient, org: Org
) -> None:
    """The ack and a step's job race: the step reads the notification locked and stops."""
    template = await make_template(client, org)
    ana, _user, phone, _device = await patient(client, org)
    ident = notified_id(
        await send(client, org, template["id"], [(ana, None)], escalation=LADDER), ana
    )
    async with app_of(client).state.database.sessionmaker() as session:
        # Acknowledged behind the ladder's back (as if the ack committed while the job ran).
        await session.execute(
            scoped(
                update(UserNotification).where(UserNotification.id == ident),
                UserNotification,
                uuid.UUID(org.id),
            ).values(acknowledged=True, acknowledged_at=utcnow())
        )
        await commit(session)
    await make_due(client, org, ident, 0)
    await make_due(client, org, ident, 1)
    await run_jobs(client, horizon=0.5)
    assert await texts_to(client, org, phone) == []
    assert await calls_to(client, org, ident) == []
    escalation = (await get_notification(client, org.admin, ident))["escalation"]
    assert escalation["state"] == "stopped"
    assert [s["state"] for s in escalation["steps"]] == ["cancelled", "cancelled"]


async def test_sms_step_needs_a_consent(client: httpx.AsyncClient, org: Org) -> None:
    template = await make_template(client, org)
    await text_number(client, org)
    phone = new_phone()
    ana, _user = await make_patient(client, org, phone=phone)
    ident = notified_id(
        await send(client, org, template["id"], [(ana, None)], escalation=LADDER[:1]), ana
    )
    await make_due(client, org, ident, 0)
    await run_jobs(client, horizon=0.5)
    assert await texts_to(client, org, phone) == []
    [step] = (await get_notification(client, org.admin, ident))["escalation"]["steps"]
    assert step["state"] == "skipped" and "consent" in step["result"]


@pytest.mark.parametrize(
    ("ladder", "says"),
    [
        ([{"channel": "fax", "after-minutes": 1}], "channel must be one of"),
        ([{"channel": "sms"}], "needs after-minutes"),
        ([{"channel": "sms", "after-minutes": -1}], "the delay must be"),
        ([{"channel": "sms", "after-minutes": True}], "the delay must be"),
        (
            [{"channel": "sms", "after-minutes": 5}, {"channel": "voice", "after-minutes": 1}],
            "comes before",
        ),
        ([{"channel": "care-team", "after-minutes": 5}], "names the individual-id"),
        ([{"channel": "care-team", "after-minutes": 5, "individual-id": "x"}], "must be a UUID"),
        (
            [{"channel": "sms", "after-minutes": 5, "individual-id": str(uuid.uuid4())}],
            "only a care-team step",
        ),
        ([{"channel": "sms", "after-minutes": 5, "color": "red"}], "unknown keys"),
        ([{"channel": "sms", "after-minutes": 1}] * 11, "at most 10 steps"),
        (["sms"], "must be an object"),
    ],
)
def test_bad_ladders_are_refused(ladder: list[Any], says: str) -> None:
    with pytest.raises(InvalidEscalationError, match=says):
        check_escalation(ladder)


async def call_webhook(
    client: httpx.AsyncClient,
    ident: uuid.UUID,
    params: list[tuple[str, str]],
    *,
    signed: bool = True,
) -> httpx.Response:
    """The voice service fetching the call's TwiML (signed as Twilio signs)."""
    from urllib.parse import urlencode

    from courier.domains.user_notifications.endpoints import call_url
    from courier.providers.twilio_signature import sign_twilio
    from courier.providers.voice.sandbox import sandbox_auth_token

    settings = app_of(client).state.settings
    url = call_url(settings, ident)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        headers["X-Twilio-Signature"] = sign_twilio(sandbox_auth_token(settings), url, params)
    path = url.split("://", 1)[1].split("/", 1)[1]
    return await client.post("/" + path, content=urlencode(params), headers=headers)


async def test_the_call_says_the_neutral_line_and_pressing_1_acknowledges(
    client: httpx.AsyncClient, org: Org
) -> None:
    template = await make_template(
        client,
        org,
        sensitive=True,
        **{"deep-link": "careapp://n"},
        apn={"title": "HIV result", "body": "Your HIV result is ready"},
    )
    ana, _user, _phone, _device = await patient(client, org)
    ident = notified_id(
        await send(client, org, template["id"], [(ana, None)], escalation=LADDER), ana
    )
    await make_due(client, org, ident, 1)  # straight to the call
    await run_jobs(client, horizon=0.5)
    assert len(await calls_to(client, org, ident)) == 1

    forged = await call_webhook(client, ident, [("CallSid", "CA" + "0" * 32)], signed=False)
    assert forged.status_code == 403
    answered = await call_webhook(client, ident, [("CallSid", "CA" + "0" * 32)])
    assert answered.status_code == 200, answered.text
    assert "You have a new message from your clinic." in answered.text
    assert "HIV" not in answered.text
    assert "<Gather" in answered.text and "Press 1" in answered.text
    assert (await get_notification(client, org.admin, ident))["acknowledged"] is False

    pressed = await call_webhook(client, ident, [("CallSid", "CA" + "0" * 32), ("Digits", "1")])
    assert pressed.status_code == 200, pressed.text
    assert "Thank you" in pressed.text
    attributes = await get_notification(client, org.admin, ident)
    assert attributes["acknowledged"] is True
    assert attributes["escalation"]["state"] == "stopped"
    assert [s["state"] for s in attributes["escalation"]["steps"]] == ["cancelled", "done"]
    unknown = await call_webhook(client, uuid.uuid4(), [("CallSid", "CA" + "0" * 32)])
    assert unknown.status_code == 404
