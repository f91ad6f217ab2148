"""The SQL of voice conferences, dial logs and surveys (tenant-scoped): what an individual may
see, a call leg (locked where a provider's report changes it), a conference's legs, a
conference or survey locked for its change, and the leg a signed call webhook names."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.tenancy import scoped, unscoped
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
