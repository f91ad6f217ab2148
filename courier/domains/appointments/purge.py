"""Purging an individual from appointments: their attendance rows are deleted, and with them
the appointments left without any attendee (theirs alone); appointments they host keep their
other attendees and lose their host; internal appointments about them forget them;
``created-by``/``last-updated-by`` naming them become null. Their badge counts are deleted
with the individual by the messaging hook. Status histories and change logs name people by
id only."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.appointments import repository
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="appointments")
async def purge_appointments(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    attending = await repository.attendance_of(session, organization_id, individual_id)
    if archive is not None:
        archive.write_rows("appointment_attendees", attending)
    for row in attending:
        await session.delete(row)
    await session.flush()
    # An appointment left without attendees was theirs alone: it goes too.
    theirs = {row.appointment_id for row in attending}
    still_attended = await repository.attended(session, organization_id, theirs)
    alone = (
        await repository.appointments_by_id(session, organization_id, theirs - still_attended)
        if theirs - still_attended
        else []
    )
    if archive is not None:
        archive.write_rows("appointments", alone)
    for appointment in alone:
        await session.delete(appointment)
    await session.flush()
    # Appointments the individual hosts stay (they are their attendees' too), without host.
    hosted = await repository.unlink_host(session, organization_id, individual_id)
    # Internal appointments about this patient forget them; who booked or changed others
    # becomes unknown.
    about = [
        appointment
        for appointment in await repository.internal_appointments(session, organization_id)
        if str(individual_id) in (appointment.reference_patients or [])
    ]
    for appointment in about:
        if archive is not None:
            archive.write_rows("appointments", [appointment])
        appointment.reference_patients = [
            p for p in appointment.reference_patients if p != str(individual_id)
        ]
    await repository.forget_editor(session, organization_id, individual_id)
    return {
        "appointment_attendees": len(attending),
        "appointments": len(alone),
        "appointments.host-unlinked": hosted,
        "appointments.reference-patients": len(about),
    }
