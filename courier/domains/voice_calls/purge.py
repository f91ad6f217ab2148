"""Purging an individual's calls: the conferences that dialled them (with every leg), the
surveys they were called for (with their answers), every call leg placed to them (their dial
logs, as a conference's provider too: the conference itself stays for its patient and
forgets them), and the voice deliveries of those legs with their history.
Runs before the people hook, which deletes the individual itself."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.voice_calls import repository
from courier.domains.voice_calls.schemas import DIAL_LOG_TYPE
from courier.models.delivery import Delivery
from courier.models.voice_call import VoiceConference, VoiceDialLog, VoiceSurvey
from courier.purge import ArchiveWriter, delete_rows, purge_hook


@purge_hook("individual", name="voice-calls", order=60)
async def purge_voice_calls(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    org = organization_id
    conference_ids = await repository.conferences_of(session, org, individual_id)
    survey_ids = await repository.surveys_of(session, org, individual_id)
    leg_ids = await repository.leg_ids_of(session, org, individual_id, conference_ids, survey_ids)
    counts = {"deliveries": 0, "voice_dial_logs": 0, "voice_surveys": 0, "voice_conferences": 0}
    for start in range(0, len(leg_ids), 500):
        chunk = leg_ids[start : start + 500]
        # Their history rows go with them (ON DELETE CASCADE).
        counts["deliveries"] += await delete_rows(
            session,
            org,
            Delivery,
            (Delivery.resource_type == DIAL_LOG_TYPE) & Delivery.resource_id.in_(chunk),
            archive,
        )
        counts["voice_dial_logs"] += await delete_rows(
            session, org, VoiceDialLog, VoiceDialLog.id.in_(chunk), archive
        )
    counts["voice_surveys"] = await delete_rows(
        session, org, VoiceSurvey, VoiceSurvey.id.in_(survey_ids), archive
    )
    counts["voice_conferences"] = await delete_rows(
        session, org, VoiceConference, VoiceConference.id.in_(conference_ids), archive
    )
    await repository.unlink_provider(session, org, individual_id)
    return counts
