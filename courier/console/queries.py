"""What the console's screens read: tenant-scoped reads of the organization's rows.

The console reads the same tables the API reads, always through
:func:`courier.core.tenancy.scoped`, for the signed-in key's organization. It never writes
here: every change goes through the API's services (:mod:`courier.console.actions`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import in_organization, scoped
from courier.core.time import utcnow
from courier.models.appointment import Appointment, AppointmentStatus
from courier.models.individual import Individual
from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber
from courier.models.organization import Organization
from courier.models.user_notification import UserNotification

PATIENT = "participant"
INBOX_LIMIT = 200  # channels the inbox reads at most (the most recently active)
VISIT_WINDOW = timedelta(hours=2)


def _pair() -> Select[Any]:
    return cast("Select[Any]", select(MessagingSubscriber, Individual))


def _authors() -> Select[Any]:
    return cast("Select[Any]", select(MessagingMessage.channel_id, MessagingMessage.individual_id))


def display_name(person: Individual) -> str:
    first = person.preferred_name or person.first_name
    return f"{first} {person.last_name}".strip()


@dataclass
class InboxRow:
    channel_id: uuid.UUID
    patient_name: str
    patient_id: uuid.UUID
    kind: str  # "app" or "SMS bridge"
    unread: int
    waiting_since: datetime | None  # the patient's message nobody has answered yet
    last_message_at: datetime | None
    mine: bool
    team: frozenset[uuid.UUID] = frozenset()  # the channel's care-team subscribers


async def organization_name(session: AsyncSession, organization_id: uuid.UUID) -> str:
    org = await session.get(Organization, organization_id)
    if org is None:
        return ""
    return org.display_name or org.name


async def inbox_rows(
    session: AsyncSession, organization_id: uuid.UUID, viewer: uuid.UUID | None
) -> list[InboxRow]:
    """The organization's patient channels (those a participant subscribes to), newest first.

    Unread: messages after the care team's furthest read horizon (the highest ``ack_seq`` of
    the channel's provider subscribers). Waiting since: the time of the last message when the
    patient wrote it. Mine: the channel the console's acting individual subscribes to.
    """
    patient_sub = (
        select(MessagingSubscriber.channel_id)
        .join(Individual, Individual.id == MessagingSubscriber.individual_id)
        .where(
            in_organization(MessagingSubscriber, organization_id),
            in_organization(Individual, organization_id),
            Individual.account_type == PATIENT,
        )
    )
    channels = list(
        (
            await session.execute(
                scoped(select(MessagingChannel), MessagingChannel, organization_id)
                .where(MessagingChannel.archived.is_(False))
                .where(MessagingChannel.id.in_(patient_sub))
                .order_by(MessagingChannel.last_message_at.desc().nulls_last(), MessagingChannel.id)
                .limit(INBOX_LIMIT)
            )
        ).scalars()
    )
    if not channels:
        return []
    ids = [c.id for c in channels]
    members = (
        await session.execute(
            scoped(_pair(), MessagingSubscriber, organization_id)
            .join(Individual, Individual.id == MessagingSubscriber.individual_id)
            .where(in_organization(Individual, organization_id))
            .where(MessagingSubscriber.channel_id.in_(ids))
            .order_by(MessagingSubscriber.subscribed_at, Individual.id)
        )
    ).all()
    last = (
        await session.execute(
            scoped(_authors(), MessagingMessage, organization_id)
            .join(
                MessagingChannel,
                (MessagingChannel.id == MessagingMessage.channel_id)
                & (MessagingChannel.last_seq == MessagingMessage.seq),
            )
            .where(in_organization(MessagingChannel, organization_id))
            .where(MessagingMessage.channel_id.in_(ids))
        )
    ).all()
    last_authors: dict[uuid.UUID, uuid.UUID | None] = {row[0]: row[1] for row in last}
    patients: dict[uuid.UUID, Individual] = {}
    horizon: dict[uuid.UUID, int] = {}
    mine: set[uuid.UUID] = set()
    teams: dict[uuid.UUID, set[uuid.UUID]] = {}
    for subscriber, person in members:
        if person.account_type == PATIENT:
            patients.setdefault(subscriber.channel_id, person)
        else:
            teams.setdefault(subscriber.channel_id, set()).add(person.id)
            horizon[subscriber.channel_id] = max(
                horizon.get(subscriber.channel_id, 0), subscriber.ack_seq
            )
        if viewer is not None and subscriber.individual_id == viewer:
            mine.add(subscriber.channel_id)
    rows = []
    for channel in channels:
        patient = patients.get(channel.id)
        if patient is None:
            continue
        unread = max(0, channel.last_seq - horizon.get(channel.id, 0))
        patient_last = last_authors.get(channel.id) == patient.id
        rows.append(
            InboxRow(
                channel_id=channel.id,
                patient_name=display_name(patient),
                patient_id=patient.id,
                kind="SMS bridge" if channel.with_sms else "app",
                unread=unread,
                waiting_since=channel.last_message_at if patient_last else None,
                last_message_at=channel.last_message_at,
                mine=channel.id in mine,
                team=frozenset(teams.get(channel.id, ())),
            )
        )
    return rows


@dataclass
class Tiles:
    unread_channels: int
    visits_soon: int
    escalations: int
    failed_sends: int
    voice_lines: int
    callers_waiting: int
    longest_wait_since: datetime | None  # when the longest-waiting caller joined a queue


async def visits_soon(
    session: AsyncSession, organization_id: uuid.UUID, now: datetime
) -> list[Appointment]:
    stmt = (
        scoped(select(Appointment), Appointment, organization_id)
        .where(Appointment.start_time >= now, Appointment.start_time < now + VISIT_WINDOW)
        .where(Appointment.status != AppointmentStatus.CANCELLED.value)
        .order_by(Appointment.start_time, Appointment.id)
    )
    return list((await session.execute(stmt)).scalars())


async def open_escalations(
    session: AsyncSession, organization_id: uuid.UUID, limit: int = 500
) -> list[UserNotification]:
    stmt = (
        scoped(select(UserNotification), UserNotification, organization_id)
        .where(UserNotification.acknowledged.is_(False), UserNotification.active.is_(True))
        .where(UserNotification.escalation.is_not(None))
        .order_by(UserNotification.created_at.desc(), UserNotification.id)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).scalars()
    return [row for row in rows if row.escalation]  # a JSON null is no ladder


async def tiles(session: AsyncSession, organization_id: uuid.UUID) -> Tiles:
    from courier.console import operations_queries as ops  # it builds on this module

    now = utcnow()
    rows = await inbox_rows(session, organization_id, None)
    queue = await ops.queue_summary(session, organization_id)
    return Tiles(
        unread_channels=sum(1 for r in rows if r.unread > 0),
        visits_soon=len(await visits_soon(session, organization_id, now)),
        escalations=len(await open_escalations(session, organization_id)),
        failed_sends=await ops.failed_sends_count(session, organization_id, now),
        voice_lines=queue.lines,
        callers_waiting=queue.waiting,
        longest_wait_since=queue.longest_since,
    )


@dataclass
class ConversationMessage:
    id: uuid.UUID
    author: str
    from_patient: bool
    text: str
    posted_at: datetime
    state: str
    sms: str = ""  # in an SMS bridge channel: the text's delivery state (care-team messages)


@dataclass
class Conversation:
    channel: MessagingChannel
    patient: Individual | None
    team: list[Individual]  # provider subscribers: who may reply
    messages: list[ConversationMessage]


async def channel_of(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID
) -> MessagingChannel | None:
    found: MessagingChannel | None = (
        await session.execute(
            scoped(select(MessagingChannel), MessagingChannel, organization_id).where(
                MessagingChannel.id == channel_id
            )
        )
    ).scalar_one_or_none()
    return found


async def conversation(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID, limit: int = 100
) -> Conversation | None:
    channel = await channel_of(session, organization_id, channel_id)
    if channel is None:
        return None
    members = (
        await session.execute(
            scoped(_pair(), MessagingSubscriber, organization_id)
            .join(Individual, Individual.id == MessagingSubscriber.individual_id)
            .where(in_organization(Individual, organization_id))
            .where(MessagingSubscriber.channel_id == channel.id)
            .order_by(MessagingSubscriber.subscribed_at, Individual.id)
        )
    ).all()
    people: dict[uuid.UUID, Individual] = {p.id: p for _, p in members}
    patient_sub = next((s for s, p in members if p.account_type == PATIENT), None)
    patient = people.get(patient_sub.individual_id) if patient_sub else None
    team = [p for _, p in members if p.account_type != PATIENT]
    team_horizon = max((s.ack_seq for s, p in members if p.account_type != PATIENT), default=0)
    stmt: Any = (
        scoped(select(MessagingMessage), MessagingMessage, organization_id)
        .where(MessagingMessage.channel_id == channel.id)
        .where(MessagingMessage.draft.is_(False), MessagingMessage.seq.is_not(None))
        .order_by(MessagingMessage.seq.desc())
        .limit(limit)
    )
    found = list((await session.execute(stmt)).scalars())
    found.reverse()
    messages = []
    for m in found:
        author = people.get(m.individual_id) if m.individual_id else None
        from_patient = patient is not None and m.individual_id == patient.id
        seq = m.seq or 0
        if m.removed:
            state = "removed"
        elif from_patient:
            state = "read" if team_horizon >= seq else "unread"
        elif patient_sub is not None:
            state = "read" if patient_sub.ack_seq >= seq else "sent"
        else:
            state = "sent"
        messages.append(
            ConversationMessage(
                id=m.id,
                author=display_name(author) if author else "(someone no longer here)",
                from_patient=from_patient,
                text="" if m.removed else m.message,
                posted_at=m.created_at,
                state=state,
            )
        )
    return Conversation(channel, patient, team, messages)


async def provider_individuals(
    session: AsyncSession, organization_id: uuid.UUID, limit: int = 500
) -> list[Individual]:
    stmt = (
        scoped(select(Individual), Individual, organization_id)
        .where(Individual.account_type != PATIENT)
        .order_by(Individual.last_name, Individual.first_name, Individual.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def person_name(session: AsyncSession, principal: Any) -> str:
    """The display name of the person a personal login is (empty for an API key)."""
    if principal.individual_id is None or principal.organization_id is None:
        return ""
    stmt = scoped(select(Individual), Individual, principal.organization_id).where(
        Individual.id == principal.individual_id
    )
    person = (await session.execute(stmt)).scalar_one_or_none()
    return display_name(person) if person is not None else ""


async def names_of(
    session: AsyncSession, organization_id: uuid.UUID, ids: set[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    """Display names of the organization's individuals among ``ids``."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    stmt = scoped(select(Individual), Individual, organization_id).where(Individual.id.in_(wanted))
    return {p.id: display_name(p) for p in (await session.execute(stmt)).scalars()}


async def last_message_id(
    session: AsyncSession, organization_id: uuid.UUID, channel_id: uuid.UUID
) -> uuid.UUID | None:
    """The channel's last posted message (what "Mark read" acknowledges)."""
    stmt = (
        scoped(select(MessagingMessage.id), MessagingMessage, organization_id)
        .where(MessagingMessage.channel_id == channel_id)
        .where(MessagingMessage.draft.is_(False), MessagingMessage.seq.is_not(None))
        .order_by(MessagingMessage.seq.desc())
        .limit(1)
    )
    found: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return found
