"""Appointments (seed 003) over HTTP: booking, lists and their filters, PATCH with updated-by,
status history and change log, bad inputs, tenancy, recurrence across a daylight-saving
change, the .ics invitation (built, parsed back, and mailed), badge counts, events."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from icalendar import Calendar
from sqlalchemy import select, update

from courier.core.db import commit
from courier.core.tenancy import unscoped
from courier.core.time import format_timestamp, utcnow
from courier.domains.appointments.invitation import Invitee, invitation
from courier.domains.appointments.recurrence import occurrences
from courier.jobs import run_until_idle
from courier.models.appointment import Appointment
from courier.models.event import Event
from courier.models.job import Job
from courier.models.user_notification import UserNotification
from tests.conftest import Org, bearer, doc
from tests.factories import individual_token, make_individual_id
from tests.test_email import sandbox_raw
from tests.test_purge import purge

APPOINTMENTS = "/v1/appointments/"
RRULE_POINTER = "/data/attributes/recurring/rrule"
NEW_YORK = ZoneInfo("America/New_York")


async def people(client: httpx.AsyncClient, org: Org, **patient: Any) -> tuple[str, str]:
    host = await make_individual_id(client, org, **{"account-type": "provider"})
    attendee = await make_individual_id(client, org, **patient)
    return host, attendee


def booking(host: str, attendees: list[Any], **attributes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Annual check-in",
        "description": "Annual check-in for all patients",
        "start-time": "2030-01-15T15:00:00Z",
        "end-time": "2030-01-15T15:30:00Z",
        "host": host,
        "attendees": attendees,
    }
    values.update(attributes)
    return doc("appointments", values)


async def book(
    client: httpx.AsyncClient, org: Org, host: str, attendees: list[Any], **attributes: Any
) -> dict[str, Any]:
    response = await client.post(
        APPOINTMENTS, headers=org.staff, json=booking(host, attendees, **attributes)
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def patch(
    client: httpx.AsyncClient, org: Org, ident: str, attributes: dict[str, Any]
) -> httpx.Response:
    return await client.patch(
        f"{APPOINTMENTS}{ident}/", headers=org.staff, json=doc("appointments", attributes, ident)
    )


async def listed(client: httpx.AsyncClient, org: Org, **params: str) -> list[str]:
    response = await client.get(APPOINTMENTS, headers=org.readonly, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def test_book_get_and_list(client: httpx.AsyncClient, org: Org) -> None:
    host, patient = await people(client, org)
    created = await book(
        client,
        org,
        host,
        [{"id": patient, "attendance-status": "going", "payment-status": "pending"}],
        location={"name": "Main clinic", "room": "4B", "city": "Boston"},
        extended={"ehr-id": "E-17"},
    )
    attrs = created["attributes"]
    assert created["type"] == "appointments"
    assert attrs["host"] == host
    assert attrs["status"] == "scheduled"
    assert attrs["interaction-type"] == "in_person"
    location = {k: v for k, v in attrs["location"].items() if v is not None}
    assert location == {"name": "Main clinic", "room": "4B", "city": "Boston"}
    assert attrs["video-call"] is None
    assert attrs["time-zone"] == "America/New_York"  # the organization's
    assert attrs["start-time"] == "2030-01-15T15:00:00.000Z"
    assert attrs["recurring"]["is-recurring"] is False
    assert attrs["recurring"]["next-occurrences"] == ["2030-01-15T15:00:00.000Z"]
    [attendee] = attrs["attendees"]
    assert attendee["id"] == patient
    assert attendee["attendance-status"] == "going"
    assert attendee["payment-status"] == "pending"
    assert attendee["no-show"] is False
    assert attrs["status-history"][0]["status"] == "scheduled"
    assert attrs["change-log"] == []
    assert attrs["extended"] == {"ehr-id": "E-17"}
    assert attrs["organization-id"] == org.id

    got = await client.get(f"{APPOINTMENTS}{created['id']}/", headers=org.readonly)
    assert got.status_code == 200
    assert got.json()["data"]["attributes"] == attrs
    assert created["id"] in await listed(client, org)


async def test_filters(client: httpx.AsyncClient, org: Org) -> None:
    host, patient = await people(client, org)
    other_host, other_patient = await people(client, org)
    early = await book(
        client,
        org,
        host,
        [patient],
        **{"start-time": "2030-02-01T10:00:00Z", "end-time": "2030-02-01T10:30:00Z"},
    )
    late = await book(
        client,
        org,
        other_host,
        [other_patient, patient],
        **{
            "start-time": "2030-03-01T10:00:00Z",
            "end-time": "2030-03-01T10:30:00Z",
            "interaction-type": "video_call",
            "group": True,
        },
    )
    assert await listed(client, org, **{"filter[host]": host}) == [early["id"]]
    assert await listed(client, org, **{"filter[attendee]": patient}) == [early["id"], late["id"]]
    assert await listed(client, org, **{"filter[attendee]": other_patient}) == [late["id"]]
    assert await listed(client, org, **{"filter[attendee]": patient, "sort": "-start-time"}) == [
        late["id"],
        early["id"],
    ]
    assert await listed(
        client, org, **{"filter[attendee]": patient, "filter[interaction-type]": "video_call"}
    ) == [late["id"]]
    assert await listed(client, org, **{"filter[attendee]": patient, "filter[group]": "true"}) == [
        late["id"]
    ]
    window = await client.get(
        APPOINTMENTS,
        headers=org.readonly,
        params=[
            ("filter[attendee]", patient),
            ("filter[cmp-start-time]", ">=2030-02-15T00:00:00Z"),
            ("filter[cmp-start-time]", "<2030-04-01T00:00:00-04:00"),
        ],
    )
    assert [i["id"] for i in window.json()["data"]] == [late["id"]]
    cancelled = await patch(client, org, early["id"], {"updated-by": host, "status": "cancelled"})
    assert cancelled.status_code == 200, cancelled.text
    assert await listed(
        client, org, **{"filter[attendee]": patient, "filter[status]": "cancelled"}
    ) == [early["id"]]
    for bad in (
        {"filter[host]": "nope"},
        {"filter[status]": "lost"},
        {"filter[cmp-start-time]": "2030-01-01"},
        {"filter[group]": "maybe"},
        {"filter[colour]": "red"},
        {"sort": "host"},
    ):
        response = await client.get(APPOINTMENTS, headers=org.readonly, params=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["errors"][0]["source"]["parameter"]


async def test_patch_needs_updated_by_and_keeps_history(
    client: httpx.AsyncClient, org: Org
) -> None:
    host, patient = await people(client, org)
    nurse = await make_individual_id(client, org, **{"account-type": "provider"})
    ident = (await book(client, org, host, [patient]))["id"]

    missing = await patch(client, org, ident, {"status": "confirmed"})
    assert missing.status_code == 400, missing.text
    body = missing.json()
    assert body["statusCode"] == 400
    assert body["errors"][0]["source"]["pointer"] == "/data/attributes/updated-by"

    unknown = await patch(client, org, ident, {"updated-by": str(uuid.uuid4()), "name": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["source"]["pointer"] == "/data/attributes/updated-by"

    confirmed = await patch(client, org, ident, {"updated-by": nurse, "status": "confirmed"})
    assert confirmed.status_code == 200, confirmed.text
    started = await patch(
        client,
        org,
        ident,
        {
            "updated-by": host,
            "status": "in_progress",
            "actual-start-time": "2030-01-15T10:02:00-05:00",
            "attendees": [{"id": patient, "attendance-status": "going", "no-show": False}],
        },
    )
    assert started.status_code == 200, started.text
    attrs = started.json()["data"]["attributes"]
    assert [(h["status"], h["changed-by"]) for h in attrs["status-history"]] == [
        ("scheduled", None),  # booked with an API key, no created-by
        ("confirmed", nurse),
        ("in_progress", host),
    ]
    assert attrs["actual-start-time"] == "2030-01-15T15:02:00.000Z"
    assert attrs["attendees"][0]["attendance-status"] == "going"
    assert attrs["last-updated-by"] == host
    first, second = attrs["change-log"]
    assert first["changed-by"] == nurse
    assert first["changes"] == {"status": {"from": "scheduled", "to": "confirmed"}}
    assert second["changed-by"] == host
    assert second["changes"]["status"] == {"from": "confirmed", "to": "in_progress"}
    assert second["changes"]["actual-start-time"] == {
        "from": None,
        "to": "2030-01-15T15:02:00.000Z",
    }
    assert second["changes"]["attendees"]["from"][0]["attendance-status"] == "pending"
    assert second["changes"]["attendees"]["to"][0]["attendance-status"] == "going"

    # The same values again change nothing: no log entry.
    again = await patch(client, org, ident, {"updated-by": host, "status": "in_progress"})
    assert again.status_code == 200
    assert len(again.json()["data"]["attributes"]["change-log"]) == 2

    # Replacing the attendees: a new one joins with defaults, the old one leaves.
    newcomer = await make_individual_id(client, org)
    replaced = await patch(client, org, ident, {"updated-by": host, "attendees": [newcomer]})
    assert [a["id"] for a in replaced.json()["data"]["attributes"]["attendees"]] == [newcomer]
    assert await listed(client, org, **{"filter[attendee]": patient}) == []


async def test_bad_inputs_are_4xx(client: httpx.AsyncClient, org: Org) -> None:
    host, patient = await people(client, org)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"end-time": "2030-01-15T14:00:00Z"}, 400, "/data/attributes/end-time"),
        ({"start-time": "2030-01-15T15:00:00"}, 400, "/data/attributes/start-time"),
        ({"host": str(uuid.uuid4())}, 404, "/data/attributes/host"),
        ({"attendees": [str(uuid.uuid4())]}, 404, "/data/attributes/attendees"),
        ({"attendees": [patient, patient]}, 400, "/data/attributes/attendees/1"),
        ({"time-zone": "Mars/Olympus"}, 400, "/data/attributes/time-zone"),
        ({"interaction-type": "carrier_pigeon"}, 400, "/data/attributes/interaction-type"),
        (
            {"interaction-type": "video_call", "location": {"name": "Room 1"}},
            422,
            "/data/attributes/location",
        ),
        ({"reference-patients": [patient]}, 422, "/data/attributes/reference-patients"),
        (
            {"recurring": {"is-recurring": True, "rrule": "FREQ=SOMETIMES"}},
            400,
            "/data/attributes/recurring/rrule",
        ),
        ({"recurring": {"is-recurring": True}}, 400, "/data/attributes/recurring"),
        (
            {"recurring": {"is-recurring": True, "rrule": "FREQ=DAILY;UNTIL=20300201T000000"}},
            400,
            "/data/attributes/recurring/rrule",
        ),
        ({"extended": ["not", "an", "object"]}, 400, "/data/attributes/extended"),
        *[
            ({"recurring": {"is-recurring": True, "rrule": rule}}, 400, RRULE_POINTER)
            for rule in (
                # Rules that never happen (dateutil would look until the year 9999) ...
                "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
                "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31;COUNT=3",
                "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2",
                "FREQ=MONTHLY;BYDAY=1MO;BYMONTHDAY=20",
                # ... or that are not an appointment's (more than one a day, endless counts).
                "FREQ=HOURLY",
                "FREQ=DAILY;BYHOUR=9,10",
                "FREQ=DAILY;COUNT=100000",
                "FREQ=YEARLY;COUNT=20",  # would end after ten years
                "FREQ=WEEKLY;BYWEEKNO=20",
                "FREQ=WEEKLY;DTSTART=20300101T000000Z",
            )
        ],
        (
            {
                "recurring": {"is-recurring": True, "rrule": "FREQ=YEARLY;COUNT=2"},
                "start-time": "1969-12-31T09:00:00Z",
                "end-time": "1969-12-31T10:00:00Z",
            },
            400,
            RRULE_POINTER,
        ),
        (
            {
                "recurring": {"is-recurring": True, "rrule": "FREQ=YEARLY;BYMONTH=2"},
                "start-time": "2030-01-30T09:00:00Z",
                "end-time": "2030-01-30T10:00:00Z",
            },
            400,
            RRULE_POINTER,
        ),
        ({"start_time": "2030-01-15T15:00:00Z"}, 400, "/data/attributes/start_time"),
    ]
    for attributes, status, pointer in cases:
        values = {**booking(host, [patient])["data"]["attributes"], **attributes}
        if "start_time" in attributes:
            del values["start-time"]
        response = await client.post(
            APPOINTMENTS, headers=org.staff, json=doc("appointments", values)
        )
        assert response.status_code == status, (attributes, response.text)
        errors = response.json()["errors"]
        assert any(e.get("source", {}).get("pointer") == pointer for e in errors), (
            attributes,
            errors,
        )
    ident = (await book(client, org, host, [patient]))["id"]
    for attributes, status in (
        ({"updated-by": host, "name": None}, 400),
        ({"updated-by": host, "status": "lost"}, 400),
        ({"updated-by": "not-a-uuid"}, 400),
        ({"updated-by": host, "end-time": "2030-01-15T14:00:00Z"}, 400),
        (
            {
                "updated-by": host,
                "recurring": {"is-recurring": True, "rrule": "FREQ=WEEKLY;COUNT=3"},
                "actual-start-time": "2030-01-15T15:00:00Z",
            },
            422,
        ),
    ):
        response = await patch(client, org, ident, attributes)
        assert response.status_code == status, (attributes, response.text)
    readonly = await client.post(APPOINTMENTS, headers=org.readonly, json=booking(host, [patient]))
    assert readonly.status_code == 403


async def test_another_organizations_appointment_is_404(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    host, patient = await people(client, org)
    ident = (await book(client, org, host, [patient]))["id"]
    assert (await client.get(f"{APPOINTMENTS}{ident}/", headers=other_org.admin)).status_code == 404
    other_host = await make_individual_id(client, other_org)
    response = await client.patch(
        f"{APPOINTMENTS}{ident}/",
        headers=other_org.admin,
        json=doc("appointments", {"updated-by": other_host, "name": "mine"}, ident),
    )
    assert response.status_code == 404
    assert ident not in await listed(client, other_org)
    # Nor may a booking name another organization's people.
    crossed = await client.post(
        APPOINTMENTS, headers=other_org.staff, json=booking(other_host, [patient])
    )
    assert crossed.status_code == 404
    assert crossed.json()["errors"][0]["source"]["pointer"] == "/data/attributes/attendees"


async def test_an_individual_sees_only_its_own_appointments(
    client: httpx.AsyncClient, org: Org
) -> None:
    host, patient = await people(client, org)
    mine = (await book(client, org, host, [patient]))["id"]
    other_host, stranger = await people(client, org)
    theirs = (await book(client, org, other_host, [stranger]))["id"]
    token = bearer(await individual_token(client, org, patient))
    response = await client.get(APPOINTMENTS, headers=token)
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["data"]] == [mine]
    assert (await client.get(f"{APPOINTMENTS}{theirs}/", headers=token)).status_code == 404


# --- recurrence ----------------------------------------------------------------------------


def test_weekly_rule_keeps_local_time_across_dst() -> None:
    """New York leaves daylight time on 2030-11-03: the next 10 weekly occurrences of a 09:30
    appointment are all at 09:30 local, so their UTC instants move by an hour."""
    first = datetime(2030, 10, 14, 9, 30, tzinfo=NEW_YORK)
    starts = occurrences("FREQ=WEEKLY", first.astimezone(UTC), "America/New_York", count=10)
    assert len(starts) == 10
    local = [s.astimezone(NEW_YORK) for s in starts]
    assert all((t.hour, t.minute) == (9, 30) for t in local)
    assert [t.date() for t in local] == [first.date() + timedelta(weeks=i) for i in range(10)]
    assert {s.hour for s in starts} == {13, 14}  # 13:30Z in EDT, 14:30Z in EST
    assert starts[2].hour == 13 and starts[3].hour == 14


async def test_recurring_appointment_over_http(client: httpx.AsyncClient, org: Org) -> None:
    host, patient = await people(client, org)
    created = await book(
        client,
        org,
        host,
        [patient],
        **{
            "start-time": "2030-10-14T09:30:00-04:00",
            "end-time": "2030-10-14T10:00:00-04:00",
            "recurring": {"is-recurring": True, "rrule": "RRULE:FREQ=WEEKLY;COUNT=12"},
        },
    )
    recurring = created["attributes"]["recurring"]
    assert recurring["is-recurring"] is True
    assert recurring["rrule"] == "FREQ=WEEKLY;COUNT=12"
    starts = [datetime.fromisoformat(s) for s in recurring["next-occurrences"]]
    assert len(starts) == 10
    assert all(s.astimezone(NEW_YORK).strftime("%H:%M") == "09:30" for s in starts)
    assert recurring["next-occurrences"][3] == "2030-11-04T14:30:00.000Z"
    # The 12th occurrence (2030-12-30, EST) ends the series.
    assert recurring["series-end"] == "2030-12-30T15:00:00.000Z"
    ident = created["id"]
    during = [
        ("filter[attendee]", patient),
        ("filter[cmp-start-time]", "<2030-12-01T00:00:00Z"),
        ("filter[cmp-end-time]", ">2030-11-20T00:00:00Z"),
    ]
    response = await client.get(APPOINTMENTS, headers=org.readonly, params=during)
    assert [i["id"] for i in response.json()["data"]] == [ident]
    after = [("filter[attendee]", patient), ("filter[cmp-end-time]", ">2031-01-01T00:00:00Z")]
    response = await client.get(APPOINTMENTS, headers=org.readonly, params=after)
    assert response.json()["data"] == []
    actual = await patch(
        client, org, ident, {"updated-by": host, "actual-start-time": "2030-10-14T13:31:00Z"}
    )
    assert actual.status_code == 422, actual.text


# --- .ics -----------------------------------------------------------------------------------


def test_ics_round_trip() -> None:
    start = datetime(2030, 10, 14, 13, 30, tzinfo=UTC)
    appointment = Appointment(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        name="Physio, weekly",
        description="Bring your exercise log",
        start_time=start,
        end_time=start + timedelta(minutes=45),
        time_zone="America/New_York",
        rrule="FREQ=WEEKLY;COUNT=10",
        status="confirmed",
        location={"name": "Main clinic", "city": "Boston"},
        last_updated_at=start - timedelta(days=3),
    )
    ics = invitation(
        appointment,
        organizer=Invitee("Dr Who", "who@clinic.test"),
        attendees=[Invitee("Ann Lee", "ann@patients.test", "going"), Invitee("No Mail", None)],
    )
    calendar = Calendar.from_ical(ics)
    assert str(calendar["method"]) == "REQUEST"
    [zone] = calendar.walk("VTIMEZONE")
    assert str(zone["tzid"]) == "America/New_York"
    [event] = calendar.walk("VEVENT")
    assert str(event["summary"]) == "Physio, weekly"
    assert str(event["uid"]) == f"{appointment.id}@courier"
    dtstart = event.decoded("dtstart")
    assert dtstart == start and dtstart.utcoffset() == timedelta(hours=-4)
    assert event["dtstart"].params["TZID"] == "America/New_York"
    assert event.decoded("dtend") - dtstart == timedelta(minutes=45)
    assert event["rrule"]["FREQ"] == ["WEEKLY"] and event["rrule"]["COUNT"] == [10]
    assert str(event["location"]) == "Main clinic, Boston"
    assert str(event["organizer"]) == "mailto:who@clinic.test"
    attendee = event["attendee"]
    assert str(attendee) == "mailto:ann@patients.test"  # the one without email is left out
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    # A calendar reading the rule sees the local time kept across the DST change.
    from dateutil.rrule import rrulestr  # type: ignore[import-untyped]

    rule = rrulestr(event["rrule"].to_ical().decode(), dtstart=dtstart)
    assert {d.astimezone(NEW_YORK).hour for d in rule} == {9}


async def test_booking_emails_the_invitation(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    address = f"ann.{uuid.uuid4().hex[:8]}@patients.example"
    host, patient = await people(client, org, email=address)
    silent = await make_individual_id(client, org)  # no email: nothing sent
    created = await book(
        client,
        org,
        host,
        [patient, silent],
        **{"recurring": {"is-recurring": True, "rrule": "FREQ=WEEKLY;COUNT=4"}},
    )
    await run_until_idle(app.state.database, app.state.settings)
    [raw] = await sandbox_raw(client, org, address)
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["Subject"] == "Invitation: Annual check-in"
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "invitation.ics"
    calendar = Calendar.from_ical(part.get_payload(decode=True))
    [event] = calendar.walk("VEVENT")
    assert str(event["uid"]) == f"{created['id']}@courier"
    assert event["rrule"]["COUNT"] == [4]
    assert str(calendar["method"]) == "REQUEST" and event["sequence"] == 0

    # Moved: an updated invitation, same UID, a higher SEQUENCE, the new time.
    moved = await patch(
        client,
        org,
        created["id"],
        {
            "updated-by": host,
            "start-time": "2030-01-15T16:00:00Z",
            "end-time": "2030-01-15T16:30:00Z",
        },
    )
    assert moved.status_code == 200, moved.text
    await patch(client, org, created["id"], {"updated-by": host, "visit-note": "n-1"})
    await run_until_idle(app.state.database, app.state.settings)
    documents = await sandbox_raw(client, org, address)
    assert len(documents) == 2  # the visit note changes nothing a calendar shows
    updated = BytesParser(policy=policy.default).parsebytes(documents[1])
    assert updated["Subject"] == "Updated invitation: Annual check-in"
    [event] = ics_events(updated)
    assert str(event["uid"]) == f"{created['id']}@courier"
    assert event["sequence"] == 1
    assert event.decoded("dtstart").astimezone(UTC) == datetime(2030, 1, 15, 16, tzinfo=UTC)

    # Cancelled: a METHOD:CANCEL notice.
    await patch(client, org, created["id"], {"updated-by": host, "status": "cancelled"})
    await run_until_idle(app.state.database, app.state.settings)
    documents = await sandbox_raw(client, org, address)
    assert len(documents) == 3
    cancelling = BytesParser(policy=policy.default).parsebytes(documents[2])
    assert cancelling["Subject"] == "Cancelled: Annual check-in"
    [part] = [p for p in cancelling.iter_attachments() if p.get_content_type() == "text/calendar"]
    notice = Calendar.from_ical(part.get_payload(decode=True))
    assert str(notice["method"]) == "CANCEL"
    assert notice.walk("VEVENT")[0]["sequence"] == 3


def ics_events(message: Any) -> list[Any]:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    events: list[Any] = Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")
    return events


# --- badge and events -----------------------------------------------------------------------


async def badge(client: httpx.AsyncClient, org: Org, individual: str) -> int | None:
    response = await client.get(
        "/v1/badge-counts/", headers=org.admin, params={"individual-id": individual}
    )
    assert response.status_code == 200, response.text
    for item in response.json()["data"]:
        if item["attributes"]["type"] == "appointment":
            count: int = item["attributes"]["count"]
            return count
    return None


async def test_badge_counts_open_appointments(client: httpx.AsyncClient, org: Org) -> None:
    host, patient = await people(client, org)
    first = (await book(client, org, host, [patient]))["id"]
    assert await badge(client, org, patient) == 1
    await book(
        client,
        org,
        host,
        [patient],
        **{"start-time": "2030-01-16T15:00:00Z", "end-time": "2030-01-16T15:30:00Z"},
    )
    assert await badge(client, org, patient) == 2
    await patch(client, org, first, {"updated-by": host, "status": "cancelled"})
    assert await badge(client, org, patient) == 1
    past = await book(
        client,
        org,
        host,
        [patient],
        **{"start-time": "2020-01-16T15:00:00Z", "end-time": "2020-01-16T15:30:00Z"},
    )
    assert past["attributes"]["recurring"]["next-occurrences"] == []
    assert await badge(client, org, patient) == 1  # an ended appointment does not count


async def test_changes_are_audited_and_announced(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    host, patient = await people(client, org)
    ident = (await book(client, org, host, [patient]))["id"]
    await patch(client, org, ident, {"updated-by": host, "name": "Renamed"})
    response = await client.get(
        "/v1/audit-events/",
        headers=org.admin,
        params={"filter[resource-id]": ident},
    )
    assert response.status_code == 200, response.text
    mine = [
        e["attributes"]
        for e in response.json()["data"]
        if e["attributes"].get("resource-id") == ident
    ]
    assert {(e["resource-type"], e["action"]) for e in mine} >= {
        ("appointments", "created"),
        ("appointments", "updated"),
    }
    # And announced, to the host and the attendee, with the new status.
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(select(Event).where(Event.resource_id == uuid.UUID(ident)), "test")
        events = sorted((await session.execute(stmt)).scalars().all(), key=lambda e: e.seq)
    assert [e.type for e in events] == ["appointments.created", "appointments.updated"]
    assert set(events[1].individual_ids) == {host, patient}
    assert events[1].data["status"] == "scheduled"


@pytest.mark.parametrize("zone", ["Europe/Paris", "Australia/Sydney"])
def test_rule_keeps_local_time_in_other_zones(zone: str) -> None:
    first = datetime(2030, 3, 1, 8, 0, tzinfo=ZoneInfo(zone))
    starts = occurrences("FREQ=WEEKLY;BYDAY=FR", first.astimezone(UTC), zone, count=10)
    assert {s.astimezone(ZoneInfo(zone)).strftime("%H:%M %a") for s in starts} == {"08:00 Fri"}


async def test_purge_removes_an_individual_from_appointments(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    host, patient = await people(client, org)
    other = await make_individual_id(client, org)
    attended = (await book(client, org, host, [patient, other]))["id"]
    alone = (await book(client, org, host, [patient]))["id"]
    hosted = (await book(client, org, patient, [other]))["id"]
    about = (
        await book(
            client,
            org,
            host,
            [other],
            internal=True,
            **{"reference-patients": [patient, other], "created-by": patient},
        )
    )["id"]
    receipt = await purge(client, app, org, patient)
    counts = receipt["attributes"]["counts"]
    assert receipt["attributes"]["state"] == "completed", receipt
    assert counts["appointment_attendees"] == 2
    assert counts["appointments"] == 1  # the one only the patient attended
    assert counts["appointments.host-unlinked"] == 1
    assert counts["appointments.reference-patients"] == 1
    kept = (await client.get(f"{APPOINTMENTS}{attended}/", headers=org.admin)).json()["data"]
    assert [a["id"] for a in kept["attributes"]["attendees"]] == [other]
    gone = await client.get(f"{APPOINTMENTS}{alone}/", headers=org.admin)
    assert gone.status_code == 404
    unhosted = (await client.get(f"{APPOINTMENTS}{hosted}/", headers=org.admin)).json()["data"]
    assert unhosted["attributes"]["host"] is None
    assert [a["id"] for a in unhosted["attributes"]["attendees"]] == [other]
    internal = (await client.get(f"{APPOINTMENTS}{about}/", headers=org.admin)).json()["data"]
    assert internal["attributes"]["reference-patients"] == [other]
    assert internal["attributes"]["created-by"] is None


# --- reminders ------------------------------------------------------------------------------

REMINDER_TEMPLATE: dict[str, Any] = {
    "category": "appointments",
    "sms": {
        "body": "Reminder: {{ appointment_name }} on "
        "{{ appointment_time.strftime('%d/%m at %H:%M') }}"
    },
    "required-data": {"appointment_name": "string", "appointment_time": "date"},
}


async def reminder_jobs(app: Any, appointment_id: str) -> list[Job]:
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(select(Job).where(Job.kind == "appointments.remind"), "test")
        rows = (await session.execute(stmt)).scalars().all()
    return sorted(
        (job for job in rows if job.payload.get("appointment_id") == appointment_id),
        key=lambda job: (job.run_at, str(job.payload["individual_id"])),
    )


async def make_due(app: Any, job_id: uuid.UUID) -> None:
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            unscoped(update(Job).where(Job.id == job_id), "test").values(run_at=utcnow())
        )
        await commit(session)


async def notifications_from(app: Any, appointment_id: str) -> list[UserNotification]:
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(
            select(UserNotification).where(
                UserNotification.source == f"appointment:{appointment_id}"
            ),
            "test",
        )
        return list((await session.execute(stmt)).scalars().all())


async def test_reminders_fire_at_the_attendees_local_time_across_dst(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    template = await client.post(
        "/v1/templates/",
        headers=org.admin,
        json=doc("templates", {"name": f"reminder {uuid.uuid4().hex[:8]}", **REMINDER_TEMPLATE}),
    )
    assert template.status_code == 201, template.text
    template_name = template.json()["data"]["attributes"]["name"]
    host, patient = await people(client, org, tz="America/New_York")
    traveller = await make_individual_id(client, org, tz="Asia/Tokyo")
    missing = await client.post(
        APPOINTMENTS,
        headers=org.staff,
        json=booking(host, [patient], reminders=[{"days-before": 1, "at": "18:00"}]),
    )
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["source"]["pointer"] == "/data/attributes/reminder-template"
    unknown = await client.post(
        APPOINTMENTS,
        headers=org.staff,
        json=booking(
            host,
            [patient],
            reminders=[{"days-before": 1, "at": "18:00"}],
            **{"reminder-template": "no such template"},
        ),
    )
    assert unknown.status_code == 404
    bad_time = await client.post(
        APPOINTMENTS,
        headers=org.staff,
        json=booking(host, [patient], reminders=[{"days-before": 1, "at": "25:00"}]),
    )
    assert bad_time.status_code == 400

    # Weekly at 09:30 New York time from Monday 2030-10-28; New York leaves daylight time on
    # Sunday 2030-11-03, the evening the second reminder is due.
    created = await book(
        client,
        org,
        host,
        [patient, traveller],
        **{
            "start-time": "2030-10-28T09:30:00-04:00",
            "end-time": "2030-10-28T10:00:00-04:00",
            "time-zone": "America/New_York",
            "recurring": {"is-recurring": True, "rrule": "FREQ=WEEKLY;COUNT=4"},
            "reminders": [{"days-before": 1, "at": "18:00"}],
            "reminder-template": template_name,
        },
    )
    ident = created["id"]
    assert created["attributes"]["reminders"] == [{"days-before": 1, "at": "18:00"}]
    assert created["attributes"]["reminder-template"] == template.json()["data"]["id"]
    jobs = await reminder_jobs(app, ident)
    due = [(format_timestamp(job.run_at), job.payload["individual_id"]) for job in jobs]
    assert due == [
        # Tokyo: 18:00 on the day before the occurrence's Tokyo date (10-28 22:30 JST).
        ("2030-10-27T09:00:00.000Z", traveller),
        # New York: 18:00 EDT on 10-27 ...
        ("2030-10-27T22:00:00.000Z", patient),
        ("2030-11-03T09:00:00.000Z", traveller),
        # ... and 18:00 EST on 11-03, after the change: same local time, another UTC hour.
        ("2030-11-03T23:00:00.000Z", patient),
    ]
    for job in jobs:
        local = job.run_at.astimezone(
            ZoneInfo(
                "America/New_York" if job.payload["individual_id"] == patient else "Asia/Tokyo"
            )
        )
        assert local.strftime("%H:%M") == "18:00"

    first = jobs[1]
    await make_due(app, first.id)
    await run_until_idle(app.state.database, app.state.settings, kinds=["appointments.remind"])
    [notification] = await notifications_from(app, ident)
    assert str(notification.individual_id) == patient
    assert notification.dedupe_key is not None and patient in notification.dedupe_key
    # The template shows the time in the patient's zone: 09:30, not 13:30 (UTC).
    assert "28/10 at 09:30" in str(notification.data)
    # The job queued the next occurrence's reminders (rolling), at 18:00 EST again.
    later = [format_timestamp(j.run_at) for j in await reminder_jobs(app, ident)]
    assert "2030-11-10T23:00:00.000Z" in later

    # Running the same reminder again notifies nobody twice (dedupe key per occurrence).
    await make_due(app, first.id)
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            unscoped(update(Job).where(Job.id == first.id), "test").values(state="queued")
        )
        await commit(session)
    await run_until_idle(app.state.database, app.state.settings, kinds=["appointments.remind"])
    assert len(await notifications_from(app, ident)) == 1

    # Cancelled: the reminders still queued do nothing when due.
    cancelled = await patch(client, org, ident, {"updated-by": host, "status": "cancelled"})
    assert cancelled.status_code == 200
    await make_due(app, jobs[3].id)
    await run_until_idle(app.state.database, app.state.settings, kinds=["appointments.remind"])
    assert len(await notifications_from(app, ident)) == 1
    [done] = [j for j in await reminder_jobs(app, ident) if j.id == jobs[3].id]
    assert done.result == {"skipped": "the appointment is cancelled"}


async def test_calendar_edges_and_odd_patches_never_fail(
    client: httpx.AsyncClient, org: Org
) -> None:
    """Times at the calendar's ends, zones far from UTC, rules at their bounds, nulls: each
    answer is a 2xx or a 4xx, and the appointment stays readable (a year before 1000 once came
    out as "1-01-02", which no client can parse)."""
    host, patient = await people(client, org)
    ident = (await book(client, org, host, [patient]))["id"]
    values: list[dict[str, Any]] = [
        {"start-time": "9999-12-30T23:00:00Z", "end-time": "9999-12-30T23:59:59Z"},
        {"start-time": "0001-01-02T00:00:00Z"},
        {"recurring": {"is-recurring": True, "rrule": "FREQ=WEEKLY"}},
        {"recurring": {"is-recurring": True, "rrule": "FREQ=DAILY;UNTIL=99991230T000000Z"}},
        {"recurring": {"is-recurring": False}},
        {"recurring": None},
        {"time-zone": "Pacific/Kiritimati"},
        {"time-zone": "Etc/GMT+12"},
        {"actual-start-time": "9999-12-30T23:59:59Z", "actual-end-time": "0001-01-02T00:00:00Z"},
        {"actual-start-time": None},
        {"location": {"name": "x"}},
        {"location": None},
        {"interaction-type": "video_call"},
        {"attendees": []},
        {"attendees": [{"id": patient, "no-show": True}]},
        {"reference-patients": [patient]},
        {"reminders": [{"days-before": 30, "at": "00:00"}]},
        {"reminders": []},
        {"reminder-template": None},
        {"host": None},
        {"status": "completed"},
        {"extended": {"a": 1}},
        {"visit-note": "n"},
        {"description": None},
    ]
    for attrs in values:
        response = await client.patch(
            f"{APPOINTMENTS}{ident}/",
            headers=org.staff,
            json=doc("appointments", {"updated-by": host, **attrs}, ident),
        )
        assert response.status_code < 500, (attrs, response.text)
        got = await client.get(f"{APPOINTMENTS}{ident}/", headers=org.staff)
        assert got.status_code == 200, (attrs, got.text)
    for a, b in itertools.combinations(values[:10], 2):
        response = await client.patch(
            f"{APPOINTMENTS}{ident}/",
            headers=org.staff,
            json=doc("appointments", {"updated-by": host, **a, **b}, ident),
        )
        assert response.status_code < 500, (a, b, response.text)
    # Far calendar edges on create, recurring.
    for start, end, rule in (
        ("9999-12-20T00:00:00Z", "9999-12-30T00:00:00Z", "FREQ=DAILY;COUNT=20"),
        ("9999-12-20T00:00:00Z", "9999-12-30T00:00:00Z", "FREQ=WEEKLY"),
        ("1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z", "FREQ=DAILY"),
        ("1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z", "FREQ=MONTHLY;BYDAY=MO,TU;BYSETPOS=-8"),
    ):
        response = await client.post(
            APPOINTMENTS,
            headers=org.staff,
            json=doc(
                "appointments",
                {
                    "name": "x",
                    "host": host,
                    "attendees": [patient],
                    "start-time": start,
                    "end-time": end,
                    "recurring": {"is-recurring": True, "rrule": rule},
                },
            ),
        )
        assert response.status_code < 500, (start, rule, response.text)
    listed = await client.get(APPOINTMENTS, headers=org.staff)
    assert listed.status_code == 200
    early = await client.patch(
        f"{APPOINTMENTS}{ident}/",
        headers=org.staff,
        json=doc(
            "appointments",
            {
                "updated-by": host,
                "recurring": {"is-recurring": False},
                "actual-start-time": None,
                "actual-end-time": None,
                "start-time": "0001-01-02T00:00:00Z",
                "end-time": "0001-01-02T00:30:00Z",
            },
            ident,
        ),
    )
    assert early.status_code == 200, early.text
    assert early.json()["data"]["attributes"]["start-time"] == "0001-01-02T00:00:00.000Z"
