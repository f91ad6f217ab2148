"""The console's operator screens (issue 18, screens 5-8): call queues with agents joining and
leaving, today's visits with Join inside the join window, escalations with Acknowledge, and
the delivery log with its filters, a send's history and Retry. Each action is the API's
operation: readonly keys see no control and a forged POST is 403; a POST without the CSRF
token is 403. Over the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from courier.core.time import utcnow
from courier.jobs import run_until_idle
from courier.models.delivery import Delivery, DeliveryEvent
from courier.models.job import Job
from courier.models.user_notification import UserNotification
from courier.providers.delivery import SEND_JOB
from tests.conftest import Org, doc
from tests.test_console import book, browser, make_person, secret_of, sign_in
from tests.voice_support import make_line, queued_call

__all__ = ["browser"]  # the cookie-keeping client fixture

HX = {"HX-Request": "true"}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def escalated(now: datetime, care_team_after: int) -> dict[str, Any]:
    """An escalation ladder (as the notify path writes it) that ran its first step (SMS,
    after 60 s) at ``now``: the care team is next, ``care_team_after`` seconds in."""
    return {
        "state": "escalated",
        "level": 1,
        "steps": [
            {"channel": "sms", "after-seconds": 60, "due-at": iso(now), "state": "done"},
            {
                "channel": "care-team",
                "after-seconds": care_team_after,
                "due-at": iso(now + timedelta(seconds=care_team_after - 60)),
                "state": "scheduled",
            },
        ],
    }


def midday_zone(now: datetime) -> str:
    """A time zone where it is around noon now: "today" holds the next and the last hours
    whatever the hour of the run."""
    offset = max(-12, min(14, 12 - now.hour))
    # Etc/GMT zones count the other way round: Etc/GMT-3 is three hours ahead of UTC.
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


async def set_zone(client: httpx.AsyncClient, org: Org, zone: str) -> None:
    response = await client.patch(
        f"/v1/organizations/{org.id}/",
        json={"data": {"type": "organizations", "id": org.id, "attributes": {"timezone": zone}}},
        headers=org.admin,
    )
    assert response.status_code == 200, response.text


async def move_visit(
    http: httpx.AsyncClient, visit: str, start: datetime, headers: dict[str, str]
) -> None:
    """Move a video visit's appointment to ``start`` (``PATCH /v1/video-channels/{id}/``)."""
    attributes = {"appointment-start": iso(start)}
    moved = await http.patch(
        f"/v1/video-channels/{visit}/",
        json={"data": {"type": "video-channels", "id": visit, "attributes": attributes}},
        headers=headers,
    )
    assert moved.status_code == 200, moved.text


async def run_jobs(app: Any, *kinds: str) -> None:
    import courier.domains.video.jobs  # noqa: F401  (handlers)

    await run_until_idle(app.state.database, app.state.settings, kinds=list(kinds))


# --- calls ----------------------------------------------------------------------------------


