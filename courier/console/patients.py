"""What the console shows of one patient: the side panel of a conversation (consents, next
appointment, other channels) and the patient timeline (screen 4): messages, texts, emails,
notifications (push and their other channels), calls, visits and consent changes in one list,
newest first, each with its status.

Tenant-scoped reads only, like :mod:`courier.console.queries`; every list is bounded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import in_organization, scoped
from courier.core.time import utcnow
from courier.domains.messaging.sms import POST_JOB, channel_state
from courier.models.appointment import Appointment, AppointmentAttendee, AppointmentStatus
from courier.models.delivery import Delivery
from courier.models.email import UserEmail
from courier.models.individual import Individual
from courier.models.job import Job
from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber
from courier.models.text import OutboundText
from courier.models.user import User
from courier.models.user_consent import UserConsent, UserConsentEvent
from courier.models.user_notification import UserNotification
from courier.models.voice_call import VoiceDialLog

PER_KIND = 100  # rows of each kind the timeline reads at most (the newest)
SUMMARY = 140  # characters of a message shown in the timeline
NOTIFICATIONS = "user-notifications"


@dataclass
class Entry:
    at: datetime
    kind: str  # message, text, email, notification, call, visit, consent
    summary: str
    status: str
    detail: str = ""  # an error code, a direction, a reason


@dataclass
class Panel:
    consents: list[UserConsent]
    next_visit: Appointment | None
    channels: list[MessagingChannel]  # the patient's other conversations
    phone: str | None
    email: str | None


def _short(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= SUMMARY else text[: SUMMARY - 1] + "…"


async def patient(
    session: AsyncSession, org: uuid.UUID, individual_id: uuid.UUID
) -> Individual | None:
    stmt = scoped(select(Individual), Individual, org).where(Individual.id == individual_id)
    found: Individual | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def _users(session: AsyncSession, org: uuid.UUID, person: Individual) -> list[User]:
    stmt = scoped(select(User), User, org).where(User.primary_individual_id == person.id)
    return list((await session.execute(stmt)).scalars())


def _phones(person: Individual, users: list[User]) -> set[str]:
    return {p for p in [person.phone, *(u.phone for u in users)] if p}


async def _consents(
    session: AsyncSession, org: uuid.UUID, users: list[User], phones: set[str]
) -> list[UserConsent]:
    conditions = []
    if users:
        conditions.append(UserConsent.user_id.in_([u.id for u in users]))
    if phones:
        conditions.append(UserConsent.target_id.in_(sorted(phones)))
    if not conditions:
        return []
    stmt = (
        scoped(select(UserConsent), UserConsent, org)
        .where(or_(*conditions))
        .order_by(UserConsent.created_at.desc(), UserConsent.id)
        .limit(PER_KIND)
    )
    return list((await session.execute(stmt)).scalars())


async def _channels(
    session: AsyncSession, org: uuid.UUID, person: Individual
) -> list[MessagingChannel]:
    mine = scoped(select(MessagingSubscriber.channel_id), MessagingSubscriber, org).where(
        MessagingSubscriber.individual_id == person.id
    )
    stmt = (
        scoped(select(MessagingChannel), MessagingChannel, org)
        .where(MessagingChannel.id.in_(mine))
        .order_by(MessagingChannel.last_message_at.desc().nulls_last(), MessagingChannel.id)
        .limit(PER_KIND)
    )
    return list((await session.execute(stmt)).scalars())


async def panel(
    session: AsyncSession, org: uuid.UUID, person: Individual, channel_id: uuid.UUID | None
) -> Panel:
    users = await _users(session, org, person)
    phones = _phones(person, users)
    visit = (
        await session.execute(
            scoped(select(Appointment), Appointment, org)
            .join(AppointmentAttendee, AppointmentAttendee.appointment_id == Appointment.id)
            .where(in_organization(AppointmentAttendee, org))
            .where(AppointmentAttendee.individual_id == person.id)
            .where(Appointment.start_time >= utcnow())
            .where(Appointment.status != AppointmentStatus.CANCELLED.value)
            .order_by(Appointment.start_time, Appointment.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    channels = [c for c in await _channels(session, org, person) if c.id != channel_id]
    return Panel(
        consents=await _consents(session, org, users, phones),
        next_visit=visit,
        channels=channels,
        phone=sorted(phones)[0] if phones else None,
        email=person.email or next((u.email for u in users if u.email), None),
    )


async def sms_block(session: AsyncSession, org: uuid.UUID, channel: MessagingChannel) -> str | None:
    """Why a reply in this SMS bridge channel may not be sent (the texts domain's rule: an
    accepted SMS consent of the patient's phone), else None."""
    if not channel.with_sms:
        return None
    refusal = (await channel_state(session, org, channel)).refusal
    if refusal is not None and refusal[0] == "no-consent":
        return f"This conversation is texted to the patient, and {refusal[1]}."
    return None


async def sms_states(
    session: AsyncSession, org: uuid.UUID, message_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The SMS delivery state of the care team's messages of an SMS bridge channel: the text
    the bridge's job queued for each (sent, delivered, failed with its code ...), or why none
    was sent."""
    if not message_ids:
        return {}
    keys = {f"{POST_JOB}:{m}": m for m in message_ids}
    jobs = (
        await session.execute(
            scoped(select(Job), Job, org)
            .where(Job.kind == POST_JOB)
            .where(Job.dedupe_key.in_(list(keys)))
        )
    ).scalars()
    texts: dict[uuid.UUID, uuid.UUID] = {}
    states: dict[uuid.UUID, str] = {}
    for job in jobs:
        message_id = keys.get(job.dedupe_key or "")
        if message_id is None:
            continue
        result = job.result or {}
        if "text-id" in result:
            texts[uuid.UUID(str(result["text-id"]))] = message_id
        elif "skipped" in result:
            states[message_id] = f"not texted ({result['skipped']})"
        else:
            states[message_id] = f"SMS {job.state}"
    if texts:
        found = (
            await session.execute(
                scoped(select(OutboundText), OutboundText, org).where(
                    OutboundText.id.in_(list(texts))
                )
            )
        ).scalars()
        codes = await _codes(session, org, "texts", list(texts))
        for text in found:
            state = f"SMS {text.status}"
            code = codes.get(text.id)
            states[texts[text.id]] = f"{state} ({code})" if code else state
    return states


async def _codes(
    session: AsyncSession, org: uuid.UUID, resource_type: str, ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The provider error code of each failed delivery of these resources."""
    rows = (
        await session.execute(
            scoped(
                cast("Select[Any]", select(Delivery.resource_id, Delivery.error_code)),
                Delivery,
                org,
            )
            .where(Delivery.resource_type == resource_type, Delivery.resource_id.in_(ids))
            .where(Delivery.error_code.is_not(None))
        )
    ).all()
    return {row[0]: str(row[1]) for row in rows}


async def _newest(session: AsyncSession, org: uuid.UUID, model: Any, *conditions: Any) -> list[Any]:
    """The organization's newest rows of one kind for the timeline (at most ``PER_KIND``)."""
    statement = scoped(select(model), model, org).where(*conditions)
    statement = statement.order_by(model.created_at.desc(), model.id).limit(PER_KIND)
    return list((await session.execute(statement)).scalars())


async def timeline(session: AsyncSession, org: uuid.UUID, person: Individual) -> list[Entry]:
    users = await _users(session, org, person)
    phones = _phones(person, users)
    entries: list[Entry] = []
    channels = await _channels(session, org, person)
    if channels:
        authors = {
            p.id: p
            for p in (
                await session.execute(
                    scoped(select(Individual), Individual, org).where(
                        Individual.id.in_(
                            scoped(
                                select(MessagingSubscriber.individual_id), MessagingSubscriber, org
                            ).where(MessagingSubscriber.channel_id.in_([c.id for c in channels]))
                        )
                    )
                )
            ).scalars()
        }
        messages = await _newest(
            session,
            org,
            MessagingMessage,
            MessagingMessage.channel_id.in_([c.id for c in channels]),
            MessagingMessage.draft.is_(False),
            MessagingMessage.seq.is_not(None),
        )
        for m in messages:
            author = authors.get(m.individual_id) if m.individual_id else None
            who = "patient" if m.individual_id == person.id else "care team"
            name = f"{author.first_name} {author.last_name}".strip() if author else "someone"
            entries.append(
                Entry(
                    m.created_at,
                    "message",
                    "(removed)" if m.removed else _short(m.message),
                    "removed" if m.removed else f"from {who}",
                    f"{name}, by {m.source}" if m.source else name,
                )
            )
    if phones:
        texts = await _newest(session, org, OutboundText, OutboundText.target.in_(sorted(phones)))
        codes = await _codes(session, org, "texts", [t.id for t in texts])
        for t in texts:
            entries.append(
                Entry(t.created_at, "text", _short(t.message), t.status, codes.get(t.id, ""))
            )
    emails = await _newest(session, org, UserEmail, UserEmail.individual_id == person.id)
    email_codes = await _codes(session, org, "user-emails", [e.id for e in emails])
    for e in emails:
        entries.append(
            Entry(e.created_at, "email", _short(e.subject), e.status, email_codes.get(e.id, ""))
        )
    notes = await _newest(
        session, org, UserNotification, UserNotification.individual_id == person.id
    )
    sends = await _sends(session, org, [n.id for n in notes])
    for n in notes:
        what = n.category or n.source
        status = ", ".join(sends.get(n.id, [])) or ("acknowledged" if n.acknowledged else "made")
        entries.append(Entry(n.created_at, "notification", what, status, ", ".join(n.channels)))
    calls = await _newest(session, org, VoiceDialLog, VoiceDialLog.individual_id == person.id)
    for c in calls:
        detail = c.direction + (f", error {c.error_code}" if c.error_code else "")
        entries.append(Entry(c.created_at, "call", f"call to {c.to_number}", c.status, detail))
    visits = (
        await session.execute(
            scoped(select(Appointment), Appointment, org)
            .join(AppointmentAttendee, AppointmentAttendee.appointment_id == Appointment.id)
            .where(in_organization(AppointmentAttendee, org))
            .where(AppointmentAttendee.individual_id == person.id)
            .order_by(Appointment.start_time.desc(), Appointment.id)
            .limit(PER_KIND)
        )
    ).scalars()
    for v in visits:
        entries.append(Entry(v.start_time, "visit", _short(v.name), v.status, v.interaction_type))
    consents = await _consents(session, org, users, phones)
    if consents:
        changes = (
            await session.execute(
                scoped(select(UserConsentEvent), UserConsentEvent, org)
                .where(UserConsentEvent.consent_id.in_([c.id for c in consents]))
                .order_by(UserConsentEvent.created_at.desc(), UserConsentEvent.id)
                .limit(PER_KIND)
            )
        ).scalars()
        for change in changes:
            entries.append(
                Entry(change.created_at, "consent", "SMS consent", change.state, change.reason)
            )
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries


async def _sends(
    session: AsyncSession, org: uuid.UUID, ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Each notification's deliveries: ``push delivered``, ``sms failed (30003)`` ..."""
    if not ids:
        return {}
    rows = (
        await session.execute(
            scoped(select(Delivery), Delivery, org)
            .where(Delivery.resource_type == NOTIFICATIONS, Delivery.resource_id.in_(ids))
            .order_by(Delivery.created_at, Delivery.id)
        )
    ).scalars()
    out: dict[uuid.UUID, list[str]] = {}
    for d in rows:
        code = f" ({d.error_code})" if d.error_code else ""
        out.setdefault(d.resource_id, []).append(f"{d.channel} {d.state}{code}")
    return out
