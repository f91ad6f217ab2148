"""The SQL of video visits: who sees which, their participants and compositions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.tenancy import scoped, unscoped
from courier.jsonapi.repository import CHUNK, Repository
from courier.models.video import VideoChannel, VideoComposition, VideoParticipant


def takes_part(individual_id: Any, visit_column: Any = VideoChannel.id) -> Any:
    """``exists`` a participant row of the visit (``visit_column``) for ``individual_id``."""
    other = VideoParticipant.__table__.alias("taking_part")
    return exists().where(
        other.c.video_channel_id == visit_column, other.c.individual_id == individual_id
    )


def visit_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees the visits it takes part in."""
    return stmt.where(takes_part(principal.individual_id))


def participant_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """... and everybody taking part in them."""
    return stmt.where(takes_part(principal.individual_id, VideoParticipant.video_channel_id))


def composition_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    return stmt.where(takes_part(principal.individual_id, VideoComposition.video_channel_id))


visits: Repository[VideoChannel] = Repository(
    VideoChannel, what="video channel", individual_scope=visit_scope
)
participants: Repository[VideoParticipant] = Repository(
    VideoParticipant, what="video participant", individual_scope=participant_scope
)
compositions: Repository[VideoComposition] = Repository(
    VideoComposition, what="video composition", individual_scope=composition_scope
)


async def participants_of(
    session: AsyncSession, organization_id: uuid.UUID, visit_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[VideoParticipant]]:
    found: dict[uuid.UUID, list[VideoParticipant]] = {ident: [] for ident in visit_ids}
    ids = list(found)
    for start in range(0, len(ids), CHUNK):
        stmt = scoped(select(VideoParticipant), VideoParticipant, organization_id).where(
            VideoParticipant.video_channel_id.in_(ids[start : start + CHUNK])
        )
        for row in (await session.execute(stmt)).scalars():
            found[row.video_channel_id].append(row)
    for rows in found.values():
        rows.sort(key=lambda row: (row.position, str(row.individual_id)))
    return found


async def compositions_of(
    session: AsyncSession, organization_id: uuid.UUID, visit_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[VideoComposition]]:
    found: dict[uuid.UUID, list[VideoComposition]] = {ident: [] for ident in visit_ids}
    ids = list(found)
    for start in range(0, len(ids), CHUNK):
        stmt = scoped(select(VideoComposition), VideoComposition, organization_id).where(
            VideoComposition.video_channel_id.in_(ids[start : start + CHUNK])
        )
        for row in (await session.execute(stmt)).scalars():
            found[row.video_channel_id].append(row)
    for rows in found.values():
        rows.sort(key=lambda row: (row.created_at, str(row.id)))
    return found


async def load_visit(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> VideoChannel | None:
    stmt = scoped(select(VideoChannel), VideoChannel, organization_id).where(
        VideoChannel.id == ident
    )
    found: VideoChannel | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def visit_of_room(
    session: AsyncSession, room_name: str, room_sid: str
) -> VideoChannel | None:
    """The visit whose room this is (any organization: an engine's webhook names no
    organization): by the room's unique name (the visit's id), else by the engine's id."""
    try:
        ident: uuid.UUID | None = uuid.UUID(room_name)
    except ValueError:
        ident = None
    reason = "a video engine's webhook names a room before its organization is known"
    if ident is not None:
        stmt = unscoped(select(VideoChannel).where(VideoChannel.id == ident), reason)
        found: VideoChannel | None = (await session.execute(stmt)).scalar_one_or_none()
        if found is not None:
            return found
    if not room_sid:
        return None
    stmt = unscoped(select(VideoChannel).where(VideoChannel.room_sid == room_sid), reason)
    by_sid: VideoChannel | None = (await session.execute(stmt.limit(1))).scalars().first()
    return by_sid
