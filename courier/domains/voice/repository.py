"""The SQL of voice lines (tenant-scoped): a row by id, the account's voice-capable number, the
caller an incoming number names, the order of a line's queue, a number's one line across the
installation, and the rows a signed call webhook or download link names. The text account a
line takes its number from is read through :mod:`courier.domains.text_accounts.repository`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Select, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped, unscoped
from courier.models.individual import Individual
from courier.models.text_account import TextAccountNumber
from courier.models.voice import (
    VoiceLineCall,
    VoiceQueueAgent,
    VoiceQueueEntry,
    VoiceRecording,
    VoiceSetting,
)

M = TypeVar("M")
SIGNED = "a signed link or a signed call webhook names its row by id"


async def fetch_row(session: AsyncSession, model: type[M], org: uuid.UUID, ident: Any) -> M | None:
    """The organization's row ``ident`` of ``model`` (None when absent or another's)."""
    if ident is None:
        return None
    stmt = scoped(select(model).where(model.id == ident), model, org)  # type: ignore[attr-defined]
    found: M | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def voice_number(
    session: AsyncSession, org: uuid.UUID, account_id: uuid.UUID, phone: str
) -> TextAccountNumber | None:
    """The account's active number ``phone`` with voice capability, else None."""
    stmt = scoped(
        select(TextAccountNumber).where(
            TextAccountNumber.account_id == account_id,
            TextAccountNumber.phone_number == phone,
            TextAccountNumber.status == "active",
            TextAccountNumber.capability_voice.is_(True),
        ),
        TextAccountNumber,
        org,
    )
    found: TextAccountNumber | None = (await session.execute(stmt)).scalars().first()
    return found


async def line_of_number(session: AsyncSession, phone: str) -> uuid.UUID | None:
    """The line that ``phone`` serves, in whichever organization (a number serves one line
    across the installation)."""
    stmt = unscoped(
        select(VoiceSetting.id).where(VoiceSetting.phone_number == phone).limit(1),
        "a number serves one line across the installation",
    )
    found: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


def _individual_with_phone(org: uuid.UUID, phone: str) -> Select[Any]:
    """The organization's individual with the phone ``phone`` (the first by id)."""
    return scoped(
        select(Individual.id).where(Individual.phone == phone).order_by(Individual.id).limit(1),
        Individual,
        org,
    )


async def individual_by_phone(
    session: AsyncSession, org: uuid.UUID, phone: str
) -> uuid.UUID | None:
    stmt = _individual_with_phone(org, phone)
    found: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


# --- the IVR's rows: one ``INSERT ... ON CONFLICT DO NOTHING`` each, so a webhook repeated (or
# two at once) makes one row ----------------------------------------------------------------------


