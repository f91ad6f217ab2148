"""Batched claims and completions: one statement claims many due jobs, one marks many done.

Every guarantee of the one-at-a-time worker still holds: two workers never take the same job,
a batch whose lease expired is taken up again (and its first worker commits nothing about it),
a handler that fails is retried on its own, and a handler's database effects still commit with
its "succeeded" (only jobs that left nothing to commit are completed together).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text, update

from courier.config import Settings
from courier.core.db import Database, commit
from courier.core.tenancy import unscoped
from courier.core.time import utcnow
from courier.jobs import Job, JobContext, enqueue, job_handler
from courier.jobs.worker import LOST_LEASE_ERROR, ClaimedJob, Worker
from tests.conftest import Org, make_settings
from tests.jobs_fixture import create_test_tables, record_effect

NOOP = "batch.noop"
WRITE = "batch.write"
FAIL_ONCE = "batch.fail-once"
SLOWISH = "batch.slowish"


@job_handler(NOOP)
async def noop(job: JobContext) -> dict[str, Any] | None:
    return {"n": job.payload["n"], "attempt": job.attempt}


@job_handler(WRITE)
async def write(job: JobContext) -> dict[str, Any] | None:
    await record_effect(job)  # commits with "succeeded", in the job's own transaction
    return None


@job_handler(FAIL_ONCE)
async def fail_once(job: JobContext) -> dict[str, Any] | None:
    if job.payload.get("fail") and job.attempt == 1:
        raise RuntimeError("fails on its first attempt")
    return {"n": job.payload["n"]}


@job_handler(SLOWISH)
async def slowish(job: JobContext) -> dict[str, Any] | None:
    await asyncio.sleep(0.3)
    return None


@pytest.fixture(scope="module")
async def database(app: Any) -> AsyncIterator[Database]:
    db: Database = app.state.database
    await create_test_tables(db.engine)
    yield db


@pytest.fixture
def fast(database_url: str, data_dir: Path) -> Settings:
    return make_settings(
        database_url, data_dir, job_backoff_base_seconds=0.01, job_backoff_max_seconds=0.05
    )


@contextmanager
def job_updates(database: Database) -> Iterator[list[str]]:
    """The UPDATE statements on the jobs table issued meanwhile (any connection of the pool)."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE JOBS"):
            seen.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", listen)


def claims(statements: list[str]) -> int:
    return sum("started_at" in s for s in statements)


def completions(statements: list[str]) -> int:
    return sum("finished_at" in s and "state" in s for s in statements)


async def add_jobs(
    database: Database, org: Org, kind: str, payloads: list[dict[str, Any]], **kw: Any
) -> list[uuid.UUID]:
    async with database.sessionmaker() as session:
        jobs = [
            await enqueue(session, kind, payload, organization_id=uuid.UUID(org.id), **kw)
            for payload in payloads
        ]
        await commit(session)
    return [job.id for job in jobs]


async def jobs_by_id(database: Database, ids: list[uuid.UUID]) -> dict[uuid.UUID, Job]:
    async with database.sessionmaker() as session:
        stmt = unscoped(select(Job).where(Job.id.in_(ids)), "tests read their jobs")
        return {job.id: job for job in (await session.execute(stmt)).scalars()}


async def claim(worker: Worker, limit: int, kinds: list[str]) -> list[ClaimedJob]:
    """One claim round of ``worker`` for ``limit`` jobs, in a transaction of its own."""
    async with worker.database.sessionmaker() as session:
        claimed = await worker._claim(session, utcnow(), limit, kinds)
        await session.commit()
    return claimed


async def effect_counts(database: Database, ids: list[uuid.UUID]) -> dict[str, int]:
    wanted = {str(i) for i in ids}
    async with database.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT job_id FROM job_test_effects"))).all()
    counts: dict[str, int] = {}
    for (job,) in rows:
        if str(job) in wanted:
            counts[str(job)] = counts.get(str(job), 0) + 1
    return counts


# --- tests -----------------------------------------------------------------------------------


