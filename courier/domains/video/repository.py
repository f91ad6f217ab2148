"""The SQL of video visits: who sees which, their participants and compositions, the people
and users they show, and the encounter's one-time write."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.tenancy import scoped, unscoped
from courier.domains.people.repository import individuals_by_id as individuals_by_id
from courier.domains.templates.repository import template_by_id
from courier.jsonapi.repository import CHUNK, Repository
from courier.models.appointment import Appointment
from courier.models.delivery import ProviderInbound
from courier.models.individual import Individual
from courier.models.messaging import MessagingChannel
from courier.models.organization import Organization
from courier.models.template import Template
from courier.models.user import User
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
# The messaging channel a visit names (``messaging-channel-id``): does it exist?
messaging_channels: Repository[MessagingChannel] = Repository(
    MessagingChannel, what="messaging channel"
)


def _columns(*columns: Any) -> Select[Any]:
    """``SELECT columns`` typed as the tenancy helpers take it."""
    stmt: Select[Any] = select(*columns)
    return stmt


async def _children_of(
    session: AsyncSession,
    organization_id: uuid.UUID,
    model: Any,
    visit_ids: Sequence[uuid.UUID],
    order: Callable[[Any], Any],
) -> dict[uuid.UUID, list[Any]]:
    """The organization's rows of ``model`` by their visit (each visit asked, even with none),
    in ``order``: one statement per CHUNK visits."""
    found: dict[uuid.UUID, list[Any]] = {ident: [] for ident in visit_ids}
    ids = list(found)
    for start in range(0, len(ids), CHUNK):
        stmt = scoped(select(model), model, organization_id).where(
            model.video_channel_id.in_(ids[start : start + CHUNK])
        )
        for row in (await session.execute(stmt)).scalars():
            found[row.video_channel_id].append(row)
    for rows in found.values():
        rows.sort(key=order)
    return found


async def participants_of(
    session: AsyncSession, organization_id: uuid.UUID, visit_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[VideoParticipant]]:
    return await _children_of(
        session,
        organization_id,
        VideoParticipant,
        visit_ids,
        lambda row: (row.position, str(row.individual_id)),
    )


async def compositions_of(
    session: AsyncSession, organization_id: uuid.UUID, visit_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[VideoComposition]]:
    return await _children_of(
        session,
        organization_id,
        VideoComposition,
        visit_ids,
        lambda row: (row.created_at, str(row.id)),
    )


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


async def has_composition(
    session: AsyncSession, organization_id: uuid.UUID, visit_id: uuid.UUID
) -> bool:
    stmt = scoped(select(VideoComposition.id), VideoComposition, organization_id).where(
        VideoComposition.video_channel_id == visit_id
    )
    return (await session.execute(stmt)).first() is not None


async def load_composition(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID
) -> VideoComposition | None:
    stmt = scoped(select(VideoComposition), VideoComposition, organization_id).where(
        VideoComposition.id == ident
    )
    found: VideoComposition | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def reminder_template(
    session: AsyncSession, organization_id: uuid.UUID, template_id: uuid.UUID | None
) -> Template | None:
    """The template a visit's reminders use (None: it was deleted)."""
    return await template_by_id(session, organization_id, template_id)


async def load_visit_of_link(session: AsyncSession, ident: uuid.UUID) -> VideoChannel | None:
    """The visit a signed join link names (the link carries no credentials of an
    organization)."""
    stmt = unscoped(
        select(VideoChannel).where(VideoChannel.id == ident),
        "a signed join link names its visit (and so its organization)",
    )
    found: VideoChannel | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def earlier_unapplied(
    session: AsyncSession, inbound: ProviderInbound, event_types: Sequence[str]
) -> bool:
    """Whether an event of the same room (of ``event_types``) received before ``inbound`` is
    still to be applied."""
    stmt = unscoped(
        select(ProviderInbound.id).where(
            ProviderInbound.organization_id == inbound.organization_id,  # tenancy-ok: see below
            ProviderInbound.provider == inbound.provider,
            ProviderInbound.vendor_id == inbound.vendor_id,
            ProviderInbound.applied_at.is_(None),
            ProviderInbound.received_at < inbound.received_at,
            ProviderInbound.event_type.in_(event_types),
        ),
        "provider_inbound is not a tenant table; the statement names its organization",
    )
    return (await session.execute(stmt.limit(1))).first() is not None


