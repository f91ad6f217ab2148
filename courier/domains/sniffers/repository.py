"""The SQL of sniffers: the logs a sniffer recorded, and the active sniffers the request
recorder matches (of every organization)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import unscoped
from courier.core.time import utcnow
from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.api_key import ApiKey
from courier.models.sniffer import Sniffer, SnifferLog
from courier.models.user import User

CACHE_REASON = "the request recorder matches requests of every organization"

logs = Repository(SnifferLog, what="sniffer log")


def logs_of(ctx: Context, sniffer: Sniffer) -> Select[Any]:
    """The requests ``sniffer`` recorded (the organization's rows only)."""
    return logs.statement(ctx).where(SnifferLog.sniffer_id == sniffer.id)


def newest_first() -> list[Any]:
    return [SnifferLog.created_at.desc(), SnifferLog.id.desc()]


async def active_sniffers(session: AsyncSession) -> list[Any]:
    """id, organization_id, valid_until, api_key_id, the user's primary_individual_id and the
    key's secret_hash of every organization's sniffers still valid (deliberately unscoped:
    the recorder sees requests of all organizations)."""
    stmt = (
        select(
            Sniffer.id,
            Sniffer.organization_id,
            Sniffer.valid_until,
            Sniffer.api_key_id,
            User.primary_individual_id,
            ApiKey.secret_hash,
        )
        .select_from(Sniffer)
        .outerjoin(User, User.id == Sniffer.user_id)
        .outerjoin(ApiKey, ApiKey.id == Sniffer.api_key_id)
        .where(Sniffer.valid_until > utcnow())
    )
    return list((await session.execute(unscoped(cast("Select[Any]", stmt), CACHE_REASON))).all())
