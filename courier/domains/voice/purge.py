"""Purging an individual from voice lines: the recordings of their calls (with their
transcriptions; the audio files in storage and the copies at the voice service are deleted by a
job each), their queue entries and the lines' records of their calls."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.texts.repository import phones_of_individual
from courier.domains.voice import repository
from courier.domains.voice.service import DELETE_RECORDING_JOB
from courier.jobs.outbox import enqueue
from courier.models.voice import VoiceRecording
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="voice")
async def purge_voice(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    org = organization_id
    phones = await phones_of_individual(session, org, individual_id)
    counts: dict[str, int] = {}
    recordings = await repository.recordings_of_individual(session, org, individual_id, phones)
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
    await repository.delete_recordings_of_individual(session, org, individual_id, phones)
    counts["voice_recordings"] = len(recordings)
    counts["voice_queue_entries"] = await repository.delete_queue_entries_of_individual(
        session, org, individual_id, phones
    )
    if phones:
        counts["voice_line_calls"] = await repository.delete_line_calls_from(session, org, phones)
    return counts