async def test_one_statement_claims_a_batch_in_priority_order(
    settings: Settings, database: Database, org: Org
) -> None:
    low = await add_jobs(database, org, NOOP, [{"n": n} for n in range(20)], priority=-1)
    high = await add_jobs(database, org, NOOP, [{"n": n} for n in range(5)], priority=5)
    later = await add_jobs(database, org, NOOP, [{"n": 99}], run_at=utcnow() + timedelta(hours=1))
    worker = Worker(database, settings, concurrency=1, kinds=[NOOP], register=False)
    with job_updates(database) as seen:
        claimed = await claim(worker, 10, [NOOP])
    assert len(seen) == 1  # the whole batch in one statement
    assert len(claimed) == 10  # and no more than asked
    assert [job.id for job in claimed[:5]] == high  # highest priority first, then run_at
    with job_updates(database) as seen:
        claimed += await claim(worker, 100, [NOOP])
    assert len(seen) == 1
    assert len(claimed) == 25
    assert {job.id for job in claimed} == set(high) | set(low)
    rows = await jobs_by_id(database, high + low + later)
    for ident in high + low:
        assert (rows[ident].state, rows[ident].lease_owner, rows[ident].attempts) == (
            "running", worker.owner, 1,
        )  # fmt: skip
        assert rows[ident].lease_expires_at is not None
    assert rows[later[0]].state == "queued"  # not due yet

    # Stopping hands back, in one statement, the jobs claimed but not started: the attempt
    # not counted, the place in the queue kept.
    worker._ready = claimed
    with job_updates(database) as seen:
        await worker._release_ready()
    assert len(seen) == 1
    rows = await jobs_by_id(database, high + low)
    assert {(j.state, j.attempts, j.lease_owner) for j in rows.values()} == {("queued", 0, None)}

    # Run them, and 35 more: a few claim and completion statements, not one of each per job
    # (among the claims, the empty ones of the end, when the worker finds the queue drained).
    more = await add_jobs(database, org, NOOP, [{"n": n} for n in range(20, 55)])
    with job_updates(database) as seen:
        assert await worker.run_until_idle() == 60
    assert claims(seen) >= 2 and completions(seen) >= 1
    assert claims(seen) + completions(seen) <= 20, [s[:50] for s in seen]
    rows = await jobs_by_id(database, high + low + more)
    for ident, n in zip(high + low + more, [*range(5), *range(55)], strict=True):
        job = rows[ident]
        assert (job.state, job.attempts, job.result) == ("succeeded", 1, {"n": n, "attempt": 1})
        assert (job.lease_owner, job.lease_expires_at) == (None, None)
        assert job.finished_at is not None
    async with database.sessionmaker() as session:
        stmt = unscoped(update(Job).where(Job.id.in_(later)), "tests tidy up")
        await session.execute(stmt.values(state="cancelled"))
        await session.commit()


async def test_two_workers_never_claim_the_same_job(
    settings: Settings, database: Database, org: Org
) -> None:
    ids = await add_jobs(database, org, NOOP, [{"n": n} for n in range(120)])
    # Each worker with a pool of its own: on PostgreSQL their claims run truly at once.
    other = Database(settings)
    try:
        first = Worker(database, settings, concurrency=2, kinds=[NOOP, WRITE], register=False)
        second = Worker(other, settings, concurrency=2, kinds=[NOOP, WRITE], register=False)

        async def claim_all(worker: Worker) -> list[uuid.UUID]:
            taken: list[uuid.UUID] = []
            while batch := await claim(worker, 7, [NOOP]):
                taken += [job.id for job in batch]
                await asyncio.sleep(0)
            return taken

        a, b = await asyncio.gather(claim_all(first), claim_all(second))
        assert not set(a) & set(b)
        assert len(a) == len(set(a)) and len(b) == len(set(b))
        assert set(a) | set(b) == set(ids)
        rows = await jobs_by_id(database, ids)
        owners = {rows[i].lease_owner for i in a} | {rows[i].lease_owner for i in b}
        assert owners <= {first.owner, second.owner}
        assert {rows[i].attempts for i in ids} == {1}

        # And when they run: every effect exactly once, though both work at once.
        writes = await add_jobs(database, org, WRITE, [{}] * 80)
        ran = await asyncio.gather(first.run_until_idle(), second.run_until_idle())
        assert sum(ran) >= 80
        assert await effect_counts(database, writes) == {str(i): 1 for i in writes}
        rows = await jobs_by_id(database, writes)
        assert {(j.state, j.attempts) for j in rows.values()} == {("succeeded", 1)}
    finally:
        await other.dispose()
        async with database.sessionmaker() as session:
            stmt = unscoped(update(Job).where(Job.id.in_(ids)), "tests tidy up")
            await session.execute(stmt.values(state="cancelled", lease_owner=None))
            await session.commit()