async def find_participant(
    session: AsyncSession, organization_id: uuid.UUID, visit_id: uuid.UUID, individual_id: uuid.UUID
) -> VideoParticipant | None:
    """The individual's participation in the visit, if any."""
    stmt = scoped(select(VideoParticipant), VideoParticipant, organization_id).where(
        VideoParticipant.video_channel_id == visit_id,
        VideoParticipant.individual_id == individual_id,
    )
    found: VideoParticipant | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def finalize_encounter(
    session: AsyncSession,
    visit: VideoChannel,
    encounter_id: uuid.UUID,
    encounter: dict[str, Any],
    now: datetime,
) -> bool:
    """Store the encounter on the visit, exactly once even when two finalize at the same
    moment: only the UPDATE that finds no encounter yet changes the row (False: another
    did)."""
    done = await session.execute(
        scoped(update(VideoChannel), VideoChannel, visit.organization_id)
        .where(VideoChannel.id == visit.id, VideoChannel.encounter_id.is_(None))
        .values(encounter_id=encounter_id, encounter=encounter, last_modified_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


async def encounters_of(
    session: AsyncSession, organization_id: uuid.UUID, visit_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """The encounter id (None: not finalized) of each of the visits."""
    stmt = scoped(
        _columns(VideoChannel.id, VideoChannel.encounter_id), VideoChannel, organization_id
    ).where(VideoChannel.id.in_(list(visit_ids)))
    return {ident: enc for ident, enc in (await session.execute(stmt)).all()}


# --- the people a visit shows ------------------------------------------------------------------


async def account_types(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The account type of each of the organization's individuals among ``individual_ids``."""
    stmt = scoped(
        _columns(Individual.id, Individual.account_type), Individual, organization_id
    ).where(Individual.id.in_(list(individual_ids)))
    return {ident: kind for ident, kind in (await session.execute(stmt)).all()}


async def users_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, User]:
    """The user whose primary individual each one is."""
    if not individual_ids:
        return {}
    stmt = scoped(select(User), User, organization_id).where(
        User.primary_individual_id.in_(list(dict.fromkeys(individual_ids)))
    )
    return {
        row.primary_individual_id: row
        for row in (await session.execute(stmt)).scalars()
        if row.primary_individual_id is not None
    }


async def organization_display_name(
    session: AsyncSession, organization_id: uuid.UUID
) -> str | None:
    """The organization's display name, else its name (None: no such organization)."""
    stmt = unscoped(
        _columns(Organization.display_name, Organization.name).where(
            Organization.id == organization_id
        ),
        "an organization row is the tenant itself",
    )
    display = (await session.execute(stmt)).first()
    return (display[0] or display[1]) if display else None


# --- purging an individual (courier.domains.video.purge) -------------------------------------


async def visits_of_patient(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[uuid.UUID]:
    """The visits about ``individual_id`` or in which they took part other than as a
    provider (one query)."""
    as_patient = scoped(
        select(VideoParticipant.video_channel_id).where(
            VideoParticipant.individual_id == individual_id,
            VideoParticipant.account_type != "provider",
        ),
        VideoParticipant,
        organization_id,
    )
    stmt = scoped(
        select(VideoChannel.id).where(
            or_(VideoChannel.subject_id == individual_id, VideoChannel.id.in_(as_patient))
        ),
        VideoChannel,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def composition_keys(
    session: AsyncSession, organization_id: uuid.UUID, visit_ids: Sequence[uuid.UUID]
) -> list[str]:
    """The storage keys of these visits' stored compositions."""
    stmt = scoped(
        select(VideoComposition.storage_key).where(
            VideoComposition.video_channel_id.in_(visit_ids),
            VideoComposition.storage_key.is_not(None),
        ),
        VideoComposition,
        organization_id,
    )
    return [key for key in (await session.execute(stmt)).scalars() if key is not None]


async def unlink_appointments(
    session: AsyncSession, organization_id: uuid.UUID, visit_ids: Sequence[uuid.UUID]
) -> None:
    """The appointments of these visits forget them (they show no join-url any more)."""
    await session.execute(
        scoped(update(Appointment), Appointment, organization_id)
        .where(Appointment.video_visit_id.in_(visit_ids))
        .values(video_visit_id=None)
        .execution_options(synchronize_session=False)
    )
