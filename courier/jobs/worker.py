"""The worker: claims due jobs in batches, runs their handlers, retries failures, survives crashes.

Claiming. One statement claims up to ``job_claim_batch`` due jobs (highest priority, then
earliest ``run_at``): ``UPDATE jobs ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n)
RETURNING ...`` on PostgreSQL, so workers never wait on each other and never take the same job;
on SQLite every transaction starts with ``BEGIN IMMEDIATE`` (see :mod:`courier.core.db`), so the
same statement runs under the database's write lock. A worker runs ``concurrency`` handlers at
once; the jobs it claimed beyond its free slots wait in its own queue (by priority), leased.
How many it takes beyond its free slots follows how long its jobs have been taking: about
``PREFETCH_SECONDS`` of work, so a worker of short jobs claims them a hundred at a time and a
worker of long jobs only what it can start now (it never sits on jobs another worker could run).

Completing. A handler whose session holds changes is marked succeeded in that same transaction,
so its effects and "done" commit together (:meth:`JobContext.finish`). A handler that left
nothing to commit (it touched no table, or its steps committed everything) is marked succeeded
together with the other such jobs finished meanwhile: one ``UPDATE ... RETURNING id`` per batch,
fenced on the lease like every write about a job.

Leases. A claim lasts ``job_lease_seconds`` and is renewed while the worker holds the job
(waiting, running or waiting for its completion). A job whose worker died (``kill -9``, a lost
machine) is handed back to the queue when its lease expires, or marked failed if it has used
all its attempts. Every write about a job is fenced on ``lease_owner``: a worker that lost its
lease commits nothing.

Waking. PostgreSQL workers ``LISTEN courier_jobs`` on a dedicated connection and are woken by the
``NOTIFY`` of the enqueuing transaction; they also poll every ``job_poll_seconds`` in case a
notification was missed. SQLite workers poll; a worker in the enqueuing process is woken
directly after the commit.

Failures. A handler that raises is retried after a random delay of up to
``base * 2**attempt`` seconds (full jitter, capped), until ``max_attempts``; then the job is
``failed`` and stays visible (``GET /v1/jobs/?filter[state]=failed``,
``POST /v1/jobs/{id}/retry/``). Only that job: the others of its batch are not affected.

Stopping. SIGTERM or SIGINT: stop claiming, hand back the jobs not started, let running jobs
finish within ``job_shutdown_grace_seconds``, hand back the rest (state ``queued``, the
interrupted attempt not counted), mark the finished ones succeeded, exit 0. A second signal
stops at once.

Registration. Each worker registers itself as a replicator (``GET /v1/replicators/``) and
refreshes its ``last-poll-time`` as it loops; it removes itself when it stops cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import random
import signal
import socket
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import Table, any_, bindparam, case, delete, func, null, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.db import Database
from courier.core.observability import REGISTRY
from courier.core.tenancy import mark_tenant_tables, scoped, unscoped
from courier.core.time import utcnow
from courier.jobs.context import JobContext, LeaseLostError, PermanentJobError, normalise_result
from courier.jobs.outbox import CHANNEL, add_local_worker, configure, remove_local_worker
from courier.jobs.registry import HANDLERS, load_job_modules
from courier.models.job import Job, JobState
from courier.models.replicator import Replicator
from courier.providers.common import close_providers

log = logging.getLogger("courier.jobs")

CLAIM_REASON = "a worker claims due jobs of every organization"
REAP_REASON = "a worker hands back jobs whose worker stopped"
COMPLETE_REASON = "a worker marks the jobs it finished succeeded, in one statement"
RELEASE_REASON = "a worker hands back the jobs it claimed but did not start"
LEASE_REASON = "a worker renews the leases of its own jobs"
PRUNE_REASON = "a worker deletes finished jobs past their retention"
MAX_ERROR_LENGTH = 2000
PRUNE_INTERVAL_SECONDS = 300.0
PRUNE_BATCH = 1000
REPLICATOR_RETENTION = timedelta(days=1)
# A worker claims beyond its free slots about this many seconds of work at its recent pace
# (within job_claim_batch): short jobs come a hundred per statement, long ones one per free slot.
PREFETCH_SECONDS = 0.1
MEAN_WEIGHT = 0.2  # the recent pace: an exponential moving average of handler time, per kind
# The pace is that of the slowest kind run within this many seconds: a worker that runs long
# jobs too (a fan-out's chunks among short notifications) does not claim ahead of its slots.
PACE_MEMORY_SECONDS = 60.0
COMPLETION_BATCH = 500  # jobs marked succeeded per statement at most
COMPLETION_LINGER_SECONDS = 0.01  # how long a finished job may wait for others to complete with
LOST_LEASE_ERROR = "the worker running this job stopped before it finished (its lease expired)"

JOBS_FINISHED = Counter(
    "courier_jobs_total",
    "Job attempts finished, by kind and outcome (succeeded, retried, failed, lost, released)",
    ["kind", "outcome"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "courier_job_duration_seconds",
    "Time a job attempt ran, by kind",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300),
)


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Full jitter: a random wait between 0 and ``base * 2**attempt`` seconds, at most ``cap``."""
    ceiling = min(cap, base * 2 ** min(attempt, 32))
    return random.uniform(0, ceiling)


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


