"""What the operator screens read (docs/CONSOLE.md): call queues, today's visits, open
escalation ladders and the delivery log. Tenant-scoped reads of the organization's rows,
through :func:`courier.core.tenancy.scoped`; every change goes through the API's services
(:mod:`courier.console.actions`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.console.queries import PATIENT, display_name, open_escalations
from courier.core.tenancy import scoped
from courier.domains.video.service import join_window
from courier.domains.voice.repository import waiting_order
from courier.models.appointment import Appointment, AppointmentAttendee, AppointmentStatus
from courier.models.delivery import Delivery, DeliveryEvent
from courier.models.email import UserEmail
from courier.models.individual import Individual
from courier.models.job import Job, JobState
from courier.models.organization import Organization
from courier.models.user_notification import UserNotification
from courier.models.video import VideoChannel, VideoParticipant, VisitState
from courier.models.voice import VoiceQueueAgent, VoiceQueueEntry, VoiceSetting
from courier.providers.delivery import SEND_JOB

LINES_LIMIT = 50
ENTRIES_LIMIT = 200


def _columns(*columns: Any) -> Select[Any]:
    """``SELECT columns`` typed as the tenancy helpers take it."""
    stmt: Select[Any] = select(*columns)
    return stmt


async def _people_of(
    session: AsyncSession,
    org: uuid.UUID,
    model: Any,
    owner: Any,
    owners: list[uuid.UUID],
    *conditions: Any,
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The individuals of each of ``owners`` (an attendee or participant table: ``owner`` its
    column naming the appointment or visit), in their order."""
    grouped: dict[uuid.UUID, list[uuid.UUID]] = {}
    if not owners:
        return grouped
    rows = await session.execute(
        scoped(_columns(owner, model.individual_id), model, org)
        .where(owner.in_(owners), *conditions)
        .order_by(model.position, model.id)
    )
    for owned_by, individual_id in rows.all():
        grouped.setdefault(owned_by, []).append(individual_id)
    return grouped


async def people(
    session: AsyncSession, org: uuid.UUID, ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, Individual]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    stmt = scoped(select(Individual), Individual, org).where(Individual.id.in_(wanted))
    return {p.id: p for p in (await session.execute(stmt)).scalars()}


def name_of(found: dict[uuid.UUID, Individual], ident: uuid.UUID | None) -> str | None:
    person = found.get(ident) if ident is not None else None
    return display_name(person) if person is not None else None


# --- call queues -------------------------------------------------------------------------------


@dataclass
class Caller:
    id: uuid.UUID
    position: int | None
    caller: str  # the patient's display name, or the phone number
    state: str
    enqueued_at: datetime
    connected_at: datetime | None


@dataclass
class Agent:
    id: uuid.UUID
    name: str
    state: str
    by: str  # "browser" or "phone"
    identity: str


@dataclass
class Line:
    setting: VoiceSetting
    waiting: list[Caller] = field(default_factory=list)
    connected: list[Caller] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)


async def call_queues(session: AsyncSession, org: uuid.UUID) -> list[Line]:
    """Each voice line with its waiting callers (position 1 first), the callers connected to
    an agent, and the agents who have not left."""
    settings = list(
        (
            await session.execute(
                scoped(select(VoiceSetting), VoiceSetting, org)
                .order_by(VoiceSetting.created_at, VoiceSetting.id)
                .limit(LINES_LIMIT)
            )
        ).scalars()
    )
    if not settings:
        return []
    ids = [s.id for s in settings]
    entries = list(
        (
            await session.execute(
                scoped(select(VoiceQueueEntry), VoiceQueueEntry, org)
                .where(VoiceQueueEntry.setting_id.in_(ids))
                .where(VoiceQueueEntry.state.in_(["waiting", "connected"]))
                .where(VoiceQueueEntry.ended_at.is_(None))
                .order_by(VoiceQueueEntry.enqueued_at, VoiceQueueEntry.id)
                .limit(ENTRIES_LIMIT)
            )
        ).scalars()
    )
    agents = list(
        (
            await session.execute(
                scoped(select(VoiceQueueAgent), VoiceQueueAgent, org)
                .where(VoiceQueueAgent.setting_id.in_(ids))
                .where(VoiceQueueAgent.state != "left")
                .order_by(VoiceQueueAgent.created_at, VoiceQueueAgent.id)
            )
        ).scalars()
    )
    positions = await waiting_order(session, org, ids)
    found = await people(
        session, org, [e.individual_id for e in entries] + [a.individual_id for a in agents]
    )
    lines = {s.id: Line(s) for s in settings}
    for entry in entries:
        caller = Caller(
            id=entry.id,
            position=positions.get(entry.id),
            caller=name_of(found, entry.individual_id) or entry.phone_number,
            state=entry.state,
            enqueued_at=entry.enqueued_at,
            connected_at=entry.connected_at,
        )
        line = lines[entry.setting_id]
        (line.waiting if entry.state == "waiting" else line.connected).append(caller)
    for line in lines.values():
        line.waiting.sort(key=lambda c: c.position or 0)
    for agent in agents:
        lines[agent.setting_id].agents.append(
            Agent(
                id=agent.id,
                name=name_of(found, agent.individual_id) or "(no one named)",
                state=agent.state,
                by="phone" if agent.use_pstn else "browser",
                identity=agent.identity,
            )
        )
    return list(lines.values())


