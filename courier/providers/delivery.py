"""The delivery state machine, shared by texts, emails, pushes and calls.

States and ranks (PROVIDERS.md): accepted 0 → queued 1 → sending 2 → sent 3 → delivered |
undelivered | failed 4. Every transition is one conditional ``UPDATE ... WHERE rank < :new``, so
out-of-order and repeated reports never move a delivery backwards, and the first terminal
state absorbs the rest. Every report is still written to the history (``delivery_events``,
``applied`` false when it changed nothing); a terminal report that contradicts the terminal
state already reached flags the delivery's ``conflict`` and is kept, the first one wins.
The only move down is ``sending → queued`` after :class:`~courier.providers.common.NotSent`,
fenced on the attempt id.

At-most-once sends (:func:`send_delivery`, the ``deliveries.send`` job):

1. Tx1: ``queued → sending`` with a fresh attempt id, committed before the provider is called
   (0 rows: another attempt owns it, exit).
2. The domain's sender (``@delivery_sender(resource_type)``) calls the provider with
   Courier's delivery id attached (``?d=`` on the status callback, the Message-ID ...).
3. Tx2: ``sending → sent`` binding the vendor id; stored webhook events that arrived before
   it was bound (orphans) are applied now.

``NotSent`` → back to ``queued``, sent again later with backoff (``retry_after`` honoured);
``Permanent`` → ``failed`` with the vendor's code; ``Ambiguous`` (or any other error once the
call was made) and a job that finds its delivery already ``sending`` (its worker died between
Tx1 and Tx2) → the delivery stays ``sending`` and is reconciled (``deliveries.reconcile``):
the provider's ``fetch``, else ``failed`` "outcome-unknown" after ``delivery_grace_seconds``.
It is never sent again.

Each change publishes ``deliveries.<state>`` (``courier.events``) and calls the hooks that
domains register with :func:`on_delivery_change`; each provider report applied (a state change
or not) calls those registered with :func:`on_delivery_report`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.bulk import insert_rows, update_rows
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.events import NewEvent, publish_many
from courier.jobs.context import JobContext
from courier.jobs.outbox import enqueue
from courier.jobs.registry import job_handler
from courier.jobs.worker import backoff_seconds
from courier.models.delivery import Delivery, DeliveryEvent, ProviderInbound
from courier.providers.common import (
    KINDS,
    RANK,
    TERMINAL_RANK,
    Ambiguous,
    DeliveryStatus,
    NotSent,
    Permanent,
    ProviderKind,
    SendResult,
    VendorStatus,
    load_provider_kinds,
)

log = logging.getLogger("courier.providers.delivery")

RESOURCE_TYPE = "deliveries"
SEND_JOB = "deliveries.send"
RECONCILE_JOB = "deliveries.reconcile"
OUTCOME_UNKNOWN = "outcome-unknown"
NOT_SENT = "not-sent"
MAX_MESSAGE = 500

S = DeliveryStatus


# --- hooks declared by the domains ------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryChange:
    """A delivery moved to ``state`` (ids and codes only)."""

    organization_id: uuid.UUID
    delivery_id: uuid.UUID
    channel: str
    resource_type: str
    resource_id: uuid.UUID
    state: DeliveryStatus
    code: str | None


Sender = Callable[[JobContext, Delivery, Any], Awaitable[SendResult]]
ChangeHook = Callable[[AsyncSession, DeliveryChange], Awaitable[None]]
Fetcher = Callable[[Any, Delivery], Awaitable[VendorStatus | None]]

ReportHook = Callable[[AsyncSession, Delivery, ProviderInbound], Awaitable[None]]

SENDERS: dict[str, Sender] = {}
CHANGE_HOOKS: dict[str, list[ChangeHook]] = {}
REPORT_HOOKS: dict[str, list[ReportHook]] = {}


def delivery_sender(resource_type: str) -> Callable[[Sender], Sender]:
    """Register how deliveries of ``resource_type`` are sent: ``async (job, delivery,
    adapter) -> SendResult``, raising the provider's errors. It reads what it sends from its
    own tables (``delivery.resource_id``) and attaches ``delivery.id`` to the vendor call."""

    def decorate(sender: Sender) -> Sender:
        SENDERS[resource_type] = sender
        return sender

    return decorate


def on_delivery_change(resource_type: str) -> Callable[[ChangeHook], ChangeHook]:
    """Register ``async (session, change) -> None``, called in the transaction of every
    state change of a delivery of ``resource_type`` (e.g. to mirror it on a text)."""

    def decorate(hook: ChangeHook) -> ChangeHook:
        CHANGE_HOOKS.setdefault(resource_type, []).append(hook)
        return hook

    return decorate


def on_delivery_report(resource_type: str) -> Callable[[ReportHook], ReportHook]:
    """Register ``async (session, delivery, inbound) -> None``, called in the transaction
    that applies each provider report on a delivery of ``resource_type``, whether or not it
    moved the state (a call's ``ringing`` and ``in-progress``; the report's ``raw`` fields,
    e.g. a call's duration and price)."""

    def decorate(hook: ReportHook) -> ReportHook:
        REPORT_HOOKS.setdefault(resource_type, []).append(hook)
        return hook

    return decorate


# --- creating and moving deliveries ---------------------------------------------------------


def provider_name(kind: ProviderKind[Any], settings: Settings) -> str:
    """How a delivery names its provider: ``<kind>:<adapter>``, e.g. ``sms:sandbox``."""
    return f"{kind.name}:{kind.configured(settings)}"


async def create_delivery(
    session: AsyncSession,
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    kind: ProviderKind[Any],
    resource_type: str,
    resource_id: uuid.UUID,
    recipient: str,
    run_at: datetime | None = None,
    delivery_id: uuid.UUID | None = None,
    send: bool = True,
) -> Delivery:
    """Accept a delivery in the caller's transaction and enqueue its send job (never sends).

    ``delivery_id``: a fresh id the caller made (so its own row can name the delivery).
    ``send=False``: no send job; the domain starts the delivery later with :func:`start_send`
    (e.g. a text held by quiet hours, which takes its number's send slot only then), or its
    own job sends many deliveries at once through :func:`send_deliveries` (a multicast's
    pushes)."""
    now = utcnow()
    delivery = Delivery(
        id=delivery_id or uuid.uuid4(),
        organization_id=organization_id,
        channel=kind.name,
        resource_type=resource_type,
        resource_id=resource_id,
        recipient=recipient,
        provider=provider_name(kind, settings),
        state=S.ACCEPTED.value,
        rank=RANK[S.ACCEPTED],
        attempts=0,
        conflict=False,
        created_at=now,
        updated_at=now,
    )
    session.add(delivery)
    session.add(_history(delivery.id, organization_id, S.ACCEPTED, "send", True, occurred_at=now))
    await _changed(session, _change(delivery, S.ACCEPTED, None))
    if send:
        # The delivery was made just now: no job can hold its key yet.
        await start_send(session, organization_id, delivery.id, run_at=run_at, new_key=True)
    return delivery


async def start_send(
    session: AsyncSession,
    organization_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    run_at: datetime | None = None,
    new_key: bool = False,
) -> None:
    """Enqueue the first send job of a delivery (once: a second call finds it by its key)."""
    await enqueue(
        session,
        SEND_JOB,
        {"delivery_id": delivery_id},
        organization_id=organization_id,
        run_at=run_at,
        dedupe_key=first_send_key(delivery_id),
        new_key=new_key,
    )


async def create_deliveries(
    session: AsyncSession,
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    kind: ProviderKind[Any],
    resource_type: str,
    items: list[tuple[uuid.UUID, uuid.UUID, str]],
) -> None:
    """:func:`create_delivery` for many at once, without send jobs (the caller's own job sends
    them through :func:`send_deliveries`): ``items`` are ``(delivery id, resource id,
    recipient)``. Two INSERTs (the deliveries and their first history rows, each one statement:
    :func:`courier.core.bulk.insert_rows`), an event and the hooks per delivery, as one by
    one."""
    if not items:
        return
    now = utcnow()
    provider = provider_name(kind, settings)
    # Core inserts through the connection: every row names its organization (the tenancy
    # guard reasons about queries, not these).
    connection = await session.connection()
    await insert_rows(
        connection,
        cast(Any, Delivery.__table__),
        [
            {
                "id": delivery_id,
                "organization_id": organization_id,
                "channel": kind.name,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "recipient": recipient,
                "provider": provider,
                "state": S.ACCEPTED.value,
                "rank": RANK[S.ACCEPTED],
                "attempts": 0,
                "conflict": False,
                "created_at": now,
                "updated_at": now,
            }
            for delivery_id, resource_id, recipient in items
        ],
    )
    await insert_rows(
        connection,
        cast(Any, DeliveryEvent.__table__),
        [
            {
                "id": uuid.uuid4(),
                "organization_id": organization_id,
                "delivery_id": delivery_id,
                "state": S.ACCEPTED.value,
                "source": "send",
                "applied": True,
                "occurred_at": now,
                "recorded_at": now,
            }
            for delivery_id, _resource_id, _recipient in items
        ],
    )
    await _changed_many(
        session,
        [
            DeliveryChange(
                organization_id,
                delivery_id,
                kind.name,
                resource_type,
                resource_id,
                S.ACCEPTED,
                None,
            )
            for delivery_id, resource_id, _recipient in items
        ],
    )


def first_send_key(delivery_id: uuid.UUID) -> str:
    """The dedupe key of a delivery's first send job (:func:`create_delivery` enqueues it)."""
    return f"{SEND_JOB}:{delivery_id}:0"


async def transition(
    session: AsyncSession,
    organization_id: uuid.UUID,
    delivery_id: uuid.UUID,
    new: DeliveryStatus,
    *,
    source: str,
    vendor_status: str | None = None,
    code: str | None = None,
    message: str | None = None,
    occurred_at: datetime | None = None,
    expect_state: DeliveryStatus | None = None,
    expect_attempt: uuid.UUID | None = None,
    values: dict[str, Any] | None = None,
) -> bool:
    """Move the delivery to ``new`` if its rank is lower (one conditional UPDATE); record the
    report in its history either way. True when the state changed."""
    now = utcnow()
    backwards = new is S.QUEUED and expect_state is S.SENDING  # only after NotSent
    stmt = update(Delivery).where(Delivery.id == delivery_id)
    if not backwards:
        stmt = stmt.where(Delivery.rank < RANK[new])
    if expect_state is not None:
        stmt = stmt.where(Delivery.state == expect_state.value)
    if expect_attempt is not None:
        stmt = stmt.where(Delivery.attempt_id == expect_attempt)
    changes: dict[str, Any] = {"state": new.value, "rank": RANK[new], "updated_at": now}
    if new.terminal:
        changes["completed_at"] = occurred_at or now
        changes["error_code"] = code
        changes["error_message"] = message[:MAX_MESSAGE] if message else None
    elif new is S.SENT:
        changes["sent_at"] = occurred_at or now
    changes.update(values or {})
    returning = scoped(stmt, Delivery, organization_id).values(**changes)
    row = (
        await session.execute(
            returning.returning(
                Delivery.channel, Delivery.resource_type, Delivery.resource_id
            ).execution_options(synchronize_session=False)
        )
    ).one_or_none()
    applied = row is not None
    note = message
    if not applied and new.terminal:
        current = await _state(session, organization_id, delivery_id)
        if current is not None and current.terminal and current is not new:
            note = f"conflicts with {current.value}; {current.value} kept" + (
                f" ({message})" if message else ""
            )
            await session.execute(
                scoped(
                    update(Delivery).where(Delivery.id == delivery_id), Delivery, organization_id
                )
                .values(conflict=True)
                .execution_options(synchronize_session=False)
            )
    session.add(
        _history(
            delivery_id,
            organization_id,
            new,
            source,
            applied,
            vendor_status=vendor_status,
            code=code,
            message=note,
            occurred_at=occurred_at,
        )
    )
    if row is not None:
        change = DeliveryChange(
            organization_id, delivery_id, row.channel, row.resource_type, row.resource_id, new, code
        )
        await _changed(session, change)
    return applied


def record(
    session: AsyncSession,
    delivery: Delivery,
    *,
    source: str,
    vendor_status: str | None = None,
    code: str | None = None,
    message: str | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """Keep a report that changes no state (a ``read`` receipt, an ambiguous send)."""
    session.add(
        _history(
            delivery.id,
            delivery.organization_id,
            None,
            source,
            False,
            vendor_status=vendor_status,
            code=code,
            message=message,
            occurred_at=occurred_at,
        )
    )


async def load(
    session: AsyncSession, organization_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery | None:
    stmt = scoped(select(Delivery).where(Delivery.id == delivery_id), Delivery, organization_id)
    found: Delivery | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return found


async def history(
    session: AsyncSession, organization_id: uuid.UUID, delivery_id: uuid.UUID
) -> list[DeliveryEvent]:
    stmt = scoped(
        select(DeliveryEvent)
        .where(DeliveryEvent.delivery_id == delivery_id)
        .order_by(DeliveryEvent.recorded_at, DeliveryEvent.id),
        DeliveryEvent,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def _state(
    session: AsyncSession, organization_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryStatus | None:
    stmt = scoped(
        select(Delivery.state).where(Delivery.id == delivery_id), Delivery, organization_id
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    return S(value) if value is not None else None


def _history(
    delivery_id: uuid.UUID,
    organization_id: uuid.UUID,
    state: DeliveryStatus | None,
    source: str,
    applied: bool,
    *,
    vendor_status: str | None = None,
    code: str | None = None,
    message: str | None = None,
    occurred_at: datetime | None = None,
) -> DeliveryEvent:
    return DeliveryEvent(
        id=uuid.uuid4(),
        organization_id=organization_id,
        delivery_id=delivery_id,
        state=state.value if state is not None else None,
        vendor_status=vendor_status,
        code=code,
        message=message[:MAX_MESSAGE] if message else None,
        source=source,
        applied=applied,
        occurred_at=occurred_at,
        recorded_at=utcnow(),
    )


def _history_row(
    delivery_id: uuid.UUID,
    organization_id: uuid.UUID,
    state: DeliveryStatus,
    source: str,
    now: datetime,
    *,
    vendor_status: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """A history row as a plain row, for :func:`_add_history` (batches)."""
    return {
        "id": uuid.uuid4(),
        "organization_id": organization_id,
        "delivery_id": delivery_id,
        "state": state.value,
        "vendor_status": vendor_status,
        "source": source,
        "applied": True,
        "occurred_at": occurred_at,
        "recorded_at": now,
    }


async def _add_history(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """History rows of a batch in one statement (:func:`courier.core.bulk.insert_rows`; each
    row names its organization), not one INSERT per row."""
    if rows:
        await insert_rows(await session.connection(), cast(Any, DeliveryEvent.__table__), rows)


def _change(delivery: Delivery, state: DeliveryStatus, code: str | None) -> DeliveryChange:
    return DeliveryChange(
        delivery.organization_id,
        delivery.id,
        delivery.channel,
        delivery.resource_type,
        delivery.resource_id,
        state,
        code,
    )


async def _changed(session: AsyncSession, change: DeliveryChange) -> None:
    await _changed_many(session, [change])


async def _changed_many(session: AsyncSession, changes: list[DeliveryChange]) -> None:
    """Publish ``deliveries.<state>`` for each change (one batch, in order), then call the
    hooks of each change's resource type."""
    publish_many(
        session,
        [
            NewEvent(
                change.organization_id,
                RESOURCE_TYPE,
                change.state.value,
                change.delivery_id,
                data={
                    "channel": change.channel,
                    "resource-type": change.resource_type,
                    "resource-id": str(change.resource_id),
                    "state": change.state.value,
                    "code": change.code,
                },
            )
            for change in changes
        ],
    )
    for change in changes:
        for hook in CHANGE_HOOKS.get(change.resource_type, ()):
            await hook(session, change)


# --- binding the vendor id, and the events that waited for it --------------------------------


async def bind_vendor_id(session: AsyncSession, delivery: Delivery, vendor_id: str) -> None:
    """Store the vendor's id (if none yet) and apply stored events that waited for it."""
    await session.execute(
        scoped(
            update(Delivery).where(Delivery.id == delivery.id, Delivery.vendor_id.is_(None)),
            Delivery,
            delivery.organization_id,
        )
        .values(vendor_id=vendor_id)
        .execution_options(synchronize_session=False)
    )
    orphans = (
        await session.execute(
            select(ProviderInbound)
            .where(
                ProviderInbound.provider == delivery.provider,
                ProviderInbound.vendor_id == vendor_id,
                ProviderInbound.applied_at.is_(None),
            )
            .order_by(ProviderInbound.received_at)
        )
    ).scalars()
    for inbound in list(orphans):
        inbound.organization_id = delivery.organization_id
        inbound.delivery_id = delivery.id
        await apply_status(session, inbound, delivery)


async def apply_status(session: AsyncSession, inbound: ProviderInbound, delivery: Delivery) -> None:
    """Apply a stored status report to its delivery and mark it applied."""
    if inbound.status is not None:
        await transition(
            session,
            delivery.organization_id,
            delivery.id,
            S(inbound.status),
            source="callback",
            vendor_status=inbound.vendor_status,
            code=inbound.vendor_code,
            message=f"{inbound.vendor_status} reported" if inbound.vendor_code else None,
            occurred_at=inbound.occurred_at,
        )
    else:
        record(
            session,
            delivery,
            source="callback",
            vendor_status=inbound.vendor_status,
            code=inbound.vendor_code,
            occurred_at=inbound.occurred_at,
        )
    inbound.applied_at = utcnow()
    for hook in REPORT_HOOKS.get(delivery.resource_type, ()):
        await hook(session, delivery, inbound)


# --- the send job ---------------------------------------------------------------------------


def _kind(delivery: Delivery) -> ProviderKind[Any]:
    load_provider_kinds()
    return KINDS[delivery.channel]


async def send_delivery(job: JobContext, delivery_id: uuid.UUID) -> dict[str, Any]:
    """Send one delivery at most once (see the module's docstring)."""
    session = job.session
    org = job.organization_id
    delivery = await load(session, org, delivery_id)
    if delivery is None:
        return {"skipped": "no such delivery"}
    if delivery.state == S.ACCEPTED.value:
        await transition(
            session, org, delivery_id, S.QUEUED, source="send", expect_state=S.ACCEPTED
        )
    attempt = uuid.uuid4()
    claimed = await transition(
        session,
        org,
        delivery_id,
        S.SENDING,
        source="send",
        expect_state=S.QUEUED,
        values={"attempt_id": attempt, "sending_at": utcnow(), "attempts": Delivery.attempts + 1},
    )
    if not claimed:
        state = await _state(session, org, delivery_id)
        if state is S.SENDING:  # an earlier attempt died after Tx1: reconcile, never resend
            await schedule_reconcile(job.session, job.settings, org, delivery_id, attempt=None)
        return {"skipped": state.value if state else "gone"}
    await job.checkpoint()  # Tx1: the intent is durable before the provider is called
    sender = SENDERS.get(delivery.resource_type)
    if sender is None:
        await transition(
            session,
            org,
            delivery_id,
            S.FAILED,
            source="send",
            code="no-sender",
            message=f"nothing sends {delivery.resource_type}",
            expect_attempt=attempt,
        )
        return {"state": S.FAILED.value}
    adapter = job.providers.get(_kind(delivery))
    try:
        result = await sender(job, delivery, adapter)
    except NotSent as exc:
        return await _not_sent(job, delivery, attempt, exc)
    except Permanent as exc:
        await transition(
            session,
            org,
            delivery_id,
            S.FAILED,
            source="send",
            code=exc.code,
            message=exc.message,
            expect_attempt=attempt,
        )
        return {"state": S.FAILED.value, "code": exc.code}
    except Exception as exc:  # Ambiguous, or anything once the call was under way
        reason = exc.message if isinstance(exc, Ambiguous) else type(exc).__name__
        record(session, delivery, source="send", message=f"outcome unknown: {reason}")
        await schedule_reconcile(session, job.settings, org, delivery_id, attempt=attempt)
        return {"state": S.SENDING.value, "reconcile": True}
    # Tx2 (commits with the job's "done"): bind the vendor's id, then sent.
    await bind_vendor_id(session, delivery, result.vendor_id)
    await transition(
        session,
        org,
        delivery_id,
        S.SENT,
        source="send",
        vendor_status=result.vendor_status,
        occurred_at=result.accepted_at,
        expect_attempt=attempt,
    )
    return {"vendor-id": result.vendor_id}


async def _not_sent(
    job: JobContext, delivery: Delivery, attempt: uuid.UUID, exc: NotSent
) -> dict[str, Any]:
    session, org = job.session, job.organization_id
    attempts = delivery.attempts + 1  # ``delivery`` was read before Tx1 counted this one
    if attempts >= job.settings.job_max_attempts:
        await transition(
            session,
            org,
            delivery.id,
            S.FAILED,
            source="send",
            code=exc.code or NOT_SENT,
            message=f"not sent after {attempts} attempts: {exc.message}",
            expect_attempt=attempt,
        )
        return {"state": S.FAILED.value}
    await transition(
        session,
        org,
        delivery.id,
        S.QUEUED,
        source="send",
        code=exc.code,
        message=exc.message,
        expect_state=S.SENDING,
        expect_attempt=attempt,
    )
    delay = max(
        exc.retry_after or 0.0,
        backoff_seconds(
            attempts, job.settings.job_backoff_base_seconds, job.settings.job_backoff_max_seconds
        ),
    )
    await enqueue(
        session,
        SEND_JOB,
        {"delivery_id": delivery.id},
        organization_id=org,
        run_at=utcnow() + timedelta(seconds=delay),
        dedupe_key=f"{SEND_JOB}:{delivery.id}:{attempts}",
    )
    return {"state": S.QUEUED.value, "retry-in": round(delay, 3)}


@job_handler(SEND_JOB)
async def _send_job(job: JobContext) -> dict[str, Any] | None:
    return await send_delivery(job, uuid.UUID(str(job.payload["delivery_id"])))


# --- sending many deliveries in one job ---------------------------------------------------------

BATCH_CONCURRENCY = 8  # provider calls in flight at once in one batch


async def transition_many(
    session: AsyncSession,
    organization_id: uuid.UUID,
    delivery_ids: list[uuid.UUID],
    new: DeliveryStatus,
    *,
    source: str,
    expect_state: tuple[DeliveryStatus, ...],
    values: dict[str, Any] | None = None,
) -> list[uuid.UUID]:
    """:func:`transition` for many deliveries in one of ``expect_state`` at once: one
    conditional UPDATE per 500, a history row and an event per delivery moved. The ids
    moved."""
    moved: list[uuid.UUID] = []
    now = utcnow()
    for start in range(0, len(delivery_ids), 500):
        chunk = delivery_ids[start : start + 500]
        stmt = (
            scoped(
                update(Delivery).where(
                    Delivery.id.in_(chunk),
                    Delivery.rank < RANK[new],
                    Delivery.state.in_([state.value for state in expect_state]),
                ),
                Delivery,
                organization_id,
            )
            .values(state=new.value, rank=RANK[new], updated_at=now, **(values or {}))
            .returning(Delivery.id, Delivery.channel, Delivery.resource_type, Delivery.resource_id)
            .execution_options(synchronize_session=False)
        )
        found = (await session.execute(stmt)).all()
        await _add_history(
            session,
            [_history_row(row.id, organization_id, new, source, now) for row in found],
        )
        moved.extend(row.id for row in found)
        await _changed_many(
            session,
            [
                DeliveryChange(
                    organization_id,
                    row.id,
                    row.channel,
                    row.resource_type,
                    row.resource_id,
                    new,
                    None,
                )
                for row in found
            ],
        )
    return moved


async def send_deliveries(job: JobContext, delivery_ids: list[uuid.UUID]) -> dict[str, Any]:
    """Send many deliveries of one job, each at most once, as :func:`send_delivery` sends one:

    1. Tx1 claims every delivery still ``accepted``/``queued`` (``sending`` with this batch's
       attempt id; the batch is its queue, so ``accepted`` moves straight on) in a few
       statements and commits before any provider call; a delivery already ``sending`` (an
       earlier run of this job died after its Tx1) is reconciled, never sent again.
    2. The provider is called for each claimed delivery, ``BATCH_CONCURRENCY`` at a time.
    3. Tx2 (the job's commit): vendor ids bound and ``sent`` (one statement for all),
       ``failed`` for permanent refusals, ``queued`` with a retry job for ``NotSent``, and
       ``sending`` + reconciliation for ambiguous outcomes.
    """
    session, org = job.session, job.organization_id
    rows = []
    for start in range(0, len(delivery_ids), 500):
        chunk = delivery_ids[start : start + 500]
        found = await session.execute(
            scoped(select(Delivery).where(Delivery.id.in_(chunk)), Delivery, org)
        )
        rows.extend(found.scalars())
    if not rows:
        return {"sent": 0}
    for row in rows:
        if row.state == S.SENDING.value:  # an earlier run died after its Tx1
            await schedule_reconcile(session, job.settings, org, row.id, attempt=None)
    attempt = uuid.uuid4()
    claimed_ids = set(
        await transition_many(
            session,
            org,
            [r.id for r in rows if r.state in (S.ACCEPTED.value, S.QUEUED.value)],
            S.SENDING,
            source="send",
            # Straight from accepted (the batch is its queue): one move per delivery.
            expect_state=(S.ACCEPTED, S.QUEUED),
            values={
                "attempt_id": attempt,
                "sending_at": utcnow(),
                "attempts": Delivery.attempts + 1,
            },
        )
    )
    claimed = [row for row in rows if row.id in claimed_ids]
    if not claimed:
        return {"sent": 0}
    # What each sender needs is read before Tx1 commits (no statement waits on the provider).
    prepared: list[tuple[Delivery, Callable[[], Awaitable[SendResult]] | Exception]] = []
    by_type: dict[str, list[Delivery]] = {}
    for row in claimed:
        by_type.setdefault(row.resource_type, []).append(row)
    for resource_type, group in by_type.items():
        sender = BATCH_SENDERS.get(resource_type)
        actions: Mapping[uuid.UUID, Callable[[], Awaitable[SendResult]] | Permanent] = {}
        if sender is not None:
            actions = await sender(job, group, job.providers.get(_kind(group[0])))
        for row in group:
            prepared.append(
                (
                    row,
                    actions.get(row.id) or Permanent("no-sender", f"nothing sends {resource_type}"),
                )
            )
    await job.checkpoint()  # Tx1: every intent is durable before the first provider call

    gate = asyncio.Semaphore(BATCH_CONCURRENCY)

    async def call(
        action: Callable[[], Awaitable[SendResult]] | Exception,
    ) -> SendResult | Exception:
        if isinstance(action, Exception):
            return action
        async with gate:
            try:
                return await action()
            except Exception as exc:  # classified below, one delivery at a time
                return exc

    outcomes = await asyncio.gather(*(call(action) for _row, action in prepared))
    sent: list[tuple[Delivery, SendResult]] = []
    counts = {"sent": 0, "failed": 0, "retry": 0, "reconcile": 0}
    for (row, _action), outcome in zip(prepared, outcomes, strict=True):
        if isinstance(outcome, SendResult):
            sent.append((row, outcome))
        elif isinstance(outcome, NotSent):
            await _not_sent(job, row, attempt, outcome)
            counts["retry"] += 1
        elif isinstance(outcome, Permanent):
            for hook in GONE_HOOKS.get(row.resource_type, ()):
                await hook(session, row, outcome)
            await transition(
                session,
                org,
                row.id,
                S.FAILED,
                source="send",
                code=outcome.code,
                message=outcome.message,
                expect_attempt=attempt,
            )
            counts["failed"] += 1
        else:
            reason = outcome.message if isinstance(outcome, Ambiguous) else type(outcome).__name__
            record(session, row, source="send", message=f"outcome unknown: {reason}")
            await schedule_reconcile(session, job.settings, org, row.id, attempt=attempt)
            counts["reconcile"] += 1
    if sent:
        await _mark_sent(session, org, attempt, sent)
        counts["sent"] = len(sent)
    return counts


async def _mark_sent(
    session: AsyncSession,
    org: uuid.UUID,
    attempt: uuid.UUID,
    sent: list[tuple[Delivery, SendResult]],
) -> None:
    """Tx2 of a batch: bind each vendor id and move to ``sent`` (one statement for the batch:
    :func:`courier.core.bulk.update_rows`), then apply any provider report that arrived before
    its vendor id was bound."""
    table: Any = Delivery.__table__
    now = utcnow()
    stmt = (
        scoped(update(table), Delivery, org)
        .where(table.c.attempt_id == attempt, table.c.rank < RANK[S.SENT])
        .values(state=S.SENT.value, rank=RANK[S.SENT], updated_at=now)
    )
    await update_rows(
        await session.connection(),
        stmt,
        "id",
        [
            {"id": row.id, "sent_at": result.accepted_at or now, "vendor_id": result.vendor_id}
            for row, result in sent
        ],
    )
    await _add_history(
        session,
        [
            _history_row(
                row.id,
                org,
                S.SENT,
                "send",
                now,
                vendor_status=result.vendor_status,
                occurred_at=result.accepted_at,
            )
            for row, result in sent
        ],
    )
    await _changed_many(session, [_change(row, S.SENT, None) for row, _result in sent])
    provider = sent[0][0].provider
    vendor_ids = [result.vendor_id for _row, result in sent]
    orphans = list(
        (
            await session.execute(
                select(ProviderInbound).where(
                    ProviderInbound.provider == provider,
                    ProviderInbound.vendor_id.in_(vendor_ids),
                    ProviderInbound.applied_at.is_(None),
                )
            )
        ).scalars()
    )
    by_vendor = {result.vendor_id: row for row, result in sent}
    for inbound in orphans:
        row = by_vendor[inbound.vendor_id]
        inbound.organization_id = org
        inbound.delivery_id = row.id
        await apply_status(session, inbound, row)


# A batch sender reads what its deliveries send (in Tx1, a few statements for all of them) and
# returns, by delivery id, the provider call to make (``async () -> SendResult``) or the
# ``Permanent`` refusal when there is nothing to send: ``async (job, deliveries, adapter) ->
# {id: call | Permanent}``. A failure hook runs in Tx2 when the provider refused for good
# (e.g. a push token gone: the device is deactivated with the failure).
SendAction = Callable[[], Awaitable[SendResult]]
BatchSender = Callable[
    [JobContext, list[Delivery], Any], Awaitable[Mapping[uuid.UUID, SendAction | Permanent]]
]
GoneHook = Callable[[AsyncSession, Delivery, Permanent], Awaitable[None]]
BATCH_SENDERS: dict[str, BatchSender] = {}
GONE_HOOKS: dict[str, list[GoneHook]] = {}


def batch_sender(resource_type: str) -> Callable[[BatchSender], BatchSender]:
    """Register how deliveries of ``resource_type`` are sent by :func:`send_deliveries`."""

    def decorate(sender: BatchSender) -> BatchSender:
        BATCH_SENDERS[resource_type] = sender
        return sender

    return decorate


def on_permanent_failure(resource_type: str) -> Callable[[GoneHook], GoneHook]:
    """Register ``async (session, delivery, error)``: called in the transaction that marks a
    batch-sent delivery of ``resource_type`` failed for good."""

    def decorate(hook: GoneHook) -> GoneHook:
        GONE_HOOKS.setdefault(resource_type, []).append(hook)
        return hook

    return decorate


# --- reconciliation -------------------------------------------------------------------------


async def schedule_reconcile(
    session: AsyncSession,
    settings: Settings,
    organization_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    attempt: uuid.UUID | None,
) -> None:
    delay = min(settings.delivery_grace_seconds / 4, 300.0)
    await enqueue(
        session,
        RECONCILE_JOB,
        {"delivery_id": delivery_id},
        organization_id=organization_id,
        run_at=utcnow() + timedelta(seconds=delay),
        dedupe_key=f"{RECONCILE_JOB}:{delivery_id}:{attempt or 'recovered'}",
    )


async def reconcile_delivery(job: JobContext, delivery_id: uuid.UUID) -> dict[str, Any]:
    """Settle a delivery stuck in ``sending``: ask the provider, else give up after the grace
    period with "outcome-unknown". Never sends."""
    session, org = job.session, job.organization_id
    delivery = await load(session, org, delivery_id)
    if delivery is None or delivery.state != S.SENDING.value:
        return {"skipped": delivery.state if delivery else "gone"}
    adapter = job.providers.get(_kind(delivery))
    fetch = getattr(adapter, "fetch", None)
    found: VendorStatus | None = None
    if fetch is not None:
        await job.checkpoint()  # no transaction held while the provider answers
        try:
            found = await fetch(
                delivery_id=delivery.id, vendor_id=delivery.vendor_id, recipient=delivery.recipient
            )
        except NotSent:
            # The provider says it certainly never took this delivery (it keeps a record of
            # every send it takes, e.g. the sandbox): the worker died before the call, so
            # sending it now is the first send, not a second one.
            if await transition(
                session,
                org,
                delivery_id,
                S.QUEUED,
                source="reconcile",
                message="the provider never received it; sent again",
                expect_state=S.SENDING,
            ):
                await enqueue(
                    session,
                    SEND_JOB,
                    {"delivery_id": delivery_id},
                    organization_id=org,
                    dedupe_key=f"{SEND_JOB}:{delivery_id}:{uuid.uuid4()}",
                )
            return {"state": S.QUEUED.value}
        except Exception as exc:  # the lookup failed: try again later (the job retries)
            raise RuntimeError(f"reconciliation lookup failed: {type(exc).__name__}") from exc
    if found is not None:
        await bind_vendor_id(session, delivery, found.vendor_id)
        if found.status.rank >= RANK[S.SENT]:
            await transition(
                session,
                org,
                delivery_id,
                S.SENT,
                source="reconcile",
                vendor_status=found.vendor_status,
            )
        if found.status.terminal:
            await transition(
                session,
                org,
                delivery_id,
                found.status,
                source="reconcile",
                vendor_status=found.vendor_status,
                code=found.vendor_code,
                occurred_at=found.occurred_at,
            )
        return {"state": found.status.value}
    started = delivery.sending_at or delivery.updated_at
    if utcnow() - started >= timedelta(seconds=job.settings.delivery_grace_seconds):
        await transition(
            session,
            org,
            delivery_id,
            S.FAILED,
            source="reconcile",
            code=OUTCOME_UNKNOWN,
            message="the provider may or may not have sent it; not resent",
            expect_state=S.SENDING,
        )
        return {"state": S.FAILED.value}
    await enqueue(
        session,
        RECONCILE_JOB,
        {"delivery_id": delivery_id},
        organization_id=org,
        run_at=utcnow() + timedelta(seconds=min(job.settings.delivery_grace_seconds / 4, 300.0)),
        dedupe_key=f"{RECONCILE_JOB}:{delivery_id}:{uuid.uuid4()}",
    )
    return {"state": S.SENDING.value, "again": True}


@job_handler(RECONCILE_JOB)
async def _reconcile_job(job: JobContext) -> dict[str, Any] | None:
    return await reconcile_delivery(job, uuid.UUID(str(job.payload["delivery_id"])))


__all__ = [
    "TERMINAL_RANK",
    "DeliveryChange",
    "bind_vendor_id",
    "create_deliveries",
    "create_delivery",
    "delivery_sender",
    "first_send_key",
    "history",
    "load",
    "on_delivery_change",
    "reconcile_delivery",
    "send_deliveries",
    "send_delivery",
    "transition",
]
