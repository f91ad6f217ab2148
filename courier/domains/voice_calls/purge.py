"""Purging an individual's calls: the conferences that dialled them (with every leg), the
surveys they were called for (with their answers), every call leg placed to them (their dial
logs, as a conference's provider too: the conference itself stays for its patient and
forgets them), and the voice deliveries of those legs with their history.
Runs before the people hook, which deletes the individual itself."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.domains.voice_calls.schemas import DIAL_LOG_TYPE
from courier.models.delivery import Delivery
from courier.models.voice_call import VoiceConference, VoiceDialLog, VoiceSurvey
from courier.purge import ArchiveWriter, delete_rows, purge_hook


async def _ids(session: AsyncSession, organization_id: uuid.UUID, stmt: object) -> list[uuid.UUID]:
    return list((await session.execute(stmt)).scalars())  # type: ignore[call-overload]


@purge_hook("individual", name="voice-calls", order=60)
async def purge_voice_calls(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    org = organization_id
    conference_ids = await _ids(
        session,
        org,
        scoped(
            select(VoiceConference.id).where(VoiceConference.individual_id == individual_id),
            VoiceConference,
            org,
        ),
    )
    survey_ids = await _ids(
        session,
        org,
        scoped(
            select(VoiceSurvey.id).where(VoiceSurvey.individual_id == individual_id),
            VoiceSurvey,
            org,
        ),
    )
    leg_ids = await _ids(
        session,
        org,
        scoped(
            select(VoiceDialLog.id).where(
                or_(
                    VoiceDialLog.individual_id == individual_id,
                    VoiceDialLog.conference_id.in_(conference_ids),
                    VoiceDialLog.survey_id.in_(survey_ids),
                )
            ),
            VoiceDialLog,
            org,
        ),
    )
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
    await session.execute(
        scoped(
            update(VoiceConference).where(VoiceConference.provider_id == individual_id),
            VoiceConference,
            org,
        )
        .values(provider_id=None)
        .execution_options(synchronize_session=False)
    )
    return counts