@dataclass
class QueueSummary:
    lines: int
    waiting: int
    longest_since: datetime | None  # when the longest-waiting caller joined


async def queue_summary(session: AsyncSession, org: uuid.UUID) -> QueueSummary:
    lines = (
        await session.execute(
            scoped(select(func.count()).select_from(VoiceSetting), VoiceSetting, org)
        )
    ).scalar_one()
    waiting, oldest = (
        await session.execute(
            scoped(
                _columns(func.count(), func.min(VoiceQueueEntry.enqueued_at)).select_from(
                    VoiceQueueEntry
                ),
                VoiceQueueEntry,
                org,
            ).where(VoiceQueueEntry.state == "waiting")
        )
    ).one()
    return QueueSummary(int(lines), int(waiting), oldest)


# --- today's visits ----------------------------------------------------------------------------


@dataclass
class Visit:
    starts: datetime
    name: str
    patient: str
    state: str
    kind: str
    video_id: uuid.UUID | None = None
    opens: datetime | None = None
    closes: datetime | None = None
    join_block: str | None = None  # why Join is disabled; None: it is enabled

    @property
    def joinable(self) -> bool:
        return self.video_id is not None and self.join_block is None


async def organization_zone(session: AsyncSession, org: uuid.UUID) -> ZoneInfo:
    row = await session.get(Organization, org)
    try:
        return ZoneInfo((row.timezone if row else None) or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def day_bounds(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    local = now.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def join_block(visit: VideoChannel, now: datetime, zone: ZoneInfo) -> str | None:
    """Why Join is not offered yet (or any more); None inside the join window (the API's
    rule, :func:`courier.domains.video.service.join_window`)."""
    opens, closes = join_window(visit)
    if visit.state == VisitState.TERMINATED.value:
        return "The visit has ended."
    if now < opens:
        return f"Join opens at {opens.astimezone(zone):%H:%M} ({zone.key})."
    if closes is not None and now > closes:
        return f"Joining closed at {closes.astimezone(zone):%H:%M} ({zone.key})."
    if visit.room_sid is None:
        return "The visit's room is being prepared."
    return None


async def todays_visits(
    session: AsyncSession, org: uuid.UUID, now: datetime
) -> tuple[list[Visit], ZoneInfo]:
    """Today's appointments (in the organization's time zone) and video visits planned today
    without an appointment, by start time."""
    zone = await organization_zone(session, org)
    start, end = day_bounds(now, zone)
    appointments = list(
        (
            await session.execute(
                scoped(select(Appointment), Appointment, org)
                .where(Appointment.start_time >= start, Appointment.start_time < end)
                .order_by(Appointment.start_time, Appointment.id)
                .limit(500)
            )
        ).scalars()
    )
    standalone = list(
        (
            await session.execute(
                scoped(select(VideoChannel), VideoChannel, org)
                .where(VideoChannel.appointment_start >= start)
                .where(VideoChannel.appointment_start < end)
                .where(VideoChannel.appointment_id.is_(None))
                .order_by(VideoChannel.appointment_start, VideoChannel.id)
                .limit(500)
            )
        ).scalars()
    )
    video_ids = [a.video_visit_id for a in appointments if a.video_visit_id is not None]
    linked: dict[uuid.UUID, VideoChannel] = {}
    if video_ids:
        linked = {
            v.id: v
            for v in (
                await session.execute(
                    scoped(select(VideoChannel), VideoChannel, org).where(
                        VideoChannel.id.in_(video_ids)
                    )
                )
            ).scalars()
        }
    attendees = await _people_of(
        session,
        org,
        AppointmentAttendee,
        AppointmentAttendee.appointment_id,
        [a.id for a in appointments],
    )
    participants = await _people_of(
        session,
        org,
        VideoParticipant,
        VideoParticipant.video_channel_id,
        [v.id for v in standalone],
        VideoParticipant.account_type == PATIENT,
    )
    everyone = [i for ids in (*attendees.values(), *participants.values()) for i in ids]
    found = await people(session, org, everyone)

    def patient_of(ids: list[uuid.UUID]) -> str:
        names = [
            display_name(found[i]) for i in ids if i in found and found[i].account_type == PATIENT
        ]
        return ", ".join(names) or "—"

    visits: list[Visit] = []
    for appointment in appointments:
        video = linked.get(appointment.video_visit_id) if appointment.video_visit_id else None
        visit = Visit(
            starts=appointment.start_time,
            name=appointment.name,
            patient=patient_of(attendees.get(appointment.id, [])),
            state=appointment.status,
            kind=appointment.interaction_type.replace("_", " "),
        )
        if video is not None and appointment.status != AppointmentStatus.CANCELLED.value:
            _with_video(visit, video, now, zone)
        visits.append(visit)
    for video in standalone:
        assert video.appointment_start is not None
        visit = Visit(
            starts=video.appointment_start,
            name="Video visit",
            patient=patient_of(participants.get(video.id, [])),
            state=video.state,
            kind="video call",
        )
        _with_video(visit, video, now, zone)
        visits.append(visit)
    visits.sort(key=lambda v: v.starts)
    return visits, zone


def _with_video(visit: Visit, video: VideoChannel, now: datetime, zone: ZoneInfo) -> None:
    visit.video_id = video.id
    visit.opens, visit.closes = join_window(video)
    visit.join_block = join_block(video, now, zone)
    if video.state != VisitState.SCHEDULED.value:
        visit.state = f"{visit.state}, video {video.state}"


async def visit_participant(
    session: AsyncSession, org: uuid.UUID, visit_id: uuid.UUID, preferred: uuid.UUID | None
) -> uuid.UUID | None:
    """Who joins from the console: the acting care-team member when they take part in the
    visit, else its first care-team participant."""
    rows = (
        await session.execute(
            scoped(
                _columns(VideoParticipant.individual_id, VideoParticipant.account_type),
                VideoParticipant,
                org,
            )
            .where(VideoParticipant.video_channel_id == visit_id)
            .order_by(VideoParticipant.position, VideoParticipant.id)
        )
    ).all()
    team = [ident for ident, kind in rows if kind != PATIENT]
    if preferred is not None and preferred in team:
        return preferred
    return team[0] if team else None


# --- escalations -------------------------------------------------------------------------------


@dataclass
class Escalation:
    id: uuid.UUID
    raised: datetime
    person: str
    category: str
    state: str
    reached: int  # steps that ran
    steps: int
    reached_step: str | None  # the last step that ran ("sms", "care-team" ...)
    next_step: str | None
    next_due: datetime | None


def _due(step: dict[str, Any]) -> datetime | None:
    raw = step.get("due-at")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


async def escalations(session: AsyncSession, org: uuid.UUID, limit: int = 500) -> list[Escalation]:
    """Unacknowledged, active notifications with an escalation ladder, newest first: the
    step reached and the next one due."""
    rows = await open_escalations(session, org, limit)
    found = await people(session, org, [r.individual_id for r in rows])
    out = []
    for row in rows:
        ladder = row.escalation or {}
        steps = [s for s in ladder.get("steps", []) if isinstance(s, dict)]
        ran = [s for s in steps if s.get("state") in ("done", "skipped")]
        pending = [s for s in steps if s.get("state", "scheduled") == "scheduled"]
        reached = ladder.get("level")
        out.append(
            Escalation(
                id=row.id,
                raised=row.created_at,
                person=name_of(found, row.individual_id) or "(someone no longer here)",
                category=row.category or "",
                state=str(ladder.get("state", "waiting")),
                reached=int(reached) if isinstance(reached, int) else len(ran),
                steps=len(steps),
                reached_step=str(ran[-1].get("channel")) if ran else None,
                next_step=str(pending[0].get("channel")) if pending else None,
                next_due=_due(pending[0]) if pending else None,
            )
        )
    return out


# --- the delivery log --------------------------------------------------------------------------

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
STATUSES = ("accepted", "queued", "sending", "sent", "delivered", "undelivered", "failed")
FAILED = ("failed", "undelivered")
CHANNELS = ("sms", "email", "push", "voice", "alexa")
LOG_LIMIT = 200
NOTIFICATIONS = "user-notifications"
EMAILS = "user-emails"


@dataclass
class LogFilter:
    channel: str | None = None
    status: str | None = None  # a state, or "failures" (failed or undelivered)
    period: str = "7d"  # a key of PERIODS, or "all"
    template: uuid.UUID | None = None
    patient: uuid.UUID | None = None

    def query(self) -> dict[str, str]:
        values = {
            "channel": self.channel,
            "status": self.status,
            "period": self.period,
            "template": str(self.template) if self.template else None,
            "patient": str(self.patient) if self.patient else None,
        }
        return {k: v for k, v in values.items() if v}


async def _patient_clause(
    session: AsyncSession, org: uuid.UUID, patient: uuid.UUID
) -> ColumnElement[bool]:
    """Sends to a patient: their notifications (pushes, calls), their emails, and texts and
    calls to their phone number."""
    person = (
        await session.execute(
            scoped(select(Individual), Individual, org).where(Individual.id == patient)
        )
    ).scalar_one_or_none()
    if person is None:
        return false()
    notes = scoped(select(UserNotification.id), UserNotification, org).where(
        UserNotification.individual_id == patient
    )
    mails = scoped(select(UserEmail.id), UserEmail, org).where(UserEmail.individual_id == patient)
    clauses: list[ColumnElement[bool]] = [
        Delivery.resource_id.in_(notes),
        Delivery.resource_id.in_(mails),
    ]
    if person.phone:
        clauses.append(
            Delivery.channel.in_(["sms", "voice"]) & (Delivery.recipient == person.phone)
        )
    return or_(*clauses)


async def delivery_log(
    session: AsyncSession, org: uuid.UUID, now: datetime, chosen: LogFilter
) -> tuple[int, list[Delivery]]:
    """The organization's sends (texts, emails, pushes, calls), newest first, filtered."""
    conditions: list[ColumnElement[bool]] = []
    if chosen.channel:
        conditions.append(Delivery.channel == chosen.channel)
    if chosen.status == "failures":
        conditions.append(Delivery.state.in_(FAILED))
    elif chosen.status:
        conditions.append(Delivery.state == chosen.status)
    if chosen.period in PERIODS:
        conditions.append(Delivery.updated_at >= now - PERIODS[chosen.period])
    if chosen.template is not None:
        notes = scoped(select(UserNotification.id), UserNotification, org).where(
            UserNotification.template_id == chosen.template
        )
        conditions.append(Delivery.resource_id.in_(notes))
    if chosen.patient is not None:
        conditions.append(await _patient_clause(session, org, chosen.patient))
    total = (
        await session.execute(
            scoped(select(func.count()).select_from(Delivery), Delivery, org).where(*conditions)
        )
    ).scalar_one()
    rows = list(
        (
            await session.execute(
                scoped(select(Delivery), Delivery, org)
                .where(*conditions)
                .order_by(Delivery.updated_at.desc(), Delivery.id)
                .limit(LOG_LIMIT)
            )
        ).scalars()
    )
    return int(total), rows


async def failed_sends_count(session: AsyncSession, org: uuid.UUID, now: datetime) -> int:
    total, _rows = await delivery_log(session, org, now, LogFilter(status="failures", period="24h"))
    return total


@dataclass
class DeliveryDetail:
    delivery: Delivery
    history: list[DeliveryEvent]
    failed_job: Job | None  # a send job that failed: the API's job retry applies


async def delivery_detail(
    session: AsyncSession, org: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryDetail | None:
    delivery = (
        await session.execute(
            scoped(select(Delivery), Delivery, org).where(Delivery.id == delivery_id)
        )
    ).scalar_one_or_none()
    if delivery is None:
        return None
    history = list(
        (
            await session.execute(
                scoped(select(DeliveryEvent), DeliveryEvent, org)
                .where(DeliveryEvent.delivery_id == delivery.id)
                .order_by(DeliveryEvent.recorded_at, DeliveryEvent.id)
            )
        ).scalars()
    )
    failed_job = (
        (
            await session.execute(
                scoped(select(Job), Job, org)
                .where(Job.kind == SEND_JOB)
                .where(Job.dedupe_key.like(f"{SEND_JOB}:{delivery.id}:%"))
                .where(Job.state == JobState.FAILED.value)
                .order_by(Job.created_at.desc(), Job.id)
                .limit(1)
            )
        )
        .scalars()
        .first()
    )
    return DeliveryDetail(delivery, history, failed_job)
