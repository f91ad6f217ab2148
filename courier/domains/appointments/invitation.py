"""``.ics`` invitations (RFC 5545, with the ``icalendar`` library): one VCALENDAR holding the
appointment's VEVENT (its RRULE and a VTIMEZONE of its zone, so a calendar shows each
occurrence at the local time the appointment keeps) and the VTIMEZONE it names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vCalAddress, vRecur, vText

from courier.models.appointment import Appointment, AppointmentStatus

PRODUCT_ID = "-//Courier//Appointments//EN"
STATUS_OF = {
    AppointmentStatus.CANCELLED.value: "CANCELLED",
    AppointmentStatus.SCHEDULED.value: "TENTATIVE",
}
PARTSTAT_OF = {
    "going": "ACCEPTED",
    "not_going": "DECLINED",
    "maybe": "TENTATIVE",
    "pending": "NEEDS-ACTION",
}


@dataclass(frozen=True)
class Invitee:
    """An attendee as the invitation names them (no email: only their name is shown)."""

    name: str
    email: str | None
    attendance_status: str = "pending"


def invitation(
    appointment: Appointment,
    *,
    organizer: Invitee | None,
    attendees: Sequence[Invitee],
    sequence: int = 0,
    stamp: datetime | None = None,
) -> bytes:
    """The appointment as a VCALENDAR of one VEVENT: ``METHOD:REQUEST`` (``SEQUENCE``
    ``sequence``: a calendar replaces the earlier version of the same ``UID``), or
    ``METHOD:CANCEL`` once the appointment is cancelled."""
    zone = ZoneInfo(appointment.time_zone)
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    cancelled = appointment.status == AppointmentStatus.CANCELLED.value
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    event = Event()
    event.add("uid", f"{appointment.id}@courier")
    event.add("dtstamp", stamp or appointment.last_updated_at)
    event.add("sequence", sequence)
    event.add("dtstart", appointment.start_time.astimezone(zone))
    event.add("dtend", appointment.end_time.astimezone(zone))
    event.add("summary", appointment.name)
    if appointment.description:
        event.add("description", appointment.description)
    if appointment.rrule:
        event.add("rrule", vRecur.from_ical(appointment.rrule))
    location = _location_text(appointment)
    if location:
        event.add("location", location)
    event.add("status", STATUS_OF.get(appointment.status, "CONFIRMED"))
    if organizer is not None and organizer.email:
        event.add("organizer", _address(organizer, role=None))
    for person in attendees:
        if person.email:
            event.add("attendee", _address(person, role="REQ-PARTICIPANT"))
    # The zone's rules over the appointment's dates (a year either side; an open series: ten
    # years), so a calendar places every occurrence at its local time.
    start = appointment.start_time.date()
    end = appointment.series_end.date() if appointment.series_end else None
    earliest, latest = date(1970, 1, 1), date(9985, 1, 1)
    first = max(earliest, min(latest, start)) - timedelta(days=366)
    last = min(latest, end or min(latest, start) + timedelta(days=3653)) + timedelta(days=366)
    calendar.add_component(
        Timezone.from_tzid(appointment.time_zone, first_date=first, last_date=max(first, last))
    )
    calendar.add_component(event)
    ics: bytes = calendar.to_ical()
    return ics


def _address(person: Invitee, *, role: str | None) -> vCalAddress:
    address = vCalAddress(f"mailto:{person.email}")
    address.params["cn"] = vText(person.name)
    if role is not None:
        address.params["role"] = vText(role)
        address.params["partstat"] = vText(
            PARTSTAT_OF.get(person.attendance_status, "NEEDS-ACTION")
        )
        address.params["rsvp"] = vText("TRUE")
    return address


def _location_text(appointment: Appointment) -> str | None:
    location = appointment.location or {}
    parts = [
        str(location[key])
        for key in ("name", "line1", "line2", "city", "state", "postal-code", "country")
        if location.get(key)
    ]
    return ", ".join(parts) or None
