"""Appointment jobs: the invitation email (with its ``.ics``) when an appointment is booked,
and the ``appointment`` badge counts set again when an appointment has ended.

- ``appointments.invite``: when an appointment is booked, and again (``SEQUENCE`` one higher,
  or ``METHOD:CANCEL`` once cancelled) when its name, times, rule, zone, place or interaction
  type change or it is cancelled: one email per attendee who has an email address, through the email
  domain's path (``do_queue_rendered``: a ``user-emails`` row and its delivery), carrying
  ``invitation.ics`` as an attachment row of that email (``user-email-attachments``, ready at
  once: Courier made the file). The files are written to storage in one recorded step, under
  ids derived from the job, so a retried job writes and attaches the same files, never two.
  An address that bounced earlier is skipped.
- ``appointments.refresh-badges``: due at the end of the appointment's last occurrence; an
  ended appointment no longer counts on its attendees' badge.
- ``appointments.remind``: the reminders (``courier.domains.appointments.reminders``).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import ApiError
from courier.core.time import format_timestamp, utcnow
from courier.domains.appointments.invitation import Invitee, invitation
from courier.domains.appointments.reminders import schedule_reminders
from courier.domains.appointments.repository import (
    attendees_of,
    load_appointment,
    refresh_badges,
)
from courier.domains.email.service import do_queue_rendered
from courier.domains.email.uploads import email_uploads
from courier.domains.people.repository import individuals_by_id
from courier.domains.people.schemas import check_email
from courier.jobs import JobContext, enqueue, job_handler
from courier.models.appointment import Appointment, AppointmentStatus
from courier.models.email import UserEmailAttachment
from courier.models.individual import Individual
from courier.models.upload import UploadStatus
from courier.providers.email.message import EmailContent
from courier.providers.storage import storage_for

INVITE_JOB = "appointments.invite"
BADGES_JOB = "appointments.refresh-badges"
ICS_TYPE = "text/calendar"
ICS_NAME = "invitation.ics"
ACTOR = "appointments"


async def on_booked(session: AsyncSession, appointment: Appointment) -> None:
    """In the booking's transaction: its invitations and its badge refresh at the end."""
    await enqueue(
        session,
        INVITE_JOB,
        {"appointment_id": appointment.id, "sequence": 0},
        organization_id=appointment.organization_id,
        dedupe_key=f"{INVITE_JOB}:{appointment.id}",
    )
    await _refresh_at_end(session, appointment)
    await schedule_reminders(session, appointment)


# What a change must change for the attendees to get an updated (or cancelling) invitation.
INVITATION_FIELDS = {
    "name",
    "start-time",
    "end-time",
    "recurring",
    "time-zone",
    "location",
    "interaction-type",
}


# What a change must change for the reminders to be scheduled again.
REMINDER_FIELDS = {
    "start-time",
    "end-time",
    "recurring",
    "time-zone",
    "attendees",
    "status",
    "reminders",
    "reminder-template",
}


async def on_changed(session: AsyncSession, appointment: Appointment, fields: set[str]) -> None:
    """In the change's transaction: a new end time gets its own badge refresh, new times or
    people their reminders (the jobs made before find themselves stale when due)."""
    if fields & {"start-time", "end-time", "recurring", "time-zone"}:
        await _refresh_at_end(session, appointment)
    if fields & REMINDER_FIELDS:
        await schedule_reminders(session, appointment)
    if fields & INVITATION_FIELDS or (
        "status" in fields and appointment.status == AppointmentStatus.CANCELLED.value
    ):
        sequence = len(appointment.change_log)  # one more for each logged change
        await enqueue(
            session,
            INVITE_JOB,
            {"appointment_id": appointment.id, "sequence": sequence},
            organization_id=appointment.organization_id,
            dedupe_key=f"{INVITE_JOB}:{appointment.id}:{sequence}",
        )


async def _refresh_at_end(session: AsyncSession, appointment: Appointment) -> None:
    if appointment.series_end is None:
        return  # never ends: it counts as long as it is open
    end = appointment.series_end
    await enqueue(
        session,
        BADGES_JOB,
        {"appointment_id": appointment.id},
        organization_id=appointment.organization_id,
        run_at=end + timedelta(seconds=1),
        dedupe_key=f"{BADGES_JOB}:{appointment.id}:{format_timestamp(end)}",
    )


