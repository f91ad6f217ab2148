"""The call legs of conferences and surveys: each a voice delivery (placed by the delivery
state machine's send job, never while a request waits), whose provider reports update its
dial log, which in turn moves its conference or survey.

- ``place_leg`` (in the creating request's transaction): a dial log and its delivery.
- ``send_leg`` (the send job): the caller id from the organization's text account
  (``choose_number``), the TwiML URL of the leg, the status callback of the delivery.
- ``on_report`` (each provider report applied): status, duration, cost, call id.
- ``on_change`` (the delivery failed without a report, e.g. no number to call from).
- ``settle``: a conference is running once a leg answered, completed once every leg ended
  after one answered, failed when none answered; a survey is running once answered and
  failed when its leg ends before the last question (its result keeps what was answered).

Every state change of a leg, conference or survey is published (``write_changes``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.errors import ApiError
from courier.core.time import utcnow
from courier.domains.text_accounts import repository as accounts
from courier.domains.texts.service import choose_number
from courier.domains.voice_calls.repository import legs_of, load_leg, locked
from courier.domains.voice_calls.schemas import CONFERENCE_TYPE, DIAL_LOG_TYPE, SURVEY_TYPE
from courier.jobs.context import JobContext
from courier.jsonapi.changes import SYSTEM, Change, change, write_changes
from courier.models.delivery import Delivery, ProviderInbound
from courier.models.voice_call import VoiceConference, VoiceDialLog, VoiceSurvey
from courier.providers import delivery as deliveries
from courier.providers.common import (
    CALLBACK_PREFIX,
    DeliveryStatus,
    Permanent,
    SendResult,
    callback_url,
    public_base,
)
from courier.providers.voice import VOICE
from courier.providers.voice.base import FINAL_CALL_STATUSES, OutboundCall, VoiceProvider

CALL_PATH = CALLBACK_PREFIX + "/voice/calls/{leg_id}"
RING_SECONDS = 30
STATUS_RANK = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    **dict.fromkeys(FINAL_CALL_STATUSES, 4),
}


def call_url(settings: Settings, leg_id: uuid.UUID) -> str:
    """Where the voice service fetches a leg's TwiML once it is answered."""
    return public_base(settings) + CALL_PATH.format(leg_id=leg_id)


async def place_leg(
    session: AsyncSession,
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    phone: str,
    role: str,
    extended: dict[str, Any],
    conference_id: uuid.UUID | None = None,
    survey_id: uuid.UUID | None = None,
) -> VoiceDialLog:
    """A dial log and the voice delivery that places its call (sent by a job)."""
    now = utcnow()
    leg = VoiceDialLog(
        id=uuid.uuid4(),
        organization_id=organization_id,
        conference_id=conference_id,
        survey_id=survey_id,
        individual_id=individual_id,
        role=role,
        direction="outbound-api",
        to_number=phone,
        status="queued",
        extended=dict(extended),
        created_at=now,
        last_modified_at=now,
    )
    session.add(leg)
    await session.flush()
    delivery = await deliveries.create_delivery(
        session,
        settings,
        organization_id=organization_id,
        kind=VOICE,
        resource_type=DIAL_LOG_TYPE,
        resource_id=leg.id,
        recipient=phone,
    )
    leg.delivery_id = delivery.id
    return leg


@deliveries.delivery_sender(DIAL_LOG_TYPE)
async def send_leg(job: JobContext, delivery: Delivery, adapter: VoiceProvider) -> SendResult:
    session, org = job.session, job.organization_id
    leg = await load_leg(session, org, delivery.resource_id)
    if leg is None:
        raise Permanent("deleted", "the call leg was deleted before the call")
    account = await accounts.account_of(session, org)
    if account is None:
        raise Permanent("no-caller-id", "the organization has no number to call from")
    try:
        num = await choose_number(session, org, account, None, None)
    except ApiError as exc:
        raise Permanent("no-caller-id", "the organization has no active number") from exc
    leg.from_number = num.phone_number
    call = OutboundCall(
        to=delivery.recipient,
        from_=num.phone_number or "",
        url=call_url(job.settings, leg.id),
        status_callback_url=callback_url(job.settings, "voice", "status", delivery_id=delivery.id),
        timeout_seconds=RING_SECONDS,
    )
    await job.checkpoint()
    return await adapter.place_call(call, delivery_id=delivery.id)


# --- what the provider reports --------------------------------------------------------------


def _cost(raw: dict[str, Any]) -> tuple[str | None, str | None]:
    price = raw.get("Price")
    if not price:
        return None, None
    try:
        amount = abs(Decimal(str(price)))
    except InvalidOperation:
        return None, None
    unit = str(raw.get("PriceUnit") or "") or None
    return str(amount), unit[:8] if unit else None


