"""The generic fan-out (courier.jobs.fanout) with a toy declaration: planning into chunks,
per-target outcomes, a failing chunk retried, a worker dying mid-chunk, cancelling.

The toy delivers by writing one row per target to ``fanout_test_effects`` in the chunk's
session, so "exactly once" is a count of rows: an attempt that fails or dies leaves none.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from courier.config import Settings
from courier.core.db import Database, commit
from courier.core.tenancy import scoped, unscoped
from courier.core.time import utcnow
from courier.jobs import Job, run_until_idle
from courier.jobs.fanout import (
    CANCELLED,
    Delivered,
    FanoutRun,
    FanoutSpec,
    Outcome,
    Skipped,
    Target,
    cancel,
    find,
    register_fanout,
    start,
    targets_of,
)
from courier.jobs.worker import LOST_LEASE_ERROR
from courier.models.fanout import Fanout
from tests.conftest import Org, make_settings

TABLES = (
    "CREATE TABLE IF NOT EXISTS fanout_test_effects ("
    " subject_id VARCHAR(36) NOT NULL, target_id VARCHAR(36) NOT NULL, attempt INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fanout_test_settles ("
    " subject_id VARCHAR(36) NOT NULL, delivered INTEGER NOT NULL, skipped INTEGER NOT NULL)",
)

# What each toy fan-out plans, and the trouble its delivery runs into (once each).
PLANS: dict[uuid.UUID, list[Target]] = {}
FAIL_AT: dict[uuid.UUID, uuid.UUID] = {}
CRASH_AT: dict[uuid.UUID, uuid.UUID] = {}


class WorkerDied(BaseException):
    """Not an Exception: the worker records no failure, as when its process is killed; the
    job stays claimed (``running``) until its lease expires."""


async def plan_toy(run: FanoutRun) -> Iterable[Target]:
    return PLANS[run.subject_id]


async def deliver_toy(run: FanoutRun, target: Target) -> Outcome:
    reason = (target.data or {}).get("skip")
    if reason:
        return Skipped(str(reason))
    await run.session.execute(
        text("INSERT INTO fanout_test_effects VALUES (:subject, :target, :attempt)"),
        {"subject": str(run.subject_id), "target": str(target.id), "attempt": run.job.attempt},
    )
    if FAIL_AT.get(run.subject_id) == target.id:
        del FAIL_AT[run.subject_id]
        raise RuntimeError("the toy's database hiccuped")
    if CRASH_AT.get(run.subject_id) == target.id:
        del CRASH_AT[run.subject_id]
        raise WorkerDied
    return Delivered({"number": (target.data or {}).get("n")})


async def settle_toy(run: FanoutRun) -> None:
    await run.session.execute(
        text("INSERT INTO fanout_test_settles VALUES (:subject, :delivered, :skipped)"),
        {
            "subject": str(run.subject_id),
            "delivered": run.fanout.delivered_count,
            "skipped": run.fanout.skipped_count,
        },
    )


TOY = register_fanout(
    FanoutSpec(
        "test-fanout.toy", plan=plan_toy, deliver_one=deliver_toy, settle=settle_toy, chunk_size=2
    )
)
KINDS = [TOY.plan_kind, TOY.chunk_kind]


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def database(app: Any) -> AsyncIterator[Database]:
    db: Database = app.state.database
    async with db.engine.begin() as connection:
        for statement in TABLES:
            await connection.execute(text(statement))
    yield db


@pytest.fixture
def fast(database_url: str, data_dir: Path) -> Settings:
    """Retries a few milliseconds apart."""
    return make_settings(
        database_url, data_dir, job_backoff_base_seconds=0.01, job_backoff_max_seconds=0.05
    )


def people(count: int, **data: dict[str, Any]) -> list[Target]:
    """``count`` targets numbered 0..count-1; ``data`` adds facts by number (``n3={...}``)."""
    return [Target(uuid.uuid4(), {"n": n, **data.get(f"n{n}", {})}) for n in range(count)]


def second_of_chunk(targets: list[Target], chunk: int) -> uuid.UUID:
    """The target a chunk delivers second (a chunk goes through its targets in id order)."""
    return sorted(target.id for target in targets[2 * chunk : 2 * chunk + 2])[1]


async def started(database: Database, org: Org, targets: list[Target]) -> uuid.UUID:
    subject = uuid.uuid4()
    PLANS[subject] = targets
    async with database.sessionmaker() as session:
        first = await start(session, TOY, organization_id=uuid.UUID(org.id), subject_id=subject)
        again = await start(session, TOY, organization_id=uuid.UUID(org.id), subject_id=subject)
        assert again is first  # one fan-out per subject
        await commit(session)
    return subject


async def fanout_of(database: Database, org: Org, subject: uuid.UUID) -> Fanout:
    async with database.sessionmaker() as session:
        found = await find(session, TOY, uuid.UUID(org.id), subject)
        assert found is not None
        return found


async def outcomes(database: Database, org: Org, subject: uuid.UUID) -> dict[uuid.UUID, Any]:
    """target -> (state, reason, outcome, chunk)."""
    fanout = await fanout_of(database, org, subject)
    async with database.sessionmaker() as session:
        rows = await targets_of(session, uuid.UUID(org.id), fanout.id)
    return {row.target_id: (row.state, row.reason, row.outcome, row.chunk) for row in rows}


async def effects(database: Database, subject: uuid.UUID) -> list[str]:
    async with database.engine.connect() as connection:
        result = await connection.execute(
            text("SELECT target_id FROM fanout_test_effects WHERE subject_id = :s"),
            {"s": str(subject)},
        )
        return sorted(str(row[0]) for row in result)


async def settles(database: Database, subject: uuid.UUID) -> list[tuple[int, int]]:
    async with database.engine.connect() as connection:
        result = await connection.execute(
            text("SELECT delivered, skipped FROM fanout_test_settles WHERE subject_id = :s"),
            {"s": str(subject)},
        )
        return [(int(a), int(b)) for a, b in result]


async def chunk_jobs(database: Database, subject: uuid.UUID) -> list[Job]:
    stmt = select(Job).where(Job.dedupe_key.like(f"{TOY.chunk_kind}:{subject}:%"))
    async with database.sessionmaker() as session:
        jobs = list((await session.execute(unscoped(stmt, "tests read their jobs"))).scalars())
    return sorted(jobs, key=lambda job: str(job.dedupe_key))


async def fan_out(database: Database, settings: Settings) -> int:
    return await run_until_idle(database, settings, kinds=KINDS, horizon=5)


# --- planning, chunks, outcomes --------------------------------------------------------------


@pytest.mark.parametrize(("count", "chunks"), [(0, 0), (1, 1), (4, 2), (5, 3)])
async def test_planned_into_chunks_each_target_delivered_or_skipped_once(
    settings: Settings, database: Database, org: Org, count: int, chunks: int
) -> None:
    targets = people(count, n1={"skip": "not-wanted"})
    subject = await started(database, org, [*targets, *targets[:2]])  # duplicates dropped
    queued = await fanout_of(database, org, subject)
    assert (queued.state, queued.target_count) == ("queued", 0)

    await fan_out(database, settings)

    fanout = await fanout_of(database, org, subject)
    skipped = 1 if count > 1 else 0
    assert fanout.state == "settled"
    assert fanout.settled_at is not None and fanout.planned_at is not None
    assert (fanout.target_count, fanout.chunk_count, fanout.chunks_done) == (count, chunks, chunks)
    assert (fanout.delivered_count, fanout.skipped_count) == (count - skipped, skipped)
    assert await settles(database, subject) == [(count - skipped, skipped)]  # settled once
    jobs = await chunk_jobs(database, subject)
    assert len(jobs) == chunks and all(job.state == "succeeded" for job in jobs)

    found = await outcomes(database, org, subject)
    assert set(found) == {target.id for target in targets}
    for n, target in enumerate(targets):
        state, reason, outcome, chunk = found[target.id]
        assert chunk == n // 2  # in the order planned
        if n == 1:
            assert (state, reason, outcome) == ("skipped", "not-wanted", None)
        else:
            assert (state, reason, outcome) == ("delivered", None, {"number": n})
    delivered = sorted(str(t.id) for n, t in enumerate(targets) if n != 1)
    assert await effects(database, subject) == delivered

    await fan_out(database, settings)  # nothing runs twice
    assert await effects(database, subject) == delivered
    assert await settles(database, subject) == [(count - skipped, skipped)]


async def test_a_chunk_that_fails_is_retried_without_repeating_its_effects(
    fast: Settings, database: Database, org: Org
) -> None:
    targets = people(5)
    subject = uuid.uuid4()
    FAIL_AT[subject] = second_of_chunk(targets, 1)  # after the first was delivered in it
    PLANS[subject] = targets
    async with database.sessionmaker() as session:
        await start(session, TOY, organization_id=uuid.UUID(org.id), subject_id=subject)
        await commit(session)

    await fan_out(database, fast)

    assert subject not in FAIL_AT  # it did fail once
    jobs = await chunk_jobs(database, subject)
    assert [(job.state, job.attempts) for job in jobs] == [
        ("succeeded", 1), ("succeeded", 2), ("succeeded", 1),
    ]  # fmt: skip
    assert jobs[1].last_error == "RuntimeError: the toy's database hiccuped"
    assert await effects(database, subject) == sorted(str(t.id) for t in targets)
    fanout = await fanout_of(database, org, subject)
    assert (fanout.state, fanout.delivered_count, fanout.chunks_done) == ("settled", 5, 3)
    assert await settles(database, subject) == [(5, 0)]


async def test_a_worker_dying_mid_chunk_is_resumed_with_no_duplicates(
    settings: Settings, database: Database, org: Org
) -> None:
    targets = people(6)
    subject = uuid.uuid4()
    CRASH_AT[subject] = second_of_chunk(targets, 1)  # after the first was delivered in it
    PLANS[subject] = targets
    async with database.sessionmaker() as session:
        await start(session, TOY, organization_id=uuid.UUID(org.id), subject_id=subject)
        await commit(session)

    await run_until_idle(database, settings, kinds=KINDS, concurrency=1)

    # The dead worker's chunk is still claimed; nothing of it landed.
    jobs = await chunk_jobs(database, subject)
    assert [job.state for job in jobs] == ["succeeded", "running", "succeeded"]
    found = await outcomes(database, org, subject)
    assert [found[t.id][0] for t in targets] == ["delivered"] * 2 + ["pending"] * 2 + [
        "delivered"
    ] * 2
    assert await effects(database, subject) == sorted(str(targets[n].id) for n in (0, 1, 4, 5))
    fanout = await fanout_of(database, org, subject)
    assert (fanout.state, fanout.chunks_done) == ("running", 2)
    assert await settles(database, subject) == []

    # Its lease runs out; another worker takes the chunk up again and finishes the fan-out.
    async with database.sessionmaker() as session:
        stmt = scoped(update(Job).where(Job.id == jobs[1].id), Job, uuid.UUID(org.id))
        await session.execute(stmt.values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    await fan_out(database, settings)

    resumed = (await chunk_jobs(database, subject))[1]
    assert (resumed.state, resumed.attempts, resumed.last_error) == (
        "succeeded", 2, LOST_LEASE_ERROR,
    )  # fmt: skip
    assert await effects(database, subject) == sorted(str(t.id) for t in targets)  # once each
    found = await outcomes(database, org, subject)
    assert {found[t.id][0] for t in targets} == {"delivered"}
    fanout = await fanout_of(database, org, subject)
    assert (fanout.state, fanout.delivered_count, fanout.chunks_done) == ("settled", 6, 3)
    assert await settles(database, subject) == [(6, 0)]


async def test_cancel_stops_the_chunks_not_started(
    settings: Settings, database: Database, org: Org
) -> None:
    targets = people(6)
    subject = await started(database, org, targets)
    await run_until_idle(database, settings, kinds=[TOY.plan_kind])
    jobs = await chunk_jobs(database, subject)
    assert len(jobs) == 3
    later = [job.id for job in jobs[1:]]

    async def postpone(delay: timedelta) -> None:
        async with database.sessionmaker() as session:
            stmt = scoped(update(Job).where(Job.id.in_(later)), Job, uuid.UUID(org.id))
            await session.execute(stmt.values(run_at=utcnow() + delay))
            await session.commit()

    await postpone(timedelta(hours=1))  # only the first chunk is due
    await run_until_idle(database, settings, kinds=KINDS)
    assert await effects(database, subject) == sorted(str(t.id) for t in targets[:2])

    async with database.sessionmaker() as session:
        stopped = await cancel(session, TOY, organization_id=uuid.UUID(org.id), subject_id=subject)
        await commit(session)
    assert stopped is not None
    assert (stopped.state, stopped.delivered_count, stopped.skipped_count) == ("cancelled", 2, 4)
    assert stopped.cancelled_at is not None

    await postpone(timedelta(0))
    await run_until_idle(database, settings, kinds=KINDS)

    assert await effects(database, subject) == sorted(str(t.id) for t in targets[:2])
    found = await outcomes(database, org, subject)
    assert [found[t.id][:2] for t in targets] == [("delivered", None)] * 2 + [
        ("skipped", CANCELLED)
    ] * 4
    fanout = await fanout_of(database, org, subject)
    assert (fanout.state, fanout.delivered_count, fanout.skipped_count) == ("cancelled", 2, 4)
    assert fanout.chunks_done == 3  # the cancelled chunks ran, and delivered nothing
    assert all(job.state == "succeeded" for job in await chunk_jobs(database, subject))
    assert await settles(database, subject) == []  # a cancelled fan-out is not settled

    async with database.sessionmaker() as session:  # cancelling again changes nothing
        again = await cancel(session, TOY, organization_id=uuid.UUID(org.id), subject_id=subject)
        await commit(session)
    assert again is not None and (again.state, again.skipped_count) == ("cancelled", 4)


async def test_cancelled_before_planning_plans_nothing(
    settings: Settings, database: Database, org: Org
) -> None:
    subject = await started(database, org, people(3))
    async with database.sessionmaker() as session:
        stopped = await cancel(session, TOY, organization_id=uuid.UUID(org.id), subject_id=subject)
        nothing = await cancel(
            session, TOY, organization_id=uuid.UUID(org.id), subject_id=uuid.uuid4()
        )
        await commit(session)
    assert stopped is not None and stopped.state == "cancelled"
    assert nothing is None
    await fan_out(database, settings)
    fanout = await fanout_of(database, org, subject)
    assert (fanout.state, fanout.target_count, fanout.chunk_count) == ("cancelled", 0, 0)
    assert await outcomes(database, org, subject) == {}
    assert await effects(database, subject) == []
    assert await chunk_jobs(database, subject) == []


def test_a_declaration_names_one_way_to_deliver() -> None:
    async def one(run: FanoutRun, target: Target) -> Outcome:
        return Delivered()

    async def many(run: FanoutRun, targets: Any) -> dict[uuid.UUID, Outcome]:
        return {}

    with pytest.raises(ValueError, match="exactly one"):
        FanoutSpec("test-fanout.neither", plan=plan_toy)
    with pytest.raises(ValueError, match="exactly one"):
        FanoutSpec("test-fanout.both", plan=plan_toy, deliver=many, deliver_one=one)
    with pytest.raises(ValueError, match="already declared"):
        register_fanout(FanoutSpec(TOY.name, plan=plan_toy, deliver_one=one))
    assert register_fanout(TOY) is TOY
