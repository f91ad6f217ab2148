"""Purging an individual from appointments: their attendance rows, and the appointments
they host (an appointment is about its host and attendees; one whose host is erased keeps
no one to hold it). Attendees' badge counts are deleted with the individual by the
messaging hook."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.appointment import Appointment, AppointmentAttendee
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="appointments")
async def purge_appointments(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    attending = (
        (
            await session.execute(
                scoped(
                    select(AppointmentAttendee).where(
                        AppointmentAttendee.individual_id == individual_id
                    ),
                    AppointmentAttendee,
                    organization_id,
                )
            )
        )
        .scalars()
        .all()
    )
    hosted = (
        (
            await session.execute(
                scoped(
                    select(Appointment).where(Appointment.host_id == individual_id),
                    Appointment,
                    organization_id,
                )
            )
        )
        .scalars()
        .all()
    )
    hosted_ids = {row.id for row in hosted}
    hosted_attendees = (
        (
            await session.execute(
                scoped(
                    select(AppointmentAttendee).where(
                        AppointmentAttendee.appointment_id.in_(hosted_ids)
                    ),
                    AppointmentAttendee,
                    organization_id,
                )
            )
        )
        .scalars()
        .all()
        if hosted_ids
        else []
    )
    attendee_rows = {row.id: row for row in [*attending, *hosted_attendees]}
    if archive is not None:
        archive.write_rows("appointment_attendees", list(attendee_rows.values()))
        archive.write_rows("appointments", hosted)
    for row in attendee_rows.values():
        await session.delete(row)
    await session.flush()
    for appointment in hosted:
        await session.delete(appointment)
    # Internal appointments about this patient forget them; who booked or changed others
    # becomes unknown.
    about = [
        row
        for row in (
            await session.execute(
                scoped(
                    select(Appointment).where(Appointment.internal.is_(True)),
                    Appointment,
                    organization_id,
                )
            )
        ).scalars()
        if str(individual_id) in (row.reference_patients or [])
    ]
    for row in about:
        if archive is not None:
            archive.write_rows("appointments", [row])
        row.reference_patients = [p for p in row.reference_patients if p != str(individual_id)]
    for column in (Appointment.created_by, Appointment.last_updated_by):
        await session.execute(
            scoped(
                update(Appointment).where(column == individual_id).values({column: None}),
                Appointment,
                organization_id,
            )
        )
    return {
        "appointment_attendees": len(attendee_rows),
        "appointments": len(hosted),
        "appointments.reference-patients": len(about),
    }