async def test_a_batch_whose_lease_expired_is_taken_up_again(
    settings: Settings, database: Database, org: Org
) -> None:
    ids = await add_jobs(database, org, NOOP, [{"n": n} for n in range(10)])
    stalled = Worker(database, settings, concurrency=2, kinds=[NOOP], register=False)
    batch = await claim(stalled, 10, [NOOP])
    assert {job.id for job in batch} == set(ids)
    # The worker stalls past its lease (or died): the leases run out.
    async with database.sessionmaker() as session:
        stmt = unscoped(update(Job).where(Job.id.in_(ids)), "tests expire leases")
        await session.execute(stmt.values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()

    # Another worker hands them back to the queue and takes them, in a batch of its own.
    rescuer = Worker(database, settings, concurrency=2, kinds=[NOOP], register=False)
    async with database.sessionmaker() as session:
        await rescuer._reap(session, utcnow())
        await session.commit()
    rescued = await claim(rescuer, 10, [NOOP])
    assert {job.id for job in rescued} == set(ids)

    # The stalled worker comes back and finishes its batch: its completion is fenced off.
    for job in batch:
        stalled._completing[job.id] = (job, {"stale": True})
    with job_updates(database) as seen:
        await stalled._complete_batch()
    assert completions(seen) == 1
    assert not stalled._completing and stalled.processed == 10
    rows = await jobs_by_id(database, ids)
    assert [(j.state, j.lease_owner, j.result) for j in rows.values()] == [
        ("running", rescuer.owner, None)
    ] * 10

    # The new owner runs them to the end.
    rescuer._ready = rescued
    assert await rescuer.run_until_idle() == 10
    rows = await jobs_by_id(database, ids)
    for n, ident in enumerate(ids):
        job = rows[ident]
        assert (job.state, job.attempts, job.last_error) == ("succeeded", 2, LOST_LEASE_ERROR)
        assert job.result == {"n": n, "attempt": 2}


async def test_a_failure_in_a_batch_retries_only_that_job(
    fast: Settings, database: Database, org: Org
) -> None:
    payloads = [{"n": n, "fail": n == 3} for n in range(12)]
    ids = await add_jobs(database, org, FAIL_ONCE, payloads)
    writes = await add_jobs(database, org, WRITE, [{}] * 5)
    worker = Worker(database, fast, concurrency=4, kinds=[FAIL_ONCE, WRITE], register=False)
    assert await worker.run_until_idle(horizon=5) == 18  # 17 jobs, one of them twice
    rows = await jobs_by_id(database, ids + writes)
    for n, ident in enumerate(ids):
        job = rows[ident]
        if n == 3:
            assert (job.state, job.attempts) == ("succeeded", 2)
            assert job.last_error == "RuntimeError: fails on its first attempt"
        else:
            assert (job.state, job.attempts, job.last_error) == ("succeeded", 1, None)
        assert job.result == {"n": n}
    assert {(rows[i].state, rows[i].attempts) for i in writes} == {("succeeded", 1)}
    assert await effect_counts(database, writes) == {str(i): 1 for i in writes}


async def test_a_worker_of_long_jobs_claims_only_its_free_slots(
    settings: Settings, database: Database, org: Org
) -> None:
    quick = await add_jobs(database, org, NOOP, [{"n": n} for n in range(3)])
    worker = Worker(database, settings, concurrency=2, kinds=[NOOP, SLOWISH], register=False)
    assert worker.capacity == 2  # nothing known yet: its free slots only
    await worker.run_until_idle()
    assert worker.capacity > 2  # short jobs: it claims ahead of its slots
    assert (await jobs_by_id(database, quick))[quick[0]].state == "succeeded"

    slow = await add_jobs(database, org, SLOWISH, [{}] * 3)
    await worker.run_until_idle()
    assert worker.capacity == 2  # its jobs now take 0.3 s: no more than it can start
    assert {j.state for j in (await jobs_by_id(database, slow)).values()} == {"succeeded"}

    # Short jobs again: the long kind, run a moment ago, still sets the pace (a fan-out's
    # chunks among short jobs are not claimed ahead by one worker while another idles).
    again = await add_jobs(database, org, NOOP, [{"n": n} for n in range(3)])
    await worker.run_until_idle()
    assert worker.capacity == 2
    assert {j.state for j in (await jobs_by_id(database, again)).values()} == {"succeeded"}