def _insert(session: AsyncSession, model: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` of the session's dialect."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


async def _inserted(session: AsyncSession, stmt: Any) -> uuid.UUID | None:
    """Run an insert marked for a row of the line's organization; its id, None on conflict."""
    marked = stmt.execution_options(courier_tenant="insert: a row of the line's organization")
    found: uuid.UUID | None = (await session.execute(marked)).scalar_one_or_none()
    return found


async def record_line_call(
    session: AsyncSession,
    setting: VoiceSetting,
    *,
    call_sid: str,
    caller: str,
    status: str,
    now: datetime,
) -> uuid.UUID | None:
    """The line's record of the call (how its callbacks find the organization); None: the
    call has one already."""
    stmt = (
        _insert(session, VoiceLineCall)
        .values(
            id=uuid.uuid4(),
            organization_id=setting.organization_id,
            setting_id=setting.id,
            call_sid=call_sid,
            caller=caller,
            status=status,
            step="greeting",
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["call_sid"])
        .returning(VoiceLineCall.id)
    )
    return await _inserted(session, stmt)


async def join_queue(
    session: AsyncSession, setting: VoiceSetting, *, call_sid: str, caller: str, now: datetime
) -> uuid.UUID | None:
    """The caller's queue entry, the individual with the caller's phone found in the same
    statement; None: the call has one already."""
    org = setting.organization_id
    stmt = (
        _insert(session, VoiceQueueEntry)
        .values(
            id=uuid.uuid4(),
            organization_id=org,
            setting_id=setting.id,
            call_sid=call_sid,
            phone_number=caller,
            individual_id=_individual_with_phone(org, caller).scalar_subquery(),
            state="waiting",
            enqueued_at=now,
            created_at=now,
            last_modified_at=now,
        )
        .on_conflict_do_nothing(index_elements=["call_sid"])
        .returning(VoiceQueueEntry.id)
    )
    return await _inserted(session, stmt)


async def waiting_order(
    session: AsyncSession, org: uuid.UUID, setting_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Each waiting entry's position (1 = next served) on its line, from the order now."""
    ids = list(dict.fromkeys(setting_ids))
    if not ids:
        return {}
    query = cast(
        Select[Any],
        select(VoiceQueueEntry.id, VoiceQueueEntry.setting_id)
        .where(VoiceQueueEntry.setting_id.in_(ids), VoiceQueueEntry.state == "waiting")
        .order_by(VoiceQueueEntry.setting_id, VoiceQueueEntry.enqueued_at, VoiceQueueEntry.id),
    )
    stmt = scoped(query, VoiceQueueEntry, org)
    positions: dict[uuid.UUID, int] = {}
    counts: dict[uuid.UUID, int] = {}
    for entry_id, setting_id in (await session.execute(stmt)).all():
        counts[setting_id] = counts.get(setting_id, 0) + 1
        positions[entry_id] = counts[setting_id]
    return positions


# --- what a signed webhook or link names (no organization yet) ---------------------------------


async def line_of_webhook(session: AsyncSession, ident: uuid.UUID) -> VoiceSetting | None:
    """The line a (verified) call webhook names."""
    stmt = unscoped(select(VoiceSetting).where(VoiceSetting.id == ident), SIGNED)
    found: VoiceSetting | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def recording_of_link(session: AsyncSession, ident: uuid.UUID) -> VoiceRecording | None:
    """The recording a (verified) download link names."""
    stmt = unscoped(select(VoiceRecording).where(VoiceRecording.id == ident), SIGNED)
    found: VoiceRecording | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def count_download(session: AsyncSession, ident: uuid.UUID) -> None:
    """One more download of the recording (counted in the database: downloads at the same
    moment each count)."""
    await session.execute(
        unscoped(
            update(VoiceRecording)
            .where(VoiceRecording.id == ident)
            .values(download_count=VoiceRecording.download_count + 1),
            SIGNED,
        )
    )


# --- the queue (the dispatch job: conditional updates, so concurrent dispatches never pair one
# caller with two agents or one agent with two callers) -----------------------------------------


async def available_agents(
    session: AsyncSession, org: uuid.UUID, setting_id: uuid.UUID
) -> list[VoiceQueueAgent]:
    """The line's free agents, longest-free first."""
    stmt = scoped(
        select(VoiceQueueAgent)
        .where(VoiceQueueAgent.setting_id == setting_id, VoiceQueueAgent.state == "available")
        .order_by(VoiceQueueAgent.free_since, VoiceQueueAgent.id),
        VoiceQueueAgent,
        org,
    )
    return list((await session.execute(stmt)).scalars().all())


async def waiting_entries(
    session: AsyncSession, org: uuid.UUID, setting_id: uuid.UUID, limit: int
) -> list[VoiceQueueEntry]:
    """The line's first ``limit`` waiting callers, longest-waiting first."""
    stmt = scoped(
        select(VoiceQueueEntry)
        .where(VoiceQueueEntry.setting_id == setting_id, VoiceQueueEntry.state == "waiting")
        .order_by(VoiceQueueEntry.enqueued_at, VoiceQueueEntry.id)
        .limit(limit),
        VoiceQueueEntry,
        org,
    )
    return list((await session.execute(stmt)).scalars().all())


async def take_agent(
    session: AsyncSession, org: uuid.UUID, agent_id: uuid.UUID, entry_id: uuid.UUID, now: datetime
) -> bool:
    """The agent, if still available, becomes busy with the entry (False: another dispatch
    took it)."""
    took = await session.execute(
        scoped(
            update(VoiceQueueAgent)
            .where(VoiceQueueAgent.id == agent_id, VoiceQueueAgent.state == "available")
            .values(state="busy", entry_id=entry_id, last_modified_at=now)
            .execution_options(synchronize_session=False),
            VoiceQueueAgent,
            org,
        )
    )
    return bool(took.rowcount == 1)  # type: ignore[attr-defined]


async def connect_entry(
    session: AsyncSession, org: uuid.UUID, entry_id: uuid.UUID, agent_id: uuid.UUID, now: datetime
) -> bool:
    """The caller, if still waiting, is connected to the agent (False: taken, or left)."""
    moved = await session.execute(
        scoped(
            update(VoiceQueueEntry)
            .where(VoiceQueueEntry.id == entry_id, VoiceQueueEntry.state == "waiting")
            .values(state="connected", agent_id=agent_id, connected_at=now, last_modified_at=now)
            .execution_options(synchronize_session=False),
            VoiceQueueEntry,
            org,
        )
    )
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


async def free_agent(session: AsyncSession, org: uuid.UUID, agent_id: uuid.UUID) -> None:
    """The agent is available again, with no caller."""
    await session.execute(
        scoped(
            update(VoiceQueueAgent)
            .where(VoiceQueueAgent.id == agent_id)
            .values(state="available", entry_id=None)
            .execution_options(synchronize_session=False),
            VoiceQueueAgent,
            org,
        )
    )


async def open_call_sids(session: AsyncSession, org: uuid.UUID, setting_id: uuid.UUID) -> list[str]:
    """The calls still waiting or connected on the line, by the voice service's id."""
    stmt = scoped(
        select(VoiceQueueEntry.call_sid).where(
            VoiceQueueEntry.setting_id == setting_id,
            VoiceQueueEntry.ended_at.is_(None),
            VoiceQueueEntry.state.in_(["waiting", "connected"]),
        ),
        VoiceQueueEntry,
        org,
    )
    return list((await session.execute(stmt)).scalars().all())


async def entry_of_call(
    session: AsyncSession, org: uuid.UUID, call_sid: str
) -> VoiceQueueEntry | None:
    """The queue entry of a call (one per call)."""
    stmt = scoped(
        select(VoiceQueueEntry).where(VoiceQueueEntry.call_sid == call_sid), VoiceQueueEntry, org
    )
    found: VoiceQueueEntry | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def entry_state_of_call(session: AsyncSession, org: uuid.UUID, call_sid: str) -> str | None:
    """The state of a call's queue entry (None: it never queued)."""
    stmt = scoped(
        select(VoiceQueueEntry.state).where(VoiceQueueEntry.call_sid == call_sid),
        VoiceQueueEntry,
        org,
    )
    found: str | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def recording_by_sid(
    session: AsyncSession, org: uuid.UUID, recording_sid: str
) -> VoiceRecording | None:
    stmt = scoped(
        select(VoiceRecording).where(VoiceRecording.recording_sid == recording_sid),
        VoiceRecording,
        org,
    )
    found: VoiceRecording | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def line_call(session: AsyncSession, call_sid: str) -> VoiceLineCall | None:
    """The call to a line a voice service's callback names (any organization: a callback names
    only the call)."""
    if not call_sid:
        return None
    stmt = unscoped(
        select(VoiceLineCall).where(VoiceLineCall.call_sid == call_sid),
        "a voice callback names its call by the voice service's id",
    )
    found: VoiceLineCall | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


# --- purging an individual (courier.domains.voice.purge) -------------------------------------


def _recordings_of(individual_id: uuid.UUID, phones: set[str]) -> ColumnElement[bool]:
    return or_(
        VoiceRecording.individual_id == individual_id, VoiceRecording.phone_number.in_(phones)
    )


async def recordings_of_individual(
    session: AsyncSession, org: uuid.UUID, individual_id: uuid.UUID, phones: set[str]
) -> list[VoiceRecording]:
    """The recordings of the individual's calls (by id, or by one of their ``phones``)."""
    stmt = scoped(
        select(VoiceRecording).where(_recordings_of(individual_id, phones)), VoiceRecording, org
    )
    return list((await session.execute(stmt)).scalars().all())


async def delete_recordings_of_individual(
    session: AsyncSession, org: uuid.UUID, individual_id: uuid.UUID, phones: set[str]
) -> None:
    await session.execute(
        scoped(
            delete(VoiceRecording).where(_recordings_of(individual_id, phones)),
            VoiceRecording,
            org,
        )
    )


async def delete_queue_entries_of_individual(
    session: AsyncSession, org: uuid.UUID, individual_id: uuid.UUID, phones: set[str]
) -> int:
    entries_of = or_(
        VoiceQueueEntry.individual_id == individual_id, VoiceQueueEntry.phone_number.in_(phones)
    )
    result = await session.execute(
        scoped(delete(VoiceQueueEntry).where(entries_of), VoiceQueueEntry, org)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_line_calls_from(session: AsyncSession, org: uuid.UUID, phones: set[str]) -> int:
    """Delete the lines' records of calls from ``phones``; how many they were."""
    result = await session.execute(
        scoped(delete(VoiceLineCall).where(VoiceLineCall.caller.in_(phones)), VoiceLineCall, org)
    )
    return int(getattr(result, "rowcount", 0) or 0)
