"""Fan-outs: one piece of work done for many targets (plan → chunk → deliver → settle).

A domain declares what it fans out, once, next to its jobs; this module does the rest::

    BULK = register_fanout(FanoutSpec(
        "messaging-bulk-messages",
        plan=plan_recipients,        # async (run) -> Iterable[Target]
        deliver=post_to_recipients,  # async (run, targets) -> {target id: Delivered | Skipped}
        settle=mark_posted,          # async (run) -> None, once every chunk is done
        chunk_size=lambda settings: settings.bulk_message_chunk_size,
    ))

    await start(ctx.session, BULK, organization_id=org, subject_id=bulk.id)  # in the request

(``deliver_one=`` takes one target at a time instead of ``deliver=``.)

The life of a fan-out (``fanouts`` row, one per subject; ``fanout_targets``, one per target):

1. :func:`start` adds the fan-out (``queued``) and its plan job to the caller's transaction.
2. The plan job (``<name>.plan``) calls ``plan``, writes one ``pending`` target row each (with
   the ``data`` the plan chose for it), split into chunks of ``chunk_size`` in the order given,
   and enqueues one chunk job per chunk (``<name>.chunk``): all in its one transaction.
   Nothing to do: the fan-out settles at once.
3. A chunk job locks its chunk's pending targets, calls ``deliver`` for them (in target id
   order), marks each ``delivered`` (with the ``outcome`` the domain recorded) or ``skipped``
   (with the reason), and counts the chunk, **in one transaction** with whatever ``deliver``
   wrote. A worker killed
   half-way commits nothing of the chunk; the job is taken up again when its lease expires and
   delivers the chunk then. A committed chunk is never delivered again: its targets are no
   longer pending and its job is done. So every target gets exactly one effect — provided
   ``deliver`` only writes to the session it is given (a call to a provider is a job it
   enqueues, e.g. a delivery, never a call made from ``deliver``).
4. The chunk that counts last settles the fan-out and calls ``settle`` in its transaction.

:func:`cancel` stops a fan-out: every target not reached yet is skipped (reason
``cancelled``), chunks not started deliver nothing; a chunk being delivered at that moment
finishes first (its targets are locked). A chunk that fails is retried by the outbox like any
job (backoff, ``max_attempts``), each attempt starting from the chunk's pending targets.

Hooks get a :class:`FanoutRun`: the job (its session, settings, providers) and the fan-out row.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.bulk import insert_rows, update_rows
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.jobs.context import JobContext, PermanentJobError, normalise_result
from courier.jobs.outbox import enqueue
from courier.jobs.registry import MAX_KIND_LENGTH, job_handler
from courier.models.fanout import Fanout, FanoutState, FanoutTarget, TargetState

log = logging.getLogger("courier.fanout")

CANCELLED = "cancelled"  # the reason of every target a cancel left unreached
MAX_REASON = 64
_TARGETS: Any = FanoutTarget.__table__


@dataclass(frozen=True)
class Target:
    """One target as the plan chose it: its id and, optionally, what was chosen for it (ids,
    keys: it is stored, so never content or patient data)."""

    id: uuid.UUID
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Delivered:
    """The target got its effect; ``outcome`` is what to remember of it (ids only)."""

    outcome: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Skipped:
    """The target was not reached, and why (a short code the domain explains to people)."""

    reason: str


Outcome = Delivered | Skipped


@dataclass
class FanoutRun:
    """A fan-out as its hooks see it, inside the job that runs them."""

    job: JobContext
    fanout: Fanout

    @property
    def session(self) -> AsyncSession:
        return self.job.session

    @property
    def settings(self) -> Settings:
        return self.job.settings

    @property
    def organization_id(self) -> uuid.UUID:
        return self.job.organization_id

    @property
    def subject_id(self) -> uuid.UUID:
        return self.fanout.subject_id


PlanHook = Callable[[FanoutRun], Awaitable[Iterable[Target]]]
DeliverHook = Callable[[FanoutRun, Sequence[Target]], Awaitable[Mapping[uuid.UUID, Outcome]]]
DeliverOneHook = Callable[[FanoutRun, Target], Awaitable[Outcome]]
SettleHook = Callable[[FanoutRun], Awaitable[None]]


@dataclass(frozen=True)
class FanoutSpec:
    """What a domain fans out: its name (the job kinds' prefix) and its hooks.

    - ``plan(run)``: the targets, in the order to deliver them (duplicates are dropped).
    - ``deliver(run, targets)`` → an :data:`Outcome` per target id, or ``deliver_one(run,
      target)`` → one :data:`Outcome` (exactly one of the two). Writes only to ``run.session``.
    - ``settle(run)`` (optional): once every chunk is done (not after a cancel).
    - ``chunk_size``: targets per chunk job (one transaction each), or a function of settings.
    - ``max_attempts``: of the plan and chunk jobs (default: the ``job_max_attempts`` setting).
    """

    name: str
    plan: PlanHook
    deliver: DeliverHook | None = None
    deliver_one: DeliverOneHook | None = None
    settle: SettleHook | None = None
    chunk_size: int | Callable[[Settings], int] = 200
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) + len(".chunk") > MAX_KIND_LENGTH:
            raise ValueError(f"a fan-out name is 1 to {MAX_KIND_LENGTH - 6} characters")
        if (self.deliver is None) == (self.deliver_one is None):
            raise ValueError(f"fan-out {self.name!r}: give exactly one of deliver, deliver_one")

    @property
    def plan_kind(self) -> str:
        return f"{self.name}.plan"

    @property
    def chunk_kind(self) -> str:
        return f"{self.name}.chunk"

    def size(self, settings: Settings) -> int:
        size = self.chunk_size(settings) if callable(self.chunk_size) else self.chunk_size
        if size < 1:
            raise ValueError(f"fan-out {self.name!r}: chunk size must be at least 1")
        return size


FANOUTS: dict[str, FanoutSpec] = {}


def register_fanout(spec: FanoutSpec) -> FanoutSpec:
    """Declare a fan-out: its plan and chunk jobs are registered with the worker. Call it in
    a module the worker imports (the domain's ``jobs.py``, or one it imports)."""
    existing = FANOUTS.get(spec.name)
    if existing is not None:
        if existing is spec:
            return spec
        raise ValueError(f"fan-out {spec.name!r} is already declared")
    FANOUTS[spec.name] = spec

    async def plan_job(job: JobContext) -> dict[str, Any] | None:
        return await _plan(spec, job)

    async def chunk_job(job: JobContext) -> dict[str, Any] | None:
        return await _chunk(spec, job)

    job_handler(spec.plan_kind, max_attempts=spec.max_attempts)(plan_job)
    job_handler(spec.chunk_kind, max_attempts=spec.max_attempts)(chunk_job)
    return spec


# --- what a request does ---------------------------------------------------------------------


async def start(
    session: AsyncSession, spec: FanoutSpec, *, organization_id: uuid.UUID, subject_id: uuid.UUID
) -> Fanout:
    """Add the fan-out of ``subject_id`` and its plan job to ``session``'s transaction (it runs
    once that commits); the one already started, if any. The caller serialises starts of one
    subject (e.g. it holds the subject's row lock). Never commits."""
    existing = await find(session, spec, organization_id, subject_id)
    if existing is not None:
        return existing
    fanout = Fanout(
        id=uuid.uuid4(),
        organization_id=organization_id,
        kind=spec.name,
        subject_id=subject_id,
        state=FanoutState.QUEUED.value,
        target_count=0,
        chunk_count=0,
        chunks_done=0,
        delivered_count=0,
        skipped_count=0,
        created_at=utcnow(),
    )
    session.add(fanout)
    await enqueue(
        session,
        spec.plan_kind,
        {"fanout_id": fanout.id},
        organization_id=organization_id,
        dedupe_key=f"{spec.plan_kind}:{subject_id}",
    )
    return fanout


async def cancel(
    session: AsyncSession, spec: FanoutSpec, *, organization_id: uuid.UUID, subject_id: uuid.UUID
) -> Fanout | None:
    """Stop the fan-out of ``subject_id``: its targets not reached yet are skipped (reason
    ``cancelled``) and its chunks not started deliver nothing. A chunk being delivered now
    finishes first. Returns the fan-out as it is then (``settled`` if it finished before the
    cancel could stop it), or None if none was started. Never commits."""
    fanout = await find(session, spec, organization_id, subject_id)
    if fanout is None or fanout.state in (FanoutState.SETTLED.value, FanoutState.CANCELLED.value):
        return fanout
    now = utcnow()
    # Targets first, then the fan-out row: the order a chunk takes its locks in.
    skipped = await _skip_pending(session, fanout, CANCELLED, now=now)
    stmt = (
        scoped(update(Fanout), Fanout, organization_id)
        .where(
            Fanout.id == fanout.id,
            Fanout.state.in_([FanoutState.QUEUED.value, FanoutState.RUNNING.value]),
        )
        .values(
            state=FanoutState.CANCELLED.value,
            cancelled_at=now,
            skipped_count=Fanout.skipped_count + skipped,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(stmt)
    return await _load(session, organization_id, fanout.id)


# --- reading ---------------------------------------------------------------------------------


async def find(
    session: AsyncSession,
    spec: FanoutSpec,
    organization_id: uuid.UUID,
    subject_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Fanout | None:
    """The fan-out of ``subject_id``, if one was started."""
    stmt = scoped(select(Fanout), Fanout, organization_id).where(
        Fanout.kind == spec.name, Fanout.subject_id == subject_id
    )
    if for_update:
        stmt = stmt.with_for_update()
    found: Fanout | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return found


async def fanouts_of(
    session: AsyncSession,
    spec: FanoutSpec,
    organization_id: uuid.UUID,
    subject_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, Fanout]:
    """subject -> its fan-out (state and counts), for a page of subjects (one query)."""
    if not subject_ids:
        return {}
    stmt = scoped(select(Fanout), Fanout, organization_id).where(
        Fanout.kind == spec.name, Fanout.subject_id.in_(list(subject_ids))
    )
    rows = (await session.execute(stmt.execution_options(populate_existing=True))).scalars()
    return {row.subject_id: row for row in rows}


async def targets_of(
    session: AsyncSession,
    organization_id: uuid.UUID,
    fanout_id: uuid.UUID,
    *,
    state: TargetState | None = None,
) -> list[FanoutTarget]:
    """The targets of a fan-out (of one state), in target id order: each one's outcome."""
    stmt = scoped(select(FanoutTarget), FanoutTarget, organization_id).where(
        FanoutTarget.fanout_id == fanout_id
    )
    if state is not None:
        stmt = stmt.where(FanoutTarget.state == state.value)
    return list((await session.execute(stmt.order_by(FanoutTarget.target_id))).scalars())


async def _load(
    session: AsyncSession, organization_id: uuid.UUID, fanout_id: uuid.UUID, *, lock: bool = False
) -> Fanout | None:
    stmt = scoped(select(Fanout), Fanout, organization_id).where(Fanout.id == fanout_id)
    if lock:
        stmt = stmt.with_for_update()
    found: Fanout | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return found


async def _loaded(job: JobContext, *, lock: bool = False) -> Fanout:
    fanout = await _load(
        job.session, job.organization_id, uuid.UUID(str(job.payload["fanout_id"])), lock=lock
    )
    if fanout is None:
        raise PermanentJobError("the fan-out no longer exists")
    return fanout


# --- the plan job ----------------------------------------------------------------------------


async def _plan(spec: FanoutSpec, job: JobContext) -> dict[str, Any] | None:
    session = job.session
    fanout = await _loaded(job, lock=True)
    if fanout.state != FanoutState.QUEUED.value:
        return {"state": fanout.state}  # planned already, or cancelled before it was
    run = FanoutRun(job, fanout)
    targets = list({target.id: target for target in await spec.plan(run)}.values())
    size = spec.size(job.settings)
    rows = [
        {
            "organization_id": fanout.organization_id,
            "fanout_id": fanout.id,
            "target_id": target.id,
            "chunk": index // size,
            "data": _stored(target.data, "a target's data"),
            "state": TargetState.PENDING.value,
        }
        for index, target in enumerate(targets)
    ]
    if rows:
        # A Core insert names its organization in every row (not a query the guard scopes);
        # one statement per 5,000 targets on PostgreSQL, not one INSERT per target.
        await insert_rows(await session.connection(), _TARGETS, rows)
    chunks = math.ceil(len(rows) / size)
    now = utcnow()
    fanout.target_count = len(rows)
    fanout.chunk_count = chunks
    fanout.planned_at = now
    if chunks == 0:
        fanout.state = FanoutState.SETTLED.value
        fanout.settled_at = now
        await session.flush()
        if spec.settle is not None:
            await spec.settle(run)
        return {"targets": 0, "chunks": 0}
    fanout.state = FanoutState.RUNNING.value
    for chunk in range(chunks):
        await enqueue(
            session,
            spec.chunk_kind,
            {"fanout_id": fanout.id, "chunk": chunk},
            organization_id=fanout.organization_id,
            max_attempts=spec.max_attempts,
            dedupe_key=f"{spec.chunk_kind}:{fanout.subject_id}:{chunk}",
        )
    await session.flush()
    return {"targets": len(rows), "chunks": chunks}


# --- the chunk jobs --------------------------------------------------------------------------


async def _mark(
    session: AsyncSession,
    fanout: Fanout,
    chunk: int,
    marks: Sequence[tuple[Any, ...]],
    now: Any,
) -> None:
    """Settle the chunk's targets, ``(target, state, reason, outcome)`` each, in one statement
    (:func:`courier.core.bulk.update_rows`: ``UPDATE ... FROM unnest(...)`` on PostgreSQL, the
    same compiled and prepared statement for every chunk).

    The statement names the chunk: whatever plan the server keeps for it (a prepared
    statement's generic plan, chosen once, often while the table was nearly empty), its scan
    is bounded by ``ix_fanout_targets_chunk`` to this chunk's rows. Without it a plan that
    scans the fan-out's pending targets and joins them to the chunk's did so for every chunk
    (10,000 pending targets by 250: ~150 ms of server CPU per chunk in a 10,000-recipient
    multicast)."""
    stmt = (
        scoped(update(_TARGETS), FanoutTarget, fanout.organization_id)
        .where(
            _TARGETS.c.fanout_id == fanout.id,
            _TARGETS.c.chunk == chunk,
            _TARGETS.c.state == TargetState.PENDING.value,
        )
        .values(done_at=now)
    )
    await update_rows(
        await session.connection(),
        stmt,
        "target_id",
        [
            {"target_id": target, "state": state, "reason": reason, "outcome": outcome}
            for target, state, reason, outcome in marks
        ],
    )


async def _chunk(spec: FanoutSpec, job: JobContext) -> dict[str, Any] | None:
    session = job.session
    fanout = await _loaded(job)
    chunk = int(job.payload["chunk"])
    if fanout.state == FanoutState.CANCELLED.value:
        skipped = await _skip_pending(session, fanout, CANCELLED, now=utcnow(), chunk=chunk)
        await _count_chunk(session, fanout, delivered=0, skipped=skipped)
        return {"cancelled": skipped}
    targets = await _pending(session, fanout, chunk)
    run = FanoutRun(job, fanout)
    outcomes = await _deliver(spec, run, targets)
    now = utcnow()
    marks = []
    delivered = skipped = 0
    for target in targets:
        outcome = outcomes[target.id]
        if isinstance(outcome, Skipped):
            skipped += 1
            log.info(
                "fan-out target skipped",
                extra={
                    "fanout": spec.name,
                    "subject_id": str(fanout.subject_id),
                    "target_id": str(target.id),
                    "reason": outcome.reason,
                },
            )
        else:
            delivered += 1
        marks.append(
            (
                target.id,
                (
                    TargetState.SKIPPED.value
                    if isinstance(outcome, Skipped)
                    else TargetState.DELIVERED.value
                ),
                outcome.reason if isinstance(outcome, Skipped) else None,
                (
                    _stored(outcome.outcome, "an outcome")
                    if isinstance(outcome, Delivered)
                    else None
                ),
            )
        )
    if marks:
        await _mark(session, fanout, chunk, marks, now)
    if await _count_chunk(session, fanout, delivered=delivered, skipped=skipped):
        settled = await _load(session, fanout.organization_id, fanout.id)
        assert settled is not None
        if spec.settle is not None:
            await spec.settle(FanoutRun(job, settled))
    return {"delivered": delivered, "skipped": skipped}


def _stored(value: Mapping[str, Any] | None, what: str) -> dict[str, Any] | None:
    """As stored: a small JSON object (ids become strings), or None."""
    return None if value is None else normalise_result(dict(value), what)


async def _pending(session: AsyncSession, fanout: Fanout, chunk: int) -> list[Target]:
    """The chunk's pending targets, locked (PostgreSQL) until the chunk commits, so a cancel
    waits for the chunk instead of skipping targets it is delivering."""
    columns: Any = select(FanoutTarget.target_id, FanoutTarget.data)
    stmt = (
        scoped(columns, FanoutTarget, fanout.organization_id)
        .where(
            FanoutTarget.fanout_id == fanout.id,
            FanoutTarget.chunk == chunk,
            FanoutTarget.state == TargetState.PENDING.value,
        )
        .order_by(FanoutTarget.target_id)
        .with_for_update()
    )
    return [Target(ident, data) for ident, data in await session.execute(stmt)]


async def _deliver(
    spec: FanoutSpec, run: FanoutRun, targets: Sequence[Target]
) -> Mapping[uuid.UUID, Outcome]:
    if not targets:
        return {}
    if spec.deliver is not None:
        outcomes = await spec.deliver(run, targets)
    else:
        assert spec.deliver_one is not None
        outcomes = {target.id: await spec.deliver_one(run, target) for target in targets}
    for target in targets:
        outcome = outcomes.get(target.id)
        if not isinstance(outcome, Delivered | Skipped):
            raise TypeError(f"fan-out {spec.name!r}: no outcome for target {target.id}")
        if isinstance(outcome, Skipped) and not 1 <= len(outcome.reason) <= MAX_REASON:
            raise ValueError(f"fan-out {spec.name!r}: a reason is 1 to {MAX_REASON} characters")
    return outcomes


async def _skip_pending(
    session: AsyncSession,
    fanout: Fanout,
    reason: str,
    *,
    now: Any,
    chunk: int | None = None,
) -> int:
    """Skip the fan-out's (or one chunk's) pending targets with ``reason``; how many."""
    stmt = (
        scoped(update(FanoutTarget), FanoutTarget, fanout.organization_id)
        .where(
            FanoutTarget.fanout_id == fanout.id,
            FanoutTarget.state == TargetState.PENDING.value,
        )
        .values(state=TargetState.SKIPPED.value, reason=reason, done_at=now)
        .execution_options(synchronize_session=False)
    )
    if chunk is not None:
        stmt = stmt.where(FanoutTarget.chunk == chunk)
    result = await session.execute(stmt)
    count: int = result.rowcount  # type: ignore[attr-defined]
    return count


async def _count_chunk(
    session: AsyncSession, fanout: Fanout, *, delivered: int, skipped: int
) -> bool:
    """Count the chunk in one UPDATE (concurrent chunks queue on the row, none is lost); the
    last one settles a running fan-out. True if this one did."""
    last = and_(
        Fanout.chunks_done + 1 >= Fanout.chunk_count,
        Fanout.state == FanoutState.RUNNING.value,
    )
    now = utcnow()
    stmt = (
        scoped(update(Fanout), Fanout, fanout.organization_id)
        .where(Fanout.id == fanout.id)
        .values(
            delivered_count=Fanout.delivered_count + delivered,
            skipped_count=Fanout.skipped_count + skipped,
            chunks_done=Fanout.chunks_done + 1,
            state=case((last, FanoutState.SETTLED.value), else_=Fanout.state),
            settled_at=case((last, now), else_=Fanout.settled_at),
        )
        .returning(Fanout.state, Fanout.chunks_done, Fanout.chunk_count)
        .execution_options(synchronize_session=False)
    )
    state, done, count = (await session.execute(stmt)).one()
    return bool(state == FanoutState.SETTLED.value and done == count)
