"""Real ``courier worker`` processes: kill -9 mid-job, SIGTERM, two workers, replicators.

Workers run as subprocesses of the test (``python -m courier.cli worker``) on the test database
and import the handlers of :mod:`tests.jobs_fixture` through ``COURIER_JOB_MODULES``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from courier.app import create_app
from courier.core.db import Database, commit
from courier.core.tenancy import unscoped
from courier.jobs import Job, JobStep, cancel, enqueue
from courier.jobs.worker import LOST_LEASE_ERROR
from courier.models.replicator import Replicator
from tests.conftest import Org, make_settings
from tests.jobs_fixture import RECORD, SLOW, create_test_tables, effects_file
from tests.support import WorkerProcesses

REPO = Path(__file__).resolve().parent.parent
DEADLINE = 60.0


@pytest.fixture(scope="module")
async def database(app: Any) -> AsyncIterator[Database]:
    db: Database = app.state.database
    await create_test_tables(db.engine)
    yield db


@pytest.fixture
def workers(database_url: str, data_dir: Path, tmp_path: Path) -> Iterator[WorkerProcesses]:
    started = WorkerProcesses(
        database_url,
        data_dir,
        tmp_path,
        concurrency=4,
        job_modules="tests.jobs_fixture",
        log_level="INFO",
    )
    yield started
    started.cleanup()


async def until(
    condition: Callable[[], Awaitable[bool]], what: str, deadline: float = DEADLINE
) -> None:
    """Wait (generously) for something to happen."""
    give_up = time.monotonic() + deadline
    while not await condition():
        assert time.monotonic() < give_up, f"gave up waiting: {what}"
        await asyncio.sleep(0.05)


async def scalar(database: Database, stmt: Any) -> Any:
    async with database.sessionmaker() as session:
        return (await session.execute(unscoped(stmt, "tests watch every job"))).scalar_one()


async def jobs_by_id(database: Database, ids: list[uuid.UUID]) -> dict[uuid.UUID, Job]:
    async with database.sessionmaker() as session:
        stmt = unscoped(select(Job).where(Job.id.in_(ids)), "tests read their jobs")
        return {job.id: job for job in (await session.execute(stmt)).scalars()}


async def registered(database: Database, pid: int) -> bool:
    async with database.sessionmaker() as session:
        stmt = select(func.count()).select_from(Replicator).where(Replicator.pid == pid)
        return int((await session.execute(stmt)).scalar_one()) > 0


async def wait_registered(
    database: Database, workers: WorkerProcesses, process: subprocess.Popen[bytes]
) -> None:
    async def ready() -> bool:
        assert process.poll() is None, "worker died:\n" + workers.log_of(process)
        return await registered(database, process.pid)

    await until(ready, f"worker {process.pid} to register")


async def add_jobs(database: Database, org: Org, kind: str, payloads: list[dict[str, Any]],
                   **kw: Any) -> list[uuid.UUID]:  # fmt: skip
    async with database.sessionmaker() as session:
        jobs = [
            await enqueue(session, kind, payload, organization_id=uuid.UUID(org.id), **kw)
            for payload in payloads
        ]
        await commit(session)
    return [job.id for job in jobs]


async def effect_rows(database: Database, ids: list[uuid.UUID]) -> list[tuple[str, int]]:
    wanted = {str(i) for i in ids}
    async with database.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT job_id, pid FROM job_test_effects"))).all()
    return [(str(job), int(pid)) for job, pid in rows if str(job) in wanted]


async def steps_recorded(database: Database, ids: list[uuid.UUID]) -> int:
    stmt = select(func.count()).select_from(JobStep).where(JobStep.job_id.in_(ids))
    return int(await scalar(database, stmt))


async def all_in_state(database: Database, ids: list[uuid.UUID], state: str) -> bool:
    stmt = select(func.count()).select_from(Job).where(Job.id.in_(ids), Job.state == state)
    return int(await scalar(database, stmt)) == len(ids)


async def test_a_killed_workers_jobs_complete_exactly_once(
    database_url: str, data_dir: Path, database: Database, workers: WorkerProcesses, org: Org
) -> None:
    first = workers.start(concurrency=4, job_lease_seconds="2")
    await wait_registered(database, workers, first)
    run = uuid.uuid4().hex
    ids = await add_jobs(database, org, SLOW, [{"run": run, "sleep": 600}] * 3)
    # Each job has sent (its step is recorded) and is now sleeping: kill the worker.
    await until(lambda: _equals(steps_recorded(database, ids), 3), "the three sends")
    first.kill()
    assert await workers.exit_status(first) == -signal.SIGKILL

    second = workers.start(concurrency=4, job_lease_seconds="2")
    await until(lambda: all_in_state(database, ids, "succeeded"), "jobs to be taken up again")

    sends = effects_file(make_settings(database_url, data_dir), run).read_text().splitlines()
    assert sorted(line.split()[0] for line in sends) == sorted(str(i) for i in ids)
    assert {line.split()[1] for line in sends} == {str(first.pid)}  # sent once, never again
    effects = await effect_rows(database, ids)
    assert sorted(job for job, _pid in effects) == sorted(str(i) for i in ids)
    assert {pid for _job, pid in effects} == {second.pid}
    for job in (await jobs_by_id(database, ids)).values():
        assert (job.attempts, job.last_error) == (2, LOST_LEASE_ERROR)
        assert job.result == {"sent-by": first.pid, "done-by": second.pid}

    # The replicators: both processes listed; the killed one turns stale, the live one not.
    settings = make_settings(database_url, data_dir, replicator_stale_seconds=4)
    application = create_app(settings)
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:

            async def staleness() -> dict[int, bool]:
                response = await http.get("/v1/replicators/?page[limit]=1000", headers=org.admin)
                assert response.status_code == 200, response.text
                return {
                    r["attributes"]["pid"]: r["attributes"]["stale"]
                    for r in response.json()["data"]
                    if r["attributes"]["pid"] in (first.pid, second.pid)
                }

            assert set(await staleness()) == {first.pid, second.pid}

            async def killed_is_stale() -> bool:
                return (await staleness())[first.pid]

            await until(killed_is_stale, "the killed worker to turn stale")
            assert (await staleness())[second.pid] is False
    finally:
        await application.state.database.dispose()

    second.send_signal(signal.SIGTERM)
    assert await workers.exit_status(second) == 0, workers.log_of(second)


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_sigterm_lets_the_running_job_finish(
    database_url: str, data_dir: Path, database: Database, workers: WorkerProcesses, org: Org
) -> None:
    worker = workers.start(concurrency=1)
    await wait_registered(database, workers, worker)
    run = uuid.uuid4().hex
    [running] = await add_jobs(database, org, SLOW, [{"run": run, "sleep": 3}], priority=10)
    [waiting] = await add_jobs(database, org, SLOW, [{"run": run, "sleep": 0}])
    await until(lambda: _equals(steps_recorded(database, [running]), 1), "the job to start")
    worker.send_signal(signal.SIGTERM)
    assert await workers.exit_status(worker) == 0, workers.log_of(worker)

    jobs = await jobs_by_id(database, [running, waiting])
    assert (jobs[running].state, jobs[running].attempts) == ("succeeded", 1)
    assert (jobs[waiting].state, jobs[waiting].attempts, jobs[waiting].lease_owner) == (
        "queued", 0, None,
    )  # fmt: skip
    assert await effect_rows(database, [running]) == [(str(running), worker.pid)]
    assert not await registered(database, worker.pid)  # a clean stop removes the registration
    async with database.sessionmaker() as session:
        assert await cancel(session, waiting, organization_id=uuid.UUID(org.id))
        await commit(session)


async def test_sigterm_hands_back_a_job_that_outlives_the_grace(
    database: Database, workers: WorkerProcesses, org: Org
) -> None:
    worker = workers.start(concurrency=1, job_shutdown_grace_seconds="0.5")
    await wait_registered(database, workers, worker)
    [job_id] = await add_jobs(database, org, SLOW, [{"run": uuid.uuid4().hex, "sleep": 600}])
    await until(lambda: _equals(steps_recorded(database, [job_id]), 1), "the job to start")
    worker.send_signal(signal.SIGTERM)
    assert await workers.exit_status(worker) == 0, workers.log_of(worker)

    job = (await jobs_by_id(database, [job_id]))[job_id]
    # Back in the queue, the interrupted attempt not counted; its send stays recorded.
    assert (job.state, job.attempts, job.lease_owner, job.lease_expires_at) == (
        "queued", 0, None, None,
    )  # fmt: skip
    assert await steps_recorded(database, [job_id]) == 1
    assert await effect_rows(database, [job_id]) == []
    async with database.sessionmaker() as session:
        assert await cancel(session, job_id, organization_id=uuid.UUID(org.id))
        await commit(session)


async def test_a_long_job_keeps_its_lease(
    database: Database, workers: WorkerProcesses, org: Org
) -> None:
    owner = workers.start(concurrency=1, job_lease_seconds="1")
    await wait_registered(database, workers, owner)
    [job_id] = await add_jobs(database, org, SLOW, [{"run": uuid.uuid4().hex, "sleep": 4}])
    await until(lambda: _equals(steps_recorded(database, [job_id]), 1), "the job to start")
    # Another worker watches for expired leases all along: the heartbeat must keep this one.
    watcher = workers.start(concurrency=1, job_lease_seconds="1")
    await wait_registered(database, workers, watcher)
    await until(lambda: all_in_state(database, [job_id], "succeeded"), "the long job")
    job = (await jobs_by_id(database, [job_id]))[job_id]
    assert (job.attempts, job.last_error) == (1, None)
    assert await effect_rows(database, [job_id]) == [(str(job_id), owner.pid)]
    for process in (owner, watcher):
        process.send_signal(signal.SIGTERM)
    for process in (owner, watcher):
        assert await workers.exit_status(process) == 0, workers.log_of(process)


async def test_two_workers_never_run_a_job_twice(
    client: httpx.AsyncClient, database: Database, workers: WorkerProcesses, org: Org
) -> None:
    if database.is_sqlite:
        pytest.skip("several workers on many jobs is the PostgreSQL deployment")
    pair = [workers.start(concurrency=4), workers.start(concurrency=4)]
    for process in pair:
        await wait_registered(database, workers, process)
    listing = await client.get("/v1/replicators/?page[limit]=1000", headers=org.admin)
    live = {
        r["attributes"]["pid"]
        for r in listing.json()["data"]
        if r["attributes"]["classpath"] == "courier.jobs.worker.Worker"
        and not r["attributes"]["stale"]
    }
    assert {p.pid for p in pair} <= live

    ids: list[uuid.UUID] = []
    for _round in range(3):
        batch = await add_jobs(database, org, RECORD, [{"sleep": 0.002}] * 200)
        await until(lambda b=batch: all_in_state(database, b, "succeeded"), "a round of jobs")
        ids += batch

    wanted = {str(i) for i in ids}
    async with database.engine.connect() as connection:
        rows = (
            await connection.execute(text("SELECT job_id, pid, started, ended FROM job_test_runs"))
        ).all()
    runs = [
        (str(job), int(pid), float(a), float(b)) for job, pid, a, b in rows if str(job) in wanted
    ]
    by_job: dict[str, list[tuple[float, float]]] = {}
    for job, _pid, started, ended in runs:
        by_job.setdefault(job, []).append((started, ended))
    overlapping = [
        job
        for job, spans in by_job.items()
        for i, (a_start, a_end) in enumerate(spans)
        for b_start, b_end in spans[i + 1 :]
        if a_start < b_end and b_start < a_end
    ]
    assert overlapping == []
    assert Counter(job for job, *_rest in runs) == Counter(wanted)  # each job ran exactly once
    assert {pid for _job, pid, *_rest in runs} == {p.pid for p in pair}  # both took part
    effects = await effect_rows(database, ids)
    assert Counter(job for job, _pid in effects) == Counter(wanted)

    for process in pair:
        process.send_signal(signal.SIGTERM)
    for process in pair:
        assert await workers.exit_status(process) == 0, workers.log_of(process)
