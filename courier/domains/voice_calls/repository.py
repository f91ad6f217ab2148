"""The SQL of voice conferences, dial logs and surveys (tenant-scoped): what an individual may
see, a call leg (locked where a provider's report changes it), a conference's legs, a
conference or survey locked for its change, and the leg a signed call webhook names."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.tenancy import ids_where, scoped, unscoped
from courier.models.voice_call import VoiceConference, VoiceDialLog, VoiceSurvey


def conference_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees the conferences it takes part in."""
    return stmt.where(
        or_(
            VoiceConference.individual_id == principal.individual_id,
            VoiceConference.provider_id == principal.individual_id,
        )
    )


def dial_log_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees the calls placed to it."""
    return stmt.where(VoiceDialLog.individual_id == principal.individual_id)


def survey_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees the surveys it was called for."""
    return stmt.where(VoiceSurvey.individual_id == principal.individual_id)


async def load_leg(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID, *, for_update: bool = False
) -> VoiceDialLog | None:
    stmt = scoped(
        select(VoiceDialLog).where(VoiceDialLog.id == ident), VoiceDialLog, organization_id
    ).execution_options(populate_existing=True)
    if for_update and session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    found: VoiceDialLog | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def legs_of(
    session: AsyncSession, organization_id: uuid.UUID, conference_id: uuid.UUID
) -> Sequence[VoiceDialLog]:
    stmt = scoped(
        select(VoiceDialLog).where(VoiceDialLog.conference_id == conference_id),
        VoiceDialLog,
        organization_id,
    ).execution_options(populate_existing=True)
    return list((await session.execute(stmt)).scalars())


async def locked(
    session: AsyncSession, model: type[Any], organization_id: uuid.UUID, ident: uuid.UUID
) -> Any:
    """The row ``ident`` of ``model``, locked for this transaction on PostgreSQL (SQLite
    writers are serialised anyway)."""
    stmt = scoped(select(model).where(model.id == ident), model, organization_id)
    stmt = stmt.execution_options(populate_existing=True)
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def leg_of_webhook(session: AsyncSession, ident: uuid.UUID) -> VoiceDialLog | None:
    """The call leg a (verified) call webhook names, in whichever organization."""
    stmt = unscoped(
        select(VoiceDialLog).where(VoiceDialLog.id == ident),
        "a call webhook signed by the voice service names its call leg",
    )
    found: VoiceDialLog | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


# --- purging an individual (courier.domains.voice_calls.purge) -------------------------------


async def conferences_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[uuid.UUID]:
    """The ids of the conferences that dialled ``individual_id`` (as the patient)."""
    return await ids_where(session, organization_id, VoiceConference.individual_id, individual_id)


async def surveys_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[uuid.UUID]:
    return await ids_where(session, organization_id, VoiceSurvey.individual_id, individual_id)


async def leg_ids_of(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    conference_ids: Sequence[uuid.UUID],
    survey_ids: Sequence[uuid.UUID],
) -> list[uuid.UUID]:
    """The legs placed to ``individual_id`` and every leg of these conferences and surveys."""
    stmt = scoped(
        select(VoiceDialLog.id).where(
            or_(
                VoiceDialLog.individual_id == individual_id,
                VoiceDialLog.conference_id.in_(conference_ids),
                VoiceDialLog.survey_id.in_(survey_ids),
            )
        ),
        VoiceDialLog,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def unlink_provider(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> None:
    """The conferences ``individual_id`` took part in as the provider forget them."""
    await session.execute(
        scoped(
            update(VoiceConference).where(VoiceConference.provider_id == individual_id),
            VoiceConference,
            organization_id,
        )
        .values(provider_id=None)
        .execution_options(synchronize_session=False)
    )