async def test_the_call_queue_shows_callers_in_order_and_staff_join_and_leave(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    await sign_in(browser, secret_of(org.staff))
    tiles = await browser.get("/console/today/tiles")
    assert "no voice lines" in tiles.text and 'href="/console/calls"' in tiles.text
    line = await make_line(client, org)
    nurse = await make_person(client, org, "Nora", "Nurse", "provider")
    patient = await client.post(
        "/v1/individuals/",
        json=doc(
            "individuals",
            {"first-name": "Petra", "last-name": "Quill", "phone": "+14155550150"},
        ),
        headers=org.admin,
    )
    assert patient.status_code == 201, patient.text
    await queued_call(client, line["id"], f"CA{uuid.uuid4().hex}", "+14155550150")
    await queued_call(client, line["id"], f"CA{uuid.uuid4().hex}", "+14155550177")

    page = await browser.get("/console/calls")
    assert page.status_code == 200
    rows = re.findall(r"<td data-position>(\d+)</td><td>([^<]+)</td>", page.text)
    assert rows == [("1", "Petra Quill"), ("2", "+14155550177")]  # a known caller by name
    assert len(re.findall(r'<time class="wait" data-tick datetime="[^"]+">\d+:\d\d<', page.text))
    assert "No agent is serving this queue." in page.text and "Join queue" in page.text
    tiles = await browser.get("/console/today/tiles")
    assert re.search(r'data-tile="voice">2<', tiles.text)
    assert "the longest for" in tiles.text and 'data-tile="longest"' in tiles.text

    csrf = re.search(r'name="csrf-token" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"line": line["id"], "individual-id": nurse, "by": "browser"}
    # Without the CSRF token: 403, and nobody joined.
    assert (await browser.post("/console/calls/join", data=form)).status_code == 403
    joined = await browser.post(
        "/console/calls/join", data=form, headers={**HX, "X-CSRF-Token": csrf.group(1)}
    )
    assert joined.status_code == 200, joined.text
    assert "Joined by browser as agent-" in joined.text and 'id="agent-token"' in joined.text
    assert "Nora Nurse" in joined.text and ">available<" in joined.text
    agents = await client.get(
        "/v1/voice-queue-agents/", params={"setting-id": line["id"]}, headers=org.readonly
    )
    [agent] = agents.json()["data"]
    assert agent["attributes"]["individual-id"] == nurse
    assert agent["attributes"]["use-pstn"] is False and agent["attributes"]["state"] == "available"
    assert agent["attributes"]["access-token"] is None  # shown once, in the join's answer

    # By phone without a number: the API's refusal, with its status, in the screen's alert.
    refused = await browser.post(
        "/console/calls/join",
        data={**form, "by": "phone"},
        headers={**HX, "X-CSRF-Token": csrf.group(1)},
    )
    assert refused.status_code == 400 and refused.headers["hx-retarget"] == "#action-error"
    assert "phone-number" in refused.text

    left = await browser.post(
        f"/console/calls/agents/{agent['id']}/leave",
        headers={**HX, "X-CSRF-Token": csrf.group(1)},
    )
    assert left.status_code == 200 and "The agent left the queue." in left.text
    again = await client.get(f"/v1/voice-queue-agents/{agent['id']}/", headers=org.readonly)
    assert again.json()["data"]["attributes"]["state"] == "left"

    # Readonly: no control, and a forged join is the API's 403.
    csrf_ro = await sign_in(browser, secret_of(org.readonly))
    page = await browser.get("/console/calls")
    assert "Join queue" not in page.text and "/leave" not in page.text
    forged = await browser.post("/console/calls/join", data=form, headers={"X-CSRF-Token": csrf_ro})
    assert forged.status_code == 403
    agents = await client.get(
        "/v1/voice-queue-agents/", params={"setting-id": line["id"]}, headers=org.readonly
    )
    assert len(agents.json()["data"]) == 1


# --- visits ---------------------------------------------------------------------------------


async def test_join_is_offered_only_inside_the_visits_join_window(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    now = utcnow()
    await set_zone(client, org, midday_zone(now))
    nurse = await make_person(client, org, "Nora", "Nurse", "provider")
    patient = await make_person(client, org, "Petra", "Quill", "participant")
    made = await client.post(
        "/v1/video-channels/",
        json=doc(
            "video-channels",
            {
                "participants": [nurse, patient],
                "appointment": {"start": iso(now + timedelta(minutes=60)), "duration": 20},
            },
        ),
        headers=org.staff,
    )
    assert made.status_code == 201, made.text
    visit = made.json()["data"]["id"]
    await book(client, org, "Knee check", now + timedelta(minutes=30), nurse, patient)
    await run_jobs(app, "video.create-room")

    csrf = await sign_in(browser, secret_of(org.staff))
    page = await browser.get("/console/visits")
    assert page.status_code == 200 and "Petra Quill" in page.text and "Knee check" in page.text
    assert "no video" in page.text  # the appointment in person: nothing to join
    button = re.search(rf'<button type="submit" id="join-{visit}"([^>]*)>', page.text)
    assert button is not None and "disabled" in button.group(1)
    assert re.search(rf'id="join-why-{visit}">Join opens at \d\d:\d\d', page.text)
    # The API refuses before the window, whatever the page showed.
    early = await browser.post(f"/console/visits/{visit}/join", headers={"X-CSRF-Token": csrf})
    assert early.status_code == 409 and "opens for joining" in early.text

    await move_visit(client, visit, now + timedelta(minutes=5), org.staff)
    fragment = await browser.get("/console/visits/list", params={"live": "1"})
    button = re.search(rf'<button type="submit" id="join-{visit}"([^>]*)>', fragment.text)
    assert button is not None and "disabled" not in button.group(1), fragment.text
    assert f"join-why-{visit}" not in fragment.text
    joined = await browser.post(f"/console/visits/{visit}/join", headers={"X-CSRF-Token": csrf})
    assert joined.status_code == 200, joined.text
    assert "Joining the visit" in joined.text and f"<strong>{nurse}</strong>" in joined.text
    assert 'id="visit-token"' in joined.text
    assert f"/v1/video-channels/{visit}/get-credentials/" in joined.text

    # Readonly: the window is shown, no Join; a forged Join is 403.
    csrf_ro = await sign_in(browser, secret_of(org.readonly))
    page = await browser.get("/console/visits")
    assert f'id="join-{visit}"' not in page.text and "open for joining" in page.text
    forged = await browser.post(f"/console/visits/{visit}/join", headers={"X-CSRF-Token": csrf_ro})
    assert forged.status_code == 403
    # No CSRF token: 403.
    assert (await browser.post(f"/console/visits/{visit}/join")).status_code == 403


# --- escalations ----------------------------------------------------------------------------


async def test_escalations_show_the_step_reached_and_acknowledge_stops_them(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    nurse = await make_person(client, org, "Nora", "Nurse", "provider")
    now = utcnow()
    ladder = escalated(now, care_team_after=600)
    org_id = uuid.UUID(org.id)
    async with app.state.database.sessionmaker() as session:
        row = UserNotification(
            organization_id=org_id,
            individual_id=uuid.UUID(nurse),
            source="test",
            category="lab-result",
            batch_id=uuid.uuid4(),
            escalation=ladder,
        )
        quiet = UserNotification(
            organization_id=org_id,
            individual_id=uuid.UUID(nurse),
            source="test",
            batch_id=uuid.uuid4(),
            escalation=None,
        )
        session.add_all([row, quiet])
        await session.commit()
        ident = row.id

    csrf_ro = await sign_in(browser, secret_of(org.readonly))
    page = await browser.get("/console/escalations")
    assert page.text.count("<tr data-escalation=") == 1
    assert "1 of 2 (sms)" in page.text and re.search(
        r"care-team at <time[^>]*>\d\d:\d\d<", page.text
    )
    assert "Nora Nurse" in page.text and "lab-result" in page.text
    assert "Acknowledge</button>" not in page.text.replace('<span class="visually-hidden">', "")
    assert f"/console/escalations/{ident}/ack" not in page.text
    forged = await browser.post(
        f"/console/escalations/{ident}/ack", headers={"X-CSRF-Token": csrf_ro}
    )
    assert forged.status_code == 403

    csrf = await sign_in(browser, secret_of(org.staff))
    page = await browser.get("/console/escalations")
    assert f'id="ack-{ident}"' in page.text
    assert (await browser.post(f"/console/escalations/{ident}/ack")).status_code == 403
    acked = await browser.post(
        f"/console/escalations/{ident}/ack", headers={**HX, "X-CSRF-Token": csrf}
    )
    assert acked.status_code == 200, acked.text
    assert "Acknowledged" in acked.text and "No unacknowledged escalations." in acked.text
    got = await client.get(f"/v1/user-notifications/{ident}/", headers=org.staff)
    assert got.json()["data"]["attributes"]["acknowledged"] is True
    tiles = await browser.get("/console/today/tiles")
    assert re.search(r'data-tile="escalations">0<', tiles.text)
    # Another organization's notification: 404, as in the API.
    stranger = await browser.post(
        f"/console/escalations/{uuid.uuid4()}/ack", headers={"X-CSRF-Token": csrf}
    )
    assert stranger.status_code == 404


# --- the delivery log -----------------------------------------------------------------------


async def test_the_delivery_log_filters_shows_a_sends_history_and_retries_a_failed_job(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    patient = await client.post(
        "/v1/individuals/",
        json=doc(
            "individuals",
            {"first-name": "Petra", "last-name": "Quill", "phone": "+14155550101"},
        ),
        headers=org.admin,
    )
    assert patient.status_code == 201
    patient_id = uuid.UUID(patient.json()["data"]["id"])
    template = await client.post(
        "/v1/templates/",
        json=doc("templates", {"name": "reminder", "sms": {"body": "See you soon"}}),
        headers=org.admin,
    )
    assert template.status_code == 201, template.text
    template_id = uuid.UUID(template.json()["data"]["id"])
    now = utcnow()
    org_id = uuid.UUID(org.id)

    def delivery(channel: str, state: str, age: timedelta, **values: Any) -> Delivery:
        return Delivery(
            organization_id=org_id,
            channel=channel,
            resource_type=values.pop("resource_type", "texts"),
            resource_id=values.pop("resource_id", uuid.uuid4()),
            recipient=values.pop("recipient", "+14155550199"),
            provider=f"{channel}:sandbox",
            state=state,
            rank=9,
            created_at=now - age,
            updated_at=now - age,
            **values,
        )

    async with app.state.database.sessionmaker() as session:
        note = UserNotification(
            organization_id=org_id,
            individual_id=patient_id,
            template_id=template_id,
            source="test",
            batch_id=uuid.uuid4(),
        )
        session.add(note)
        await session.flush()
        unreachable = delivery(
            "sms",
            "undelivered",
            timedelta(hours=1),
            recipient="+14155550101",
            vendor_id="SM0123456789abcdef",
            error_code="30003",
            attempts=1,
        )
        stuck = delivery(
            "push",
            "failed",
            timedelta(hours=2),
            resource_type="user-notifications",
            resource_id=note.id,
            error_code="not-sent",
            attempts=5,
        )
        mail = delivery("email", "sent", timedelta(hours=3), recipient="a@clinic.test")
        old = delivery("sms", "failed", timedelta(days=10), error_code="21211")
        session.add_all([unreachable, stuck, mail, old])
        await session.flush()
        for state, code, source in (("queued", None, "send"), ("sent", None, "send")):
            session.add(
                DeliveryEvent(
                    organization_id=org_id,
                    delivery_id=unreachable.id,
                    state=state,
                    code=code,
                    source=source,
                    applied=True,
                )
            )
        session.add(
            DeliveryEvent(
                organization_id=org_id,
                delivery_id=unreachable.id,
                state="undelivered",
                vendor_status="undelivered",
                code="30003",
                source="callback",
                applied=True,
            )
        )
        job = Job(
            organization_id=org_id,
            kind=SEND_JOB,
            payload={"delivery_id": str(stuck.id)},
            state="failed",
            attempts=5,
            max_attempts=5,
            last_error="NotSent: the provider refused for now",
            dedupe_key=f"{SEND_JOB}:{stuck.id}:0",
        )
        session.add(job)
        await session.commit()
        ids = {"unreachable": unreachable.id, "stuck": stuck.id, "mail": mail.id, "old": old.id}
        job_id = job.id

    csrf_staff = await sign_in(browser, secret_of(org.staff))

    async def shown(**params: str) -> set[uuid.UUID]:
        page = await browser.get("/console/deliveries", params=params)
        assert page.status_code == 200, page.text
        return {uuid.UUID(m) for m in re.findall(r'<tr data-delivery="([^"]+)"', page.text)}

    assert await shown() == {ids["unreachable"], ids["stuck"], ids["mail"]}  # 7 days
    assert await shown(period="all") == set(ids.values())
    assert await shown(channel="sms", period="all") == {ids["unreachable"], ids["old"]}
    assert await shown(status="failures", period="24h") == {ids["unreachable"], ids["stuck"]}
    assert await shown(status="sent") == {ids["mail"]}
    assert await shown(template=str(template_id)) == {ids["stuck"]}
    assert await shown(patient=str(patient_id)) == {ids["unreachable"], ids["stuck"]}
    assert await shown(patient=str(uuid.uuid4())) == set()
    wrong = await browser.get("/console/deliveries", params={"status": "lost", "patient": "x"})
    assert wrong.status_code == 400
    assert "unknown status: lost" in wrong.text and "patient must be an id" in wrong.text
    log = await browser.get("/console/deliveries", params={"channel": "sms"})
    assert "30003" in log.text and "The phone is unreachable" in log.text

    detail = await browser.get(f"/console/deliveries/{ids['unreachable']}")
    assert detail.status_code == 200
    assert "SM0123456789abcdef" in detail.text and "The phone is unreachable" in detail.text
    history = re.findall(r"<tr><td><time[^>]*>[^<]*</time></td><td>(\w+)</td>", detail.text)
    assert history == ["queued", "sent", "undelivered"]
    assert "No retry" in detail.text and 'id="retry"' not in detail.text
    assert (await browser.get(f"/console/deliveries/{uuid.uuid4()}")).status_code == 404

    # Retry: the API's job retry, for admins; the staff key sees why not, and is refused.
    detail = await browser.get(f"/console/deliveries/{ids['stuck']}")
    assert "an administrator can retry it" in detail.text and 'id="retry"' not in detail.text
    forged = await browser.post(
        f"/console/deliveries/{ids['stuck']}/retry", headers={"X-CSRF-Token": csrf_staff}
    )
    assert forged.status_code == 403
    csrf = await sign_in(browser, secret_of(org.admin))
    detail = await browser.get(f"/console/deliveries/{ids['stuck']}")
    assert 'id="retry"' in detail.text and "NotSent: the provider refused" in detail.text
    assert (await browser.post(f"/console/deliveries/{ids['stuck']}/retry")).status_code == 403
    retried = await browser.post(
        f"/console/deliveries/{ids['stuck']}/retry", headers={**HX, "X-CSRF-Token": csrf}
    )
    assert retried.status_code == 200, retried.text
    assert "The send was queued again." in retried.text
    got = await client.get(f"/v1/jobs/{job_id}/", headers=org.admin)
    assert got.json()["data"]["attributes"]["state"] == "queued"
    nothing = await browser.post(
        f"/console/deliveries/{ids['unreachable']}/retry", headers={"X-CSRF-Token": csrf}
    )
    assert nothing.status_code == 409 and "offers no retry" in nothing.text
