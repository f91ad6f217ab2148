"""The SQL of appointments: who sees which, their attendees, and the ``appointment`` badge."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.domains.inbox.repository import badge_count
from courier.jsonapi.repository import CHUNK, Repository
from courier.models.appointment import Appointment, AppointmentAttendee, AppointmentStatus
from courier.models.individual import Individual
from courier.models.messaging import BadgeCount

BADGE_TYPE = "appointment"
# An appointment counts on its attendees' badge while it is still ahead or under way.
OPEN_STATUSES = (
    AppointmentStatus.SCHEDULED.value,
    AppointmentStatus.CONFIRMED.value,
    AppointmentStatus.IN_PROGRESS.value,
)


def attends(individual_id: Any) -> Any:
    """``exists`` an attendee row of the appointment for ``individual_id``."""
    return exists().where(
        AppointmentAttendee.appointment_id == Appointment.id,
        AppointmentAttendee.individual_id == individual_id,
    )


def individual_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees the appointments it hosts or attends."""
    who = principal.individual_id
    return stmt.where(or_(Appointment.host_id == who, attends(who)))


appointments_repository: Repository[Appointment] = Repository(
    Appointment, what="appointment", individual_scope=individual_scope
)


async def attendees_of(
    session: AsyncSession, organization_id: uuid.UUID, appointment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AppointmentAttendee]]:
    """Each appointment's attendees, in the order they were given (chunked IN lists)."""
    found: dict[uuid.UUID, list[AppointmentAttendee]] = {ident: [] for ident in appointment_ids}
    ids = list(found)
    for start in range(0, len(ids), CHUNK):
        stmt = scoped(select(AppointmentAttendee), AppointmentAttendee, organization_id).where(
            AppointmentAttendee.appointment_id.in_(ids[start : start + CHUNK])
        )
        rows = (await session.execute(stmt)).scalars().all()
        for row in rows:
            found[row.appointment_id].append(row)
    for rows_of in found.values():
        rows_of.sort(key=lambda row: (row.position, str(row.individual_id)))
    return found


async def count_open(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_ids: Sequence[uuid.UUID],
    now: datetime,
) -> dict[uuid.UUID, int]:
    """How many open appointments (not ended, not cancelled or completed) each attends."""
    counts = {ident: 0 for ident in individual_ids}
    for start in range(0, len(individual_ids), CHUNK):
        chunk = individual_ids[start : start + CHUNK]
        columns: Any = select(AppointmentAttendee.individual_id, func.count())
        stmt: Select[Any] = scoped(columns, AppointmentAttendee, organization_id)
        stmt = (
            stmt.join(Appointment, Appointment.id == AppointmentAttendee.appointment_id)
            .where(
                AppointmentAttendee.individual_id.in_(chunk),
                Appointment.status.in_(OPEN_STATUSES),
                or_(Appointment.series_end.is_(None), Appointment.series_end > now),
            )
            .group_by(AppointmentAttendee.individual_id)
        )
        for individual_id, count in (await session.execute(stmt)).all():
            counts[individual_id] = int(count)
    return counts


async def refresh_badges(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Iterable[uuid.UUID]
) -> None:
    """Set the ``appointment`` badge count of each individual to their open appointments."""
    wanted = list(dict.fromkeys(individual_ids))
    if not wanted:
        return
    await session.flush()
    now = utcnow()
    counts = await count_open(session, organization_id, wanted, now)
    current: dict[uuid.UUID, BadgeCount] = {}
    for start in range(0, len(wanted), CHUNK):
        stmt = scoped(select(BadgeCount), BadgeCount, organization_id).where(
            BadgeCount.individual_id.in_(wanted[start : start + CHUNK]),
            BadgeCount.type == BADGE_TYPE,
        )
        for row in (await session.execute(stmt)).scalars():
            current[row.individual_id] = row
    for individual_id, count in counts.items():
        row = current.get(individual_id)
        if row is None:
            row = BadgeCount(
                id=uuid.uuid4(),
                organization_id=organization_id,
                individual_id=individual_id,
                type=BADGE_TYPE,
                count=count,
                timestamp=now,
                last_modified_at=now,
            )
            try:
                # A concurrent first count of the same individual may win the insert; this
                # one then sets the value on the row it made.
                async with session.begin_nested():
                    session.add(row)
            except IntegrityError:
                row = await badge_count(session, organization_id, individual_id, BADGE_TYPE)
        if row.count != count:
            row.count = count
            row.timestamp = now
            row.last_modified_at = now


async def load_appointment(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> Appointment | None:
    stmt = scoped(select(Appointment), Appointment, organization_id).where(Appointment.id == ident)
    found: Appointment | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def time_zones(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str | None]:
    """The time zone (``tz``) of each of the organization's individuals of ``individual_ids``."""
    columns: Any = select(Individual.id, Individual.tz)
    stmt: Select[Any] = scoped(columns, Individual, organization_id).where(
        Individual.id.in_(individual_ids)
    )
    return {ident: tz for ident, tz in (await session.execute(stmt)).all()}


# --- purging an individual (courier.domains.appointments.purge) ------------------------------


async def attendance_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[AppointmentAttendee]:
    """The attendee rows of ``individual_id``."""
    stmt = scoped(
        select(AppointmentAttendee).where(AppointmentAttendee.individual_id == individual_id),
        AppointmentAttendee,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars().all())


async def attended(
    session: AsyncSession, organization_id: uuid.UUID, appointment_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of ``appointment_ids`` that still have an attendee."""
    stmt = scoped(
        select(AppointmentAttendee.appointment_id).where(
            AppointmentAttendee.appointment_id.in_(appointment_ids)
        ),
        AppointmentAttendee,
        organization_id,
    )
    return set((await session.execute(stmt)).scalars())


async def appointments_by_id(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> list[Appointment]:
    stmt = scoped(select(Appointment).where(Appointment.id.in_(ids)), Appointment, organization_id)
    return list((await session.execute(stmt)).scalars())


async def unlink_host(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> int:
    """The appointments ``individual_id`` hosts lose their host; how many they were."""
    result = await session.execute(
        scoped(
            update(Appointment).where(Appointment.host_id == individual_id).values(host_id=None),
            Appointment,
            organization_id,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def internal_appointments(
    session: AsyncSession, organization_id: uuid.UUID
) -> list[Appointment]:
    stmt = scoped(
        select(Appointment).where(Appointment.internal.is_(True)), Appointment, organization_id
    )
    return list((await session.execute(stmt)).scalars())


async def forget_editor(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> None:
    """``created-by`` and ``last-updated-by`` naming ``individual_id`` become null (one UPDATE
    per column)."""
    for column in (Appointment.created_by, Appointment.last_updated_by):
        await session.execute(
            scoped(
                update(Appointment).where(column == individual_id).values({column: None}),
                Appointment,
                organization_id,
            )
        )
