"""Purging an individual from the video tables.

The visits about them (``subject-id``) or in which they took part as a patient (any
participant who is not a ``provider``) are deleted whole: participants, compositions, and the
compositions' media files (in a job). In the other visits they took part in (as a provider),
only their participant row goes.
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.video import repository
from courier.domains.video.jobs import DELETE_FILES_JOB
from courier.jobs import enqueue
from courier.models.video import VideoChannel, VideoComposition, VideoParticipant
from courier.purge import ArchiveWriter, delete_rows, purge_hook


@purge_hook("individual", name="video")
async def purge_video(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    visit_ids = await repository.visits_of_patient(session, organization_id, individual_id)
    keys = await repository.composition_keys(session, organization_id, visit_ids)
    if keys:
        await enqueue(
            session,
            DELETE_FILES_JOB,
            {"keys": keys},
            organization_id=organization_id,
        )
    if visit_ids:  # an appointment whose visit is gone shows no join-url any more
        await repository.unlink_appointments(session, organization_id, visit_ids)
    counts = {
        "video_compositions": await delete_rows(
            session,
            organization_id,
            VideoComposition,
            VideoComposition.video_channel_id.in_(visit_ids),
            archive,
        ),
        "video_participants": await delete_rows(
            session,
            organization_id,
            VideoParticipant,
            or_(
                VideoParticipant.video_channel_id.in_(visit_ids),
                VideoParticipant.individual_id == individual_id,
            ),
            archive,
        ),
        "video_channels": await delete_rows(
            session, organization_id, VideoChannel, VideoChannel.id.in_(visit_ids), archive
        ),
    }
    return counts
