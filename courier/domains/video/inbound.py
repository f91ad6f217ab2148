"""What the video engine's events do (through the generic inbound path,
``POST /providers/video/<hook>``): participants connect, disconnect and (un)mute, rooms end.

Each event is applied in its own ``providers.apply-inbound`` job, after the earlier events of
the same room (a worker may run two apply jobs at once): one that finds an earlier event of
its room not yet applied waits a moment, up to ``ORDER_WAIT_SECONDS``.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.time import utcnow
from courier.domains.video import repository as repo
from courier.domains.video.service import (
    CHANNELS,
    PARTICIPANTS,
    audience_of,
    participant_row,
    terminate,
    visit_change,
)
from courier.jobs import JobContext, enqueue
from courier.jsonapi.changes import SYSTEM, Change, change, write_changes
from courier.models.delivery import ProviderInbound
from courier.models.video import AudioState, VideoChannel, VisitState
from courier.providers.common import InboundEvent
from courier.providers.inbound import APPLY_JOB, InboundHandler, inbound_handler
from courier.providers.video.base import RoomStatus

ORDER_WAIT_SECONDS = 10.0
ORDER_RETRY_SECONDS = 0.3
EVENT_TYPES = (
    "room-created",
    "room-ended",
    "participant-connected",
    "participant-disconnected",
    "participant-audio",
)


async def _resolve(session: AsyncSession, provider: str, event: InboundEvent) -> uuid.UUID | None:
    visit = await repo.visit_of_room(session, str(event.raw.get("RoomName") or ""), event.vendor_id)
    return visit.organization_id if visit is not None else None


def _sequence(inbound: ProviderInbound) -> int:
    try:
        return int(str(inbound.raw.get("SequenceNumber") or "0"))
    except ValueError:
        return 0


async def _apply(job: JobContext, inbound: ProviderInbound) -> None:
    session = job.session
    raw = inbound.raw
    visit = await repo.visit_of_room(session, str(raw.get("RoomName") or ""), inbound.vendor_id)
    if visit is None or visit.organization_id != job.organization_id:
        return
    if inbound.vendor_id != visit.room_sid:
        inbound.applied_at = utcnow()  # a room the visit no longer uses (or not yet bound)
        return
    waited = utcnow() - inbound.received_at
    if waited < timedelta(seconds=ORDER_WAIT_SECONDS) and await repo.earlier_unapplied(
        session, inbound, EVENT_TYPES
    ):
        rerun = int(job.payload.get("rerun", 0)) + 1
        await enqueue(
            session,
            APPLY_JOB,
            {"inbound_id": inbound.id, "rerun": rerun},
            organization_id=job.organization_id,
            run_at=utcnow() + timedelta(seconds=ORDER_RETRY_SECONDS),
            dedupe_key=f"{APPLY_JOB}:{inbound.id}:{rerun}",
        )
        return
    when = inbound.occurred_at or inbound.received_at
    changes: list[Change] = []
    kind = inbound.event_type
    if kind == "room-ended":
        visit.room_status = RoomStatus.COMPLETED.value
        if visit.state != VisitState.TERMINATED.value:
            await terminate(session, visit)
            visit.terminated_at = when
            changes.append(
                visit_change(
                    visit, "terminated", await audience_of(session, visit), ["channel-state"]
                )
            )
    elif kind.startswith("participant-"):
        changes.extend(await _participant_event(session, visit, inbound, when))
    inbound.applied_at = utcnow()
    write_changes(session, changes, actor=SYSTEM, request_id=None)


async def _participant_event(
    session: AsyncSession, visit: VideoChannel, inbound: ProviderInbound, when: datetime
) -> list[Change]:
    raw = inbound.raw
    try:
        individual_id = uuid.UUID(str(raw.get("ParticipantIdentity") or ""))
    except ValueError:
        return []  # not someone Courier granted a token to
    row = await participant_row(session, visit, individual_id)
    if row is None:
        return []
    sequence = _sequence(inbound)
    if sequence and sequence <= row.last_sequence:
        return []  # older than what the participant already shows
    row.last_sequence = max(row.last_sequence, sequence)
    fields: list[str] = []
    changes: list[Change] = []
    muted = str(raw.get("ParticipantAudioMuted") or "").lower() == "true"
    audio = AudioState.MUTED.value if muted else AudioState.UNMUTED.value
    if inbound.event_type == "participant-connected":
        row.connected_at = when
        row.disconnected = False
        row.disconnected_at = None
        row.status = "connected"
        row.vendor_id = str(raw.get("ParticipantSid") or "") or row.vendor_id
        fields += ["connected-at", "disconnected", "status"]
        if visit.state == VisitState.SCHEDULED.value:
            visit.state = VisitState.OPEN.value
            visit.opened_at = when
            visit.last_modified_at = utcnow()
            changes.append(
                visit_change(visit, "opened", await audience_of(session, visit), ["channel-state"])
            )
    elif inbound.event_type == "participant-disconnected":
        row.disconnected = True
        row.disconnected_at = when
        row.status = "disconnected"
        with contextlib.suppress(ValueError):
            row.duration += int(str(raw.get("ParticipantDuration") or "0"))
        fields += ["disconnected", "status", "duration"]
    if row.audio_state != audio:
        row.audio_state = audio
        fields.append("audio-state")
    if not fields:
        return changes
    row.last_modified_at = utcnow()
    row.last_modified_by = "video-engine"
    changes.append(
        change(
            PARTICIPANTS,
            row.id,
            "updated",
            fields=fields,
            audience=await audience_of(session, visit),
            organization_id=visit.organization_id,
            data={"video-channel-id": str(visit.id), "audio-state": row.audio_state},
        )
    )
    return changes


for _type in EVENT_TYPES:
    inbound_handler("video", _type, InboundHandler(_resolve, _apply))

__all__ = ["CHANNELS", "EVENT_TYPES"]
