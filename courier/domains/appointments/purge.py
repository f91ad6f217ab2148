"""Purging an individual from appointments: their attendance rows are deleted, and with them
the appointments left without any attendee (theirs alone); appointments they host keep their
other attendees and lose their host; internal appointments about them forget them;
``created-by``/``last-updated-by`` naming them become null. Their badge counts are deleted
with the individual by the messaging hook. Status histories and change logs name people by
id only."""

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
    if archive is not None:
        archive.write_rows("appointment_attendees", attending)
    for row in attending:
        await session.delete(row)
    await session.flush()
    # An appointment left without attendees was theirs alone: it goes too.
    theirs = {row.appointment_id for row in attending}
    still_attended = set(
        (
            await session.execute(
                scoped(
                    select(AppointmentAttendee.appointment_id).where(
                        AppointmentAttendee.appointment_id.in_(theirs)
                    ),
                    AppointmentAttendee,
                    organization_id,
                )
            )
        ).scalars()
    )
    alone = (
        list(
            (
                await session.execute(
                    scoped(
                        select(Appointment).where(Appointment.id.in_(theirs - still_attended)),
                        Appointment,
                        organization_id,
                    )
                )
            ).scalars()
        )
        if theirs - still_attended
        else []
    )
    if archive is not None:
        archive.write_rows("appointments", alone)
    for appointment in alone:
        await session.delete(appointment)
    await session.flush()
    # Appointments the individual hosts stay (they are their attendees' too), without host.
    hosted = (
        await session.execute(
            scoped(
                update(Appointment)
                .where(Appointment.host_id == individual_id)
                .values(host_id=None),
                Appointment,
                organization_id,
            )
        )
    ).rowcount  # type: ignore[attr-defined]
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
        "appointment_attendees": len(attending),
        "appointments": len(alone),
        "appointments.host-unlinked": int(hosted or 0),
        "appointments.reference-patients": len(about),
    }