@job_handler(BADGES_JOB, max_attempts=10)
async def refresh_ended(job: JobContext) -> dict[str, Any] | None:
    ident = uuid.UUID(str(job.payload["appointment_id"]))
    attendees = (await attendees_of(job.session, job.organization_id, [ident]))[ident]
    await refresh_badges(job.session, job.organization_id, [a.individual_id for a in attendees])
    return {"individuals": len(attendees)}


def _email_of(individual: Individual) -> str | None:
    if not individual.email:
        return None
    try:
        return check_email(individual.email)
    except ValueError:
        return None


def _name_of(individual: Individual) -> str:
    first = individual.preferred_name or individual.first_name
    return f"{first} {individual.last_name}".strip()


@job_handler(INVITE_JOB, max_attempts=10)
async def send_invitations(job: JobContext) -> dict[str, Any] | None:
    session, org = job.session, job.organization_id
    ident = uuid.UUID(str(job.payload["appointment_id"]))
    appointment = await load_appointment(session, org, ident)
    if appointment is None:
        return {"sent": 0, "reason": "the appointment was deleted"}
    attendees = (await attendees_of(session, org, [ident]))[ident]
    wanted = [a.individual_id for a in attendees]
    if appointment.host_id is not None:
        wanted.append(appointment.host_id)
    people = await individuals_by_id(session, org, wanted)
    host = people.get(appointment.host_id) if appointment.host_id else None
    organizer = Invitee(_name_of(host), _email_of(host)) if host is not None else None
    invitees = [
        Invitee(_name_of(person), _email_of(person), row.attendance_status)
        for row in attendees
        if (person := people.get(row.individual_id)) is not None
    ]
    recipients = [
        (row.individual_id, address)
        for row in attendees
        if (person := people.get(row.individual_id)) is not None
        and (address := _email_of(person)) is not None
    ]
    if not recipients:
        return {"sent": 0}
    sequence = int(job.payload.get("sequence") or 0)
    ics = invitation(
        appointment, organizer=organizer, attendees=invitees, sequence=sequence, stamp=utcnow()
    )
    # One file per email (an email's purge deletes its own attachment's file), named from
    # the job so that a retry finds the same ones.
    files = {
        individual_id: uuid.uuid5(job.job_id, f"invitation:{individual_id}")
        for individual_id, _ in recipients
    }
    keys = email_uploads.keys

    async def write_files() -> dict[str, Any]:
        storage = storage_for(job.settings)
        for file_id in files.values():
            await storage.write(keys.file(org, file_id), ics, content_type=ICS_TYPE)
        return {"files": len(files)}

    await job.step("write-ics", write_files)
    starts = appointment.start_time.astimezone(ZoneInfo(appointment.time_zone))
    when = starts.strftime("%A %d %B %Y, %H:%M") + f" ({appointment.time_zone})"
    if appointment.status == AppointmentStatus.CANCELLED.value:
        content = EmailContent(
            subject=f"Cancelled: {appointment.name}",
            text=f"{appointment.name} on {when} is cancelled.\n\n"
            "The attached notice removes it from your calendar.",
        )
    else:
        content = EmailContent(
            subject=f"{'Updated invitation' if sequence else 'Invitation'}: {appointment.name}",
            text=f"You are invited to {appointment.name} on {when}.\n\n"
            "The attached invitation adds it to your calendar"
            + (", in place of the earlier one." if sequence else "."),
        )
    sent = skipped = 0
    now = utcnow()
    for individual_id, address in recipients:
        try:
            email = await do_queue_rendered(
                session,
                job.settings,
                organization_id=org,
                to=[address],
                content=content,
                individual_id=individual_id,
                created_by=ACTOR,
            )
        except ApiError:  # the address bounced earlier for this organization
            skipped += 1
            continue
        file_id = files[individual_id]
        session.add(
            UserEmailAttachment(
                id=file_id,
                organization_id=org,
                email_id=email.id,
                individual_id=individual_id,
                created_by=ACTOR,
                filename=ICS_NAME,
                claimed_content_type=ICS_TYPE,
                content_type=f"{ICS_TYPE}; method=REQUEST",
                content_size=len(ics),
                status=UploadStatus.READY.value,
                upload_expires_at=now,
                storage_key=keys.file(org, file_id),
                processed_at=now,
                created_at=now,
                last_modified_at=now,
            )
        )
        sent += 1
    return {"sent": sent, "skipped": skipped}
