"""Purging an individual from voice lines: the recordings of their calls (with their
transcriptions; the audio files in storage and the copies at the voice service are deleted by a
job each), their queue entries and the lines' records of their calls."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.domains.texts.purge import _phones
from courier.domains.voice.service import DELETE_RECORDING_JOB
from courier.jobs.outbox import enqueue
from courier.models.voice import VoiceLineCall, VoiceQueueEntry, VoiceRecording
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="voice")
async def purge_voice(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    phones = await _phones(session, organization_id, individual_id)
    counts: dict[str, int] = {}
    recordings_of = or_(
        VoiceRecording.individual_id == individual_id, VoiceRecording.phone_number.in_(phones)
    )
    recordings = (
        (
            await session.execute(
                scoped(select(VoiceRecording).where(recordings_of), VoiceRecording, organization_id)
            )
        )
        .scalars()
        .all()
    )
    for recording in recordings:
        if archive is not None:
            archive.write(
                "voice_recordings",
                {c.name: getattr(recording, c.name) for c in VoiceRecording.__table__.columns},
            )
        await enqueue(
            session,
            DELETE_RECORDING_JOB,
            {"key": recording.storage_key or "", "sid": recording.recording_sid},
            organization_id=organization_id,
        )
    await session.execute(
        scoped(delete(VoiceRecording).where(recordings_of), VoiceRecording, organization_id)
    )
    counts["voice_recordings"] = len(recordings)
    entries_of = or_(
        VoiceQueueEntry.individual_id == individual_id, VoiceQueueEntry.phone_number.in_(phones)
    )
    result = await session.execute(
        scoped(delete(VoiceQueueEntry).where(entries_of), VoiceQueueEntry, organization_id)
    )
    counts["voice_queue_entries"] = int(getattr(result, "rowcount", 0) or 0)
    if phones:
        result = await session.execute(
            scoped(
                delete(VoiceLineCall).where(VoiceLineCall.caller.in_(phones)),
                VoiceLineCall,
                organization_id,
            )
        )
        counts["voice_line_calls"] = int(getattr(result, "rowcount", 0) or 0)
    return counts
