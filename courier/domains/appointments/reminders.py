"""Appointment reminders: a template sent to each attendee at a local time of theirs.

An appointment's ``reminders`` (``[{"days-before": 1, "at": "18:00"}]``) fire at ``at`` in the
attendee's time zone (their individual's ``tz``, else the appointment's), ``days-before`` days
before the occurrence's date in that zone: a weekly 09:30 appointment in New York reminded
"the day before at 18:00" is reminded at 22:00Z in summer and 23:00Z in winter. A reminder
whose time is already past, or not before the occurrence, is not sent.

Scheduling is rolling: each booking or change enqueues ``appointments.remind`` jobs (at their
time) for the next ``AHEAD`` occurrences; each reminder job, when it runs, schedules the next
ones. Jobs are never cancelled: each checks, when due, that what it was made for still holds
(the appointment open, the person still attending, the occurrence still in the series, the
same reminder and template, the same time) and otherwise does nothing, since a change made
its own jobs. The notification goes through ``notify_many`` (the user-notification API) with
one dedupe key per occurrence, attendee and reminder, so a job run twice notifies once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.time import format_timestamp, parse_timestamp, utcnow
from courier.domains.appointments import recurrence
from courier.domains.appointments.repository import (
    OPEN_STATUSES,
    attendees_of,
    load_appointment,
    time_zones,
)
from courier.domains.templates.repository import template_by_id
from courier.domains.user_notifications.service import NotificationTarget, Notified, notify_many
from courier.jobs import JobContext, enqueue, job_handler
from courier.models.appointment import Appointment

REMIND_JOB = "appointments.remind"
AHEAD = 2  # occurrences whose reminders are queued at any time


def spec_key(reminder: Mapping[str, Any]) -> str:
    return f"{int(reminder['days-before'])}d@{reminder['at']}"


def _zone(name: str | None, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo(fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def reminder_time(occurrence: datetime, reminder: Mapping[str, Any], zone: ZoneInfo) -> datetime:
    """When ``reminder`` of the occurrence starting at ``occurrence`` fires, in UTC."""
    local_day = occurrence.astimezone(zone).date() - timedelta(days=int(reminder["days-before"]))
    hours, minutes = (int(part) for part in str(reminder["at"]).split(":"))
    return datetime.combine(local_day, time(hours, minutes), tzinfo=zone).astimezone(UTC)


async def _zones_of(
    session: AsyncSession, appointment: Appointment, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ZoneInfo]:
    if not individual_ids:
        return {}
    zones = await time_zones(session, appointment.organization_id, individual_ids)
    return {
        ident: _zone(zones.get(ident), appointment.time_zone)
        for ident in individual_ids
        if ident in zones
    }


async def schedule_reminders(
    session: AsyncSession, appointment: Appointment, *, after: datetime | None = None
) -> int:
    """Queue the reminder jobs of the next ``AHEAD`` occurrences from now (or after ``after``,
    if later); the ones queued before are found again by their dedupe keys. How many jobs it
    asked for."""
    if (
        not appointment.reminders
        or appointment.reminder_template_id is None
        or appointment.status not in OPEN_STATUSES
    ):
        return 0
    now = utcnow()
    starts = recurrence.occurrences(
        appointment.rrule,
        appointment.start_time,
        appointment.time_zone,
        after=max(now, after) if after is not None else now,
        count=AHEAD,
    )
    attendees = (await attendees_of(session, appointment.organization_id, [appointment.id]))[
        appointment.id
    ]
    zones = await _zones_of(session, appointment, [a.individual_id for a in attendees])
    asked = 0
    for start in starts:
        for individual_id, zone in zones.items():
            for reminder in appointment.reminders:
                due = reminder_time(start, reminder, zone)
                if due <= now or due >= start:
                    continue
                occurrence = format_timestamp(start)
                await enqueue(
                    session,
                    REMIND_JOB,
                    {
                        "appointment_id": appointment.id,
                        "individual_id": individual_id,
                        "occurrence": occurrence,
                        "reminder": spec_key(reminder),
                        "template_id": appointment.reminder_template_id,
                        "due": format_timestamp(due),
                    },
                    organization_id=appointment.organization_id,
                    run_at=due,
                    dedupe_key=f"{REMIND_JOB}:{appointment.id}:{occurrence}:{individual_id}:"
                    f"{spec_key(reminder)}:{format_timestamp(due)}",
                )
                asked += 1
    return asked


def _location_text(appointment: Appointment) -> str:
    location = appointment.location or {}
    keys = ("name", "room", "line1", "line2", "city", "state", "postal-code", "country")
    return ", ".join(str(location[key]) for key in keys if location.get(key))


def _ends(occurrence: datetime, appointment: Appointment) -> datetime:
    try:
        return occurrence + (appointment.end_time - appointment.start_time)
    except OverflowError:  # at the calendar's end
        return appointment.end_time


def template_data(appointment: Appointment, occurrence: datetime) -> dict[str, Any]:
    """The data a reminder template may require (a template names the keys it uses)."""
    return {
        "appointment_id": str(appointment.id),
        "appointment_name": appointment.name,
        "appointment_time": format_timestamp(occurrence),
        "appointment_end": format_timestamp(_ends(occurrence, appointment)),
        "appointment_location": _location_text(appointment),
        "appointment_interaction_type": appointment.interaction_type,
        "appointment_time_zone": appointment.time_zone,
    }


@job_handler(REMIND_JOB, max_attempts=10)
async def remind(job: JobContext) -> dict[str, Any] | None:
    session, org, payload = job.session, job.organization_id, job.payload
    appointment = await load_appointment(session, org, uuid.UUID(str(payload["appointment_id"])))
    if appointment is None:
        return {"skipped": "the appointment is gone"}
    individual_id = uuid.UUID(str(payload["individual_id"]))
    occurrence = parse_timestamp(str(payload["occurrence"]))
    reason = await _stale(session, appointment, individual_id, occurrence, payload)
    if reason is not None:
        return {"skipped": reason}
    template = await template_by_id(session, org, appointment.reminder_template_id)
    if template is None:
        return {"skipped": "the reminder template is gone"}
    key = f"appointment:{appointment.id}:{payload['occurrence']}:{individual_id}:"
    results = await notify_many(
        session,
        job.settings,
        organization_id=org,
        template=template,
        data=template_data(appointment, occurrence),
        targets=[NotificationTarget(individual_id)],
        source=f"appointment:{appointment.id}",
        dedupe_keys=[key + str(payload["reminder"])],
    )
    # The following occurrences' reminders (rolling).
    await schedule_reminders(session, appointment, after=occurrence + timedelta(seconds=1))
    outcome = results.get(individual_id)
    if isinstance(outcome, Notified):
        return {"notification_id": str(outcome.notification_id), "created": outcome.created}
    return {"not_sent": outcome.reason if outcome is not None else "unknown"}


async def _stale(
    session: AsyncSession,
    appointment: Appointment,
    individual_id: uuid.UUID,
    occurrence: datetime,
    payload: Mapping[str, Any],
) -> str | None:
    """Why this reminder no longer holds (None: it does)."""
    if appointment.status not in OPEN_STATUSES:
        return f"the appointment is {appointment.status}"
    if str(appointment.reminder_template_id) != str(payload["template_id"]):
        return "the reminder template changed"
    reminder = next((r for r in appointment.reminders if spec_key(r) == payload["reminder"]), None)
    if reminder is None:
        return "the reminder was removed"
    attendees = (await attendees_of(session, appointment.organization_id, [appointment.id]))[
        appointment.id
    ]
    if individual_id not in {a.individual_id for a in attendees}:
        return "no longer an attendee"
    found = recurrence.occurrences(
        appointment.rrule, appointment.start_time, appointment.time_zone, after=occurrence, count=1
    )
    if found != [occurrence]:
        return "the occurrence moved"
    zone = (await _zones_of(session, appointment, [individual_id])).get(individual_id)
    if (
        zone is None
        or format_timestamp(reminder_time(occurrence, reminder, zone)) != payload["due"]
    ):
        return "the reminder time moved"
    return None