async def on_status(
    session: AsyncSession,
    leg: VoiceDialLog,
    status: str | None,
    *,
    call_sid: str | None = None,
    raw: dict[str, Any] | None = None,
    code: str | None = None,
) -> None:
    """Apply one report to a leg (forward only; duration and cost whenever given), then
    settle its conference or survey. Publishes the leg's change when its status moved."""
    raw = raw or {}
    now = utcnow()
    moved = False
    if call_sid and not leg.call_sid:
        leg.call_sid = call_sid[:64]
    if status in STATUS_RANK and STATUS_RANK[status] > STATUS_RANK.get(leg.status, 0):
        leg.status = status
        moved = True
        if status == "in-progress" and leg.answered_at is None:
            leg.answered_at = now
        if status in FINAL_CALL_STATUSES:
            leg.ended_at = now
            if status == "completed" and leg.answered_at is None:
                leg.answered_at = now  # answered and ended between two reports
            if code and status != "completed":
                leg.error_code = code[:64]
    duration = raw.get("CallDuration")
    if duration is not None and str(duration).isdigit():
        leg.call_duration = int(str(duration))
    cost, unit = _cost(raw)
    if cost is not None:
        leg.cost, leg.cost_unit = cost, unit
    leg.last_modified_at = now
    changes: list[Change] = []
    if moved:
        changes.append(
            change(
                DIAL_LOG_TYPE,
                leg.id,
                leg.status,
                fields=["status"],
                audience=(leg.individual_id,),
                organization_id=leg.organization_id,
                data={
                    "status": leg.status,
                    "conference-id": str(leg.conference_id) if leg.conference_id else None,
                    "survey-id": str(leg.survey_id) if leg.survey_id else None,
                },
            )
        )
        changes.extend(await settle(session, leg))
    if changes:
        write_changes(session, changes, actor=SYSTEM, request_id=None)


@deliveries.on_delivery_report(DIAL_LOG_TYPE)
async def on_report(session: AsyncSession, delivery: Delivery, inbound: ProviderInbound) -> None:
    if inbound.event_type != "status":
        return
    leg = await load_leg(session, delivery.organization_id, delivery.resource_id, for_update=True)
    if leg is None:
        return
    raw = dict(inbound.raw or {})
    await on_status(
        session,
        leg,
        inbound.vendor_status,
        call_sid=raw.get("CallSid"),
        raw=raw,
        code=inbound.vendor_code,
    )


@deliveries.on_delivery_change(DIAL_LOG_TYPE)
async def on_change(session: AsyncSession, changed: deliveries.DeliveryChange) -> None:
    """A call that could not be placed (or whose outcome stayed unknown) fails its leg; the
    provider's own reports are applied by ``on_report``."""
    if changed.state is not DeliveryStatus.FAILED:
        return
    leg = await load_leg(session, changed.organization_id, changed.resource_id, for_update=True)
    if leg is not None and leg.status not in FINAL_CALL_STATUSES:
        await on_status(session, leg, "failed", code=changed.code or "failed")


# --- conferences and surveys follow their legs ----------------------------------------------


def conference_change(conference: VoiceConference, verb: str) -> Change:
    return change(
        CONFERENCE_TYPE,
        conference.id,
        verb,
        fields=["state"],
        audience=tuple(i for i in (conference.individual_id, conference.provider_id) if i),
        organization_id=conference.organization_id,
        data={"state": conference.state},
    )


def survey_change(survey: VoiceSurvey, verb: str, fields: Sequence[str] = ("state",)) -> Change:
    return change(
        SURVEY_TYPE,
        survey.id,
        verb,
        fields=fields,
        audience=(survey.individual_id,),
        organization_id=survey.organization_id,
        data={"state": survey.state, "answered": len(survey.result or [])},
    )


async def settle(session: AsyncSession, leg: VoiceDialLog) -> list[Change]:
    """Move the leg's conference or survey after the leg's status moved."""
    if leg.conference_id is not None:
        conference = await locked(session, VoiceConference, leg.organization_id, leg.conference_id)
        if conference is None:
            return []
        legs = await legs_of(session, leg.organization_id, conference.id)
        return settle_conference(conference, legs)
    if leg.survey_id is not None:
        survey = await locked(session, VoiceSurvey, leg.organization_id, leg.survey_id)
        if survey is None:
            return []
        return settle_survey(survey, leg)
    return []


def settle_conference(conference: VoiceConference, legs: Sequence[VoiceDialLog]) -> list[Change]:
    if conference.state in ("completed", "failed") or not legs:
        return []
    answered = [leg for leg in legs if leg.answered_at is not None]
    ended = all(leg.status in FINAL_CALL_STATUSES for leg in legs)
    now = utcnow()
    changes: list[Change] = []
    if answered and conference.state == "created":
        conference.state = "running"
        conference.started_at = min(leg.answered_at for leg in answered if leg.answered_at)
        conference.last_modified_at = now
        changes.append(conference_change(conference, "running"))
    if ended:
        conference.state = "completed" if answered else "failed"
        conference.ended_at = now
        conference.last_modified_at = now
        changes.append(conference_change(conference, conference.state))
    return changes


def settle_survey(survey: VoiceSurvey, leg: VoiceDialLog) -> list[Change]:
    now = utcnow()
    changes: list[Change] = []
    if survey.state == "created" and leg.answered_at is not None:
        survey.state = "running"
        survey.started_at = leg.answered_at
        survey.last_modified_at = now
        changes.append(survey_change(survey, "running"))
    if survey.state in ("created", "running") and leg.status in FINAL_CALL_STATUSES:
        survey.state = "failed"
        survey.failure = "hung-up" if leg.answered_at is not None else leg.status
        survey.ended_at = now
        survey.last_modified_at = now
        changes.append(survey_change(survey, "failed", ["failure", "state"]))
    return changes
