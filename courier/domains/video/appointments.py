"""The video visit of a ``video_call`` appointment (docs/APPOINTMENTS.md, docs/VIDEO.md).

Booking a ``video_call`` (or changing an appointment to one) creates its visit in the same
transaction: the host and the attendees take part, the visit starts at the appointment's
(first) start and lasts as long (at most a day). Moving the appointment moves the visit while
it has not ended; new attendees join its participants. The appointment shows the visit as
``video-call: {join-url, meeting-id}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.time import utcnow
from courier.domains.video import repository as repo
from courier.domains.video.schemas import MAX_DURATION_MINUTES
from courier.domains.video.service import create_visit, join_url, participant_row
from courier.models.appointment import Appointment, InteractionType
from courier.models.video import AudioState, VideoParticipant, VisitState


def _minutes(appointment: Appointment) -> int:
    seconds = (appointment.end_time - appointment.start_time).total_seconds()
    return max(1, min(MAX_DURATION_MINUTES, int(seconds // 60)))


async def ensure_visit(
    session: AsyncSession,
    settings: Settings,
    appointment: Appointment,
    attendees: Sequence[uuid.UUID],
    actor: str,
) -> None:
    """Create (or bring in line) the visit of a ``video_call`` appointment."""
    if appointment.interaction_type != InteractionType.VIDEO_CALL.value:
        return
    people = list(
        dict.fromkeys([*(h for h in (appointment.host_id,) if h is not None), *attendees])
    )
    if appointment.video_visit_id is None:
        if not people:
            return
        made, _rows = await create_visit(
            session,
            settings,
            organization_id=appointment.organization_id,
            participants=people,
            actor=actor,
            created_by=appointment.created_by,
            appointment_id=appointment.id,
            start=appointment.start_time,
            duration=_minutes(appointment),
            subject_id=attendees[0] if len(attendees) == 1 else None,
        )
        appointment.video_visit_id = made.id
        return
    visit = await repo.load_visit(session, appointment.organization_id, appointment.video_visit_id)
    if visit is None or visit.state == VisitState.TERMINATED.value:
        return
    if visit.appointment_start != appointment.start_time:
        visit.appointment_start = appointment.start_time
        visit.join_start = None
        visit.last_modified_at = utcnow()
    if visit.appointment_duration != _minutes(appointment):
        visit.appointment_duration = _minutes(appointment)
        visit.last_modified_at = utcnow()
    now = utcnow()
    kinds = await repo.account_types(session, visit.organization_id, people)
    for position, individual_id in enumerate(people):
        if await participant_row(session, visit, individual_id) is None:
            session.add(
                VideoParticipant(
                    id=uuid.uuid4(),
                    organization_id=visit.organization_id,
                    video_channel_id=visit.id,
                    individual_id=individual_id,
                    position=100 + position,
                    account_type=kinds.get(individual_id) or "participant",
                    status="invited",
                    audio_state=AudioState.UNMUTED.value,
                    disconnected=False,
                    duration=0,
                    last_sequence=0,
                    last_modified_at=now,
                )
            )


def video_call(settings: Settings | None, appointment: Appointment) -> dict[str, str | None]:
    """``video-call`` of an appointment: the join URL and the visit's id (its meeting id)."""
    if appointment.video_visit_id is None or settings is None:
        return {"join_url": None, "meeting_id": None}
    return {
        "join_url": join_url(settings, appointment.video_visit_id),
        "meeting_id": str(appointment.video_visit_id),
    }


__all__ = ["ensure_visit", "video_call"]