@dataclass(slots=True)
class ClaimedJob:
    """A job this worker holds: the columns it needs to run it, as the claim returned them."""

    id: uuid.UUID
    organization_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempts: int  # counting this attempt
    max_attempts: int
    priority: int
    run_at: datetime

    @property
    def order(self) -> tuple[int, datetime]:
        return (-self.priority, self.run_at)


_jobs: Table = Job.__table__  # type: ignore[assignment]  # Core: no ORM objects per row
_CLAIMED = (
    _jobs.c.id,
    _jobs.c.organization_id,
    _jobs.c.kind,
    _jobs.c.payload,
    _jobs.c.attempts,
    _jobs.c.max_attempts,
    _jobs.c.priority,
    _jobs.c.run_at,
)


class Worker:
    """Claims and runs jobs of the kinds registered in this process (or the given ones)."""

    classpath = "courier.jobs.worker.Worker"

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        concurrency: int = 4,
        kinds: Collection[str] | None = None,
        register: bool = True,
        listen: bool = True,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.database = database
        self.settings = settings
        self.concurrency = concurrency
        self.id = uuid.uuid4()
        self.owner = str(self.id)  # lease_owner of the jobs it claims: its replicator id
        self.processed = 0
        self.started_at = utcnow()
        self._only_kinds = frozenset(kinds) if kinds is not None else None
        self._register = register
        self._registered = False
        self._listen = listen and not database.is_sqlite
        self._wake = asyncio.Event()
        self._force = asyncio.Event()
        self._stopping = False
        # The jobs this worker holds under its lease: claimed and waiting their turn (by
        # priority), running, and finished but not yet marked succeeded (batched completion).
        self._ready: list[ClaimedJob] = []
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._completing: dict[uuid.UUID, tuple[ClaimedJob, dict[str, Any] | None]] = {}
        self._completions = asyncio.Event()
        self._completion_lock = asyncio.Lock()
        # Recent handler time by kind (moving average, when last seen), for the prefetch.
        self._pace: dict[str, tuple[float, float]] = {}
        self._last_maintenance = float("-inf")
        self._last_prune = float("-inf")

    # --- control ------------------------------------------------------------------------

    @property
    def kinds(self) -> list[str]:
        known = set(HANDLERS)
        return sorted(known if self._only_kinds is None else known & self._only_kinds)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def held(self) -> list[uuid.UUID]:
        """The jobs under this worker's lease: waiting, running, or waiting for completion."""
        return [job.id for job in self._ready] + list(self._running) + list(self._completing)

    @property
    def idle(self) -> bool:
        return not (self._ready or self._running or self._completing)

    @property
    def capacity(self) -> int:
        """How many jobs this worker holds at most (running or waiting to start): its free
        slots, plus about ``PREFETCH_SECONDS`` of work at the pace of its slowest recent kind,
        within the batch."""
        recent = time.monotonic() - PACE_MEMORY_SECONDS
        paces = [mean for mean, seen in self._pace.values() if seen >= recent]
        if not paces:
            return self.concurrency  # nothing known yet: its free slots only
        prefetch = int(self.concurrency * PREFETCH_SECONDS / max(max(paces), 1e-6))
        batch = self.settings.job_claim_batch
        return max(self.concurrency, min(batch, self.concurrency + prefetch))

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming and finish up; a second call interrupts the running jobs at once."""
        if self._stopping:
            self._force.set()
        self._stopping = True
        self._wake.set()

    # --- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Claim and run jobs until :meth:`stop`; then finish or hand back running jobs."""
        add_local_worker(self)
        helpers = [
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._complete_forever()),
        ]
        if self._listen:
            helpers.append(asyncio.create_task(self._listen_for_jobs()))
        log.info(
            "job worker started",
            extra={"worker": self.owner, "pid": os.getpid(), "concurrency": self.concurrency},
        )
        try:
            while not self._stopping:
                try:
                    claimed, asked = await self._claim_and_start(maintain=self._maintenance_due())
                except Exception:
                    log.exception("job worker could not reach the database; retrying")
                    claimed, asked = 0, 0
                if self._stopping:
                    break
                if asked == 0 or claimed < asked:  # no room, or the queue has no more due
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wake.wait(), timeout=self.settings.job_poll_seconds
                        )
        finally:
            await self._drain()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._deregister()
            remove_local_worker(self)
            log.info("job worker stopped", extra={"worker": self.owner, "jobs": self.processed})

    async def run_until_idle(self, *, horizon: float = 0.0, give_up_after: float = 60.0) -> int:
        """Run due jobs until none is left; return how many attempts ran.

        ``horizon``: also wait for jobs (e.g. retries) that fall due within that many seconds.
        For tests and scripts; services use :meth:`run`.
        """
        add_local_worker(self)
        completer = asyncio.create_task(self._complete_forever())
        deadline = time.monotonic() + give_up_after
        try:
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"jobs still pending after {give_up_after} seconds")
                claimed, asked = await self._claim_and_start(maintain=self._maintenance_due())
                if claimed == 0 and self.idle:
                    due = await self._next_due()
                    if due is None:
                        return self.processed
                    wait = (due - utcnow()).total_seconds()
                    if wait > horizon:
                        return self.processed
                    await asyncio.sleep(max(0.0, min(wait, 1.0)) + 0.01)
                    continue
                if asked == 0 or claimed < asked:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=0.2)
        finally:
            await self._drain()
            completer.cancel()
            await asyncio.gather(completer, return_exceptions=True)
            remove_local_worker(self)

    def _maintenance_due(self) -> bool:
        return time.monotonic() - self._last_maintenance >= self.settings.job_poll_seconds

    async def _claim_and_start(self, *, maintain: bool) -> tuple[int, int]:
        """One round: claim what there is room for (one statement), start what may start.

        Returns (claimed, asked): a full claim (claimed == asked) means more may be due.
        """
        self._wake.clear()
        self._start_ready()
        kinds = self.kinds
        capacity = self.capacity
        room = capacity - len(self._running) - len(self._ready) - len(self._completing)
        # Claim in batches: with jobs waiting in hand, wait until half the prefetch is free.
        threshold = max(1, (capacity - self.concurrency) // 2)
        asked = 0
        if kinds and not self._stopping and room >= threshold:
            asked = min(room, self.settings.job_claim_batch)
        if not maintain and asked == 0:
            return 0, 0
        now = utcnow()
        async with self.database.sessionmaker() as session:
            if not self.database.is_sqlite:
                # A claim need not wait for its WAL flush: if the server crashed before, the job
                # would simply be queued again; and the job's own "succeeded" commit flushes it.
                await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            if maintain:
                self._last_maintenance = time.monotonic()
                await self._maintain(session, now)
            jobs = await self._claim(session, now, asked, kinds) if asked else []
            await session.commit()
        if jobs:
            self._ready.extend(jobs)
            self._ready.sort(key=lambda job: job.order)
            self._start_ready()
        return len(jobs), asked

    async def _claim(
        self, session: AsyncSession, now: datetime, limit: int, kinds: list[str]
    ) -> list[ClaimedJob]:
        """Claim up to ``limit`` due jobs in one statement."""
        due = (
            select(_jobs.c.id)
            .where(
                _jobs.c.state == JobState.QUEUED.value,
                _jobs.c.run_at <= now,
                _jobs.c.kind.in_(kinds),
            )
            .order_by(_jobs.c.priority.desc(), _jobs.c.run_at)
            .limit(limit)
            .with_for_update(skip_locked=True)  # nothing on SQLite: BEGIN IMMEDIATE holds the lock
        )
        target: Any
        if self.database.is_sqlite:
            target = _jobs.c.id.in_(due.scalar_subquery())
        else:
            # = ANY(ARRAY(subquery)): the subquery runs once (an InitPlan). Written IN
            # (subquery), PostgreSQL may rescan it for each row of a semi-join, and each rescan
            # skips the rows this very statement just locked and takes the next ones: the
            # LIMIT no longer holds (a worker once claimed the whole queue that way).
            target = _jobs.c.id == any_(func.array(due.scalar_subquery()))
        claim = (
            update(_jobs)
            # The state check again: should a row ever be claimed twice, the second claim
            # finds it running (PostgreSQL re-checks the condition after the row lock).
            .where(target, _jobs.c.state == JobState.QUEUED.value)
            .values(
                state=JobState.RUNNING.value,
                lease_owner=self.owner,
                lease_expires_at=now + timedelta(seconds=self.settings.job_lease_seconds),
                attempts=_jobs.c.attempts + 1,
                started_at=now,
            )
            .returning(*_CLAIMED)
        )
        rows = (await session.execute(unscoped(claim, CLAIM_REASON))).all()
        jobs = [
            ClaimedJob(
                id=uuid.UUID(str(row.id)),  # a plain UUID whatever the driver returns
                organization_id=uuid.UUID(str(row.organization_id)),
                kind=row.kind,
                payload=dict(row.payload or {}),
                attempts=row.attempts,
                max_attempts=row.max_attempts,
                priority=row.priority,
                run_at=row.run_at,
            )
            for row in rows
        ]
        jobs.sort(key=lambda job: job.order)
        return jobs

    def _start_ready(self) -> None:
        """Start waiting jobs, highest priority first, while a slot is free."""
        while self._ready and len(self._running) < self.concurrency and not self._stopping:
            job = self._ready.pop(0)
            task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
            self._running[job.id] = task
            task.add_done_callback(functools.partial(self._finished, job.id))

    def _finished(self, ident: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._running.pop(ident, None)
        self._start_ready()
        self._wake.set()

    async def _next_due(self) -> datetime | None:
        kinds = self.kinds
        if not kinds:
            return None
        stmt = select(func.min(Job.run_at)).where(
            Job.state == JobState.QUEUED.value, Job.kind.in_(kinds)
        )
        async with self.database.sessionmaker() as session:
            value = (await session.execute(unscoped(stmt, CLAIM_REASON))).scalar_one_or_none()
            await session.commit()
        if value is None:
            return None
        due = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return due if due.tzinfo is not None else due.replace(tzinfo=UTC)

    # --- running one job ----------------------------------------------------------------

    async def _execute(self, job: ClaimedJob) -> None:
        registration = HANDLERS[job.kind]
        started = time.perf_counter()
        outcome = "succeeded"
        deferred: dict[str, Any] | None = None
        defer = False
        try:
            ctx = JobContext(
                job_id=job.id,
                organization_id=job.organization_id,
                kind=job.kind,
                payload=dict(job.payload),
                attempt=job.attempts,
                max_attempts=job.max_attempts,
                settings=self.settings,
                _owner=self.owner,
                _sessions=self.database.sessionmaker,  # opened if the handler uses it
            )
            try:
                result = normalise_result(await registration.handler(ctx))
                if ctx.has_pending_work():
                    await ctx.finish(result)  # its effects and "succeeded" in one commit
                else:
                    defer, deferred = True, result
            finally:
                await ctx.close()
        except LeaseLostError:
            outcome = "lost"
            log.warning("job lease lost", extra={"job_id": str(job.id), "kind": job.kind})
        except asyncio.CancelledError:
            defer = False
            outcome = "released"
            await self._release(job)
            raise
        except Exception as exc:
            defer = False
            outcome = await self._record_failure(job, exc)
        finally:
            seconds = time.perf_counter() - started
            JOB_SECONDS.labels(job.kind).observe(seconds)
            known = self._pace.get(job.kind)
            mean = seconds if known is None else known[0] + MEAN_WEIGHT * (seconds - known[0])
            self._pace[job.kind] = (mean, time.monotonic())
            if defer:
                # Nothing of its own to commit: marked succeeded with the others of its batch.
                self._completing[job.id] = (job, deferred)
                self._completions.set()
            else:
                self.processed += 1
                JOBS_FINISHED.labels(job.kind, outcome).inc()

    async def _complete_forever(self) -> None:
        """Mark finished jobs succeeded, all those finished meanwhile in one statement."""
        while True:
            await self._completions.wait()
            # Linger a moment while jobs are still running or waiting: the jobs of a claimed
            # batch then complete together (one commit, one WAL flush, instead of one each).
            if (self._running or self._ready) and len(self._completing) < COMPLETION_BATCH:
                await asyncio.sleep(COMPLETION_LINGER_SECONDS)
            self._completions.clear()
            try:
                await self._complete_batch()
            except Exception:
                log.exception("could not mark finished jobs succeeded; retrying")
                await asyncio.sleep(1.0)
                self._completions.set()

    async def _complete_batch(self) -> None:
        async with self._completion_lock:
            batch = list(self._completing.values())[:COMPLETION_BATCH]
            if not batch:
                return
            done = await self._mark_succeeded(batch)
            for job, _result in batch:
                self._completing.pop(job.id, None)
                self.processed += 1
                if job.id in done:
                    JOBS_FINISHED.labels(job.kind, "succeeded").inc()
                else:
                    JOBS_FINISHED.labels(job.kind, "lost").inc()
                    log.warning("job lease lost", extra={"job_id": str(job.id), "kind": job.kind})
            if self._completing:
                self._completions.set()
        self._wake.set()

    async def _mark_succeeded(
        self, batch: list[tuple[ClaimedJob, dict[str, Any] | None]]
    ) -> set[uuid.UUID]:
        """One statement for the batch, fenced on the lease; the ids it marked."""
        results = {job.id: result for job, result in batch if result is not None}
        result_value: Any = None
        if results:
            result_type = _jobs.c.result.type
            result_value = case(
                {key: bindparam(None, value, type_=result_type) for key, value in results.items()},
                value=_jobs.c.id,
                else_=null(),
            )
        stmt = (
            update(_jobs)
            .where(
                _jobs.c.id.in_([job.id for job, _result in batch]),
                _jobs.c.lease_owner == self.owner,
                _jobs.c.state == JobState.RUNNING.value,
            )
            .values(
                state=JobState.SUCCEEDED.value,
                finished_at=utcnow(),
                result=result_value,
                lease_owner=None,
                lease_expires_at=None,
            )
            .returning(_jobs.c.id)
        )
        async with self.database.sessionmaker() as session:
            rows = (await session.execute(unscoped(stmt, COMPLETE_REASON))).scalars().all()
            await session.commit()
        return {uuid.UUID(str(ident)) for ident in rows}

    async def _record_failure(self, job: ClaimedJob, exc: Exception) -> str:
        permanent = isinstance(exc, PermanentJobError)
        exhausted = job.attempts >= job.max_attempts
        now = utcnow()
        values: dict[str, Any] = {
            "last_error": describe_error(exc),
            "lease_owner": None,
            "lease_expires_at": None,
        }
        delay = 0.0
        if permanent or exhausted:
            values.update(state=JobState.FAILED.value, finished_at=now)
            outcome = "failed"
        else:
            delay = backoff_seconds(
                job.attempts,
                self.settings.job_backoff_base_seconds,
                self.settings.job_backoff_max_seconds,
            )
            values.update(state=JobState.QUEUED.value, run_at=now + timedelta(seconds=delay))
            outcome = "retried"
        log.warning(
            "job attempt failed",
            exc_info=not permanent,
            extra={
                "job_id": str(job.id),
                "kind": job.kind,
                "attempt": job.attempts,
                "outcome": outcome,
                "error_type": type(exc).__name__,
            },
        )
        if not await self._update_held(job, values):
            return "lost"
        if outcome == "retried" and delay < self.settings.job_poll_seconds:
            asyncio.get_running_loop().call_later(delay, self.wake)
        return outcome

    async def _release(self, job: ClaimedJob) -> None:
        """Hand an interrupted job back to the queue; the interrupted attempt does not count."""
        values = {
            "state": JobState.QUEUED.value,
            "attempts": Job.attempts - 1,
            "run_at": utcnow(),
            "lease_owner": None,
            "lease_expires_at": None,
        }
        try:
            if await self._update_held(job, values):
                log.info("job handed back", extra={"job_id": str(job.id), "kind": job.kind})
        except Exception:
            log.exception("could not hand back job", extra={"job_id": str(job.id)})

    async def _release_ready(self) -> None:
        """Hand back, in one statement, the jobs claimed but not started (their attempt not
        counted, their place in the queue kept)."""
        ready, self._ready = self._ready, []
        if not ready:
            return
        stmt = unscoped(
            update(_jobs)
            .where(
                _jobs.c.id.in_([job.id for job in ready]),
                _jobs.c.lease_owner == self.owner,
                _jobs.c.state == JobState.RUNNING.value,
            )
            .values(
                state=JobState.QUEUED.value,
                attempts=_jobs.c.attempts - 1,
                lease_owner=None,
                lease_expires_at=None,
            ),
            RELEASE_REASON,
        )
        try:
            async with self.database.sessionmaker() as session:
                await session.execute(stmt)
                await session.commit()
            log.info("jobs not started handed back", extra={"jobs": len(ready)})
        except Exception:
            log.exception("could not hand back the jobs not started")

    async def _update_held(self, job: ClaimedJob, values: dict[str, Any]) -> bool:
        stmt = scoped(
            update(Job).where(
                Job.id == job.id,
                Job.lease_owner == self.owner,
                Job.state == JobState.RUNNING.value,
            ),
            Job,
            job.organization_id,
        ).values(**values)
        async with self.database.sessionmaker() as session:
            held = await session.execute(stmt.execution_options(synchronize_session=False))
            found = bool(held.rowcount)  # type: ignore[attr-defined]
            await session.commit()
        return found

    async def _drain(self) -> None:
        """Hand back the jobs not started; let running jobs finish within the grace period,
        then interrupt and hand them back; mark the finished ones succeeded."""
        await self._release_ready()
        deadline = time.monotonic() + self.settings.job_shutdown_grace_seconds
        while self._running and not self._force.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.wait(list(self._running.values()), timeout=min(remaining, 0.2))
        pending = list(self._running.values())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self._release_ready()  # any started meanwhile by a finishing task: none expected
        for _try in range(3):
            if not self._completing:
                break
            try:
                await self._complete_batch()
            except Exception:
                log.exception("could not mark finished jobs succeeded while stopping")
                await asyncio.sleep(0.5)

    # --- background duties --------------------------------------------------------------

    async def _maintain(self, session: AsyncSession, now: datetime) -> None:
        await self._reap(session, now)
        if self._register:
            polled = await session.execute(
                update(Replicator).where(Replicator.id == self.id).values(last_poll_at=now)
            )
            if not polled.rowcount:  # type: ignore[attr-defined]
                # First poll (or the row was lost, e.g. pruned after a long pause): register.
                session.add(
                    Replicator(
                        id=self.id,
                        classpath=self.classpath,
                        hostname=socket.gethostname()[:255],
                        pid=os.getpid(),
                        concurrency=self.concurrency,
                        created_at=self.started_at,
                        last_poll_at=now,
                    )
                )
                await session.flush()
            self._registered = True
        if time.monotonic() - self._last_prune >= PRUNE_INTERVAL_SECONDS:
            self._last_prune = time.monotonic()
            await self._prune(session, now)

    async def _reap(self, session: AsyncSession, now: datetime) -> None:
        """Jobs whose lease expired: back to the queue, or failed if out of attempts."""
        expired = (
            select(Job)
            .where(Job.state == JobState.RUNNING.value, Job.lease_expires_at < now)
            .limit(500)
            .with_for_update(skip_locked=True)
        )
        rows = list((await session.execute(unscoped(expired, REAP_REASON))).scalars())
        exhausted = [job.id for job in rows if job.attempts >= job.max_attempts]
        again = [job.id for job in rows if job.attempts < job.max_attempts]
        common = {"lease_owner": None, "lease_expires_at": None, "last_error": LOST_LEASE_ERROR}
        if again:
            stmt = update(Job).where(Job.id.in_(again))
            stmt = stmt.values(state=JobState.QUEUED.value, run_at=now, **common)
            await session.execute(
                unscoped(stmt, REAP_REASON).execution_options(synchronize_session=False)
            )
        if exhausted:
            stmt = update(Job).where(Job.id.in_(exhausted))
            stmt = stmt.values(state=JobState.FAILED.value, finished_at=now, **common)
            await session.execute(
                unscoped(stmt, REAP_REASON).execution_options(synchronize_session=False)
            )
        if rows:
            log.warning(
                "jobs of a stopped worker handed back",
                extra={"requeued": len(again), "failed": len(exhausted)},
            )

    async def _prune(self, session: AsyncSession, now: datetime) -> None:
        """Delete finished jobs past their retention, and registrations of long-dead workers."""
        cutoff = now - timedelta(days=self.settings.job_retention_days)
        old = (
            select(Job.id)
            .where(
                Job.state.in_([JobState.SUCCEEDED.value, JobState.CANCELLED.value]),
                Job.finished_at < cutoff,
            )
            .limit(PRUNE_BATCH)
        )
        ids = list((await session.execute(unscoped(old, PRUNE_REASON))).scalars())
        if ids:
            stmt = delete(Job).where(Job.id.in_(ids))
            await session.execute(
                unscoped(stmt, PRUNE_REASON).execution_options(synchronize_session=False)
            )
        await session.execute(
            delete(Replicator).where(Replicator.last_poll_at < now - REPLICATOR_RETENTION)
        )

    async def _heartbeat(self) -> None:
        """Renew the leases of this worker's running jobs a few times per lease."""
        interval = self.settings.job_lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            ids = self.held
            if not ids:
                continue
            stmt = unscoped(
                update(Job)
                .where(
                    Job.id.in_(ids),
                    Job.lease_owner == self.owner,
                    Job.state == JobState.RUNNING.value,
                )
                .values(
                    lease_expires_at=utcnow() + timedelta(seconds=self.settings.job_lease_seconds)
                ),
                LEASE_REASON,
            )
            try:
                async with self.database.sessionmaker() as session:
                    await session.execute(stmt.execution_options(synchronize_session=False))
                    await session.commit()
            except Exception:
                log.exception("could not renew job leases")

    async def _listen_for_jobs(self) -> None:
        """LISTEN on a dedicated connection; reconnect when it drops (polling covers the gap)."""
        import asyncpg  # type: ignore[import-untyped]

        url = make_url(self.settings.resolved_database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while True:
            try:
                connection = await asyncpg.connect(dsn)
            except Exception:
                log.warning("job worker could not open its LISTEN connection; polling")
                await asyncio.sleep(self.settings.job_poll_seconds * 5)
                continue
            closed = asyncio.Event()
            try:
                connection.add_termination_listener(lambda _c, done=closed: done.set())
                await connection.add_listener(CHANNEL, lambda *_args: self.wake())
                self.wake()  # anything enqueued while we were not listening
                await closed.wait()
                log.warning("job worker lost its LISTEN connection; reconnecting")
            except Exception:
                log.exception("job worker LISTEN failed")
                await asyncio.sleep(self.settings.job_poll_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)

    async def _deregister(self) -> None:
        if not self._registered:
            return
        try:
            async with self.database.sessionmaker() as session:
                await session.execute(delete(Replicator).where(Replicator.id == self.id))
                await session.commit()
            self._registered = False
        except Exception:
            log.exception("could not remove the worker's registration")


async def run_until_idle(
    database: Database,
    settings: Settings,
    *,
    kinds: Collection[str] | None = None,
    concurrency: int = 1,
    horizon: float = 0.0,
    give_up_after: float = 60.0,
) -> int:
    """Run due jobs in this process until none is left (tests, scripts); return the count.

    ``kinds`` limits the kinds run (default: every registered kind); ``horizon`` also waits for
    retries falling due within that many seconds.
    """
    worker = Worker(database, settings, concurrency=concurrency, kinds=kinds, register=False)
    return await worker.run_until_idle(horizon=horizon, give_up_after=give_up_after)


def install_embedded_worker(app: Any) -> None:
    """Run one worker inside ``courier serve`` when ``run_worker`` is set (the default)."""
    settings: Settings = app.state.settings
    configure(settings)
    if not (settings.run_worker and app.state.start_background):
        return

    async def start(app: Any) -> None:
        load_job_modules(settings)
        worker = Worker(app.state.database, settings, concurrency=settings.job_concurrency)
        app.state.job_worker = worker
        app.state.job_worker_task = asyncio.create_task(worker.run(), name="embedded-worker")

    async def stop(app: Any) -> None:
        worker: Worker | None = getattr(app.state, "job_worker", None)
        if worker is None:
            return
        worker.stop()
        await app.state.job_worker_task

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)


def run_worker_process(settings: Settings, concurrency: int = 4) -> int:
    """``courier worker``: run one worker until SIGTERM or SIGINT; the exit status."""
    from courier.core.observability import configure_logging

    configure_logging(settings.log_level)
    configure(settings)
    modules = load_job_modules(settings)
    mark_tenant_tables()
    log.info("job modules loaded", extra={"modules": modules, "kinds": sorted(HANDLERS)})
    # What is loaded by now lives as long as the process: kept out of the collector's sight, so
    # the full collections that a fan-out chunk's many short-lived objects trigger do not walk
    # it each time (a fifth of a chunk's time in bench/multicast.py's profile).
    gc.collect()
    gc.freeze()
    return asyncio.run(_serve_worker(settings, concurrency))


async def _serve_worker(settings: Settings, concurrency: int) -> int:
    database = Database(settings)
    worker = Worker(database, settings, concurrency=concurrency)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    try:
        await worker.run()
    finally:
        try:
            await close_providers(settings)
        finally:
            await database.dispose()
    return 0
