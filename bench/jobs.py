"""Jobs throughput, end to end: enqueue N no-op jobs, run 1 then 2 ``courier worker`` processes.

    python bench/jobs.py --jobs 2000 \
        --database-url sqlite \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

``sqlite`` means a fresh SQLite file in a temporary directory; a PostgreSQL URL names the
server and a database to connect to first: the benchmark creates a database of its own next to
it and drops it afterwards. For each database and worker count, the workers are started and
registered first; then N jobs are enqueued in one transaction, and the clock runs from that
commit until the last job is marked succeeded. Prints a markdown table.

Worker processes import this module (``COURIER_JOB_MODULES=bench.jobs``) for its handler.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from courier.config import Settings
from courier.core.db import Database, commit
from courier.jobs import JobContext, enqueue, job_handler
from courier.models.job import Job
from courier.models.organization import Organization
from courier.models.replicator import Replicator

# Run as a script: the repository root on the path, for ``bench.*``.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.pg import pg_admin

REPO = Path(__file__).resolve().parent.parent
KIND = "bench.noop"


@job_handler(KIND)
async def noop(job: JobContext) -> dict[str, Any] | None:
    return None


@dataclass
class Row:
    database: str
    workers: int
    concurrency: int
    jobs: int
    enqueue_seconds: float
    end_to_end_seconds: float
    processing_seconds: float

    def cells(self) -> list[str]:
        return [
            self.database,
            str(self.workers),
            str(self.concurrency),
            str(self.jobs),
            f"{self.jobs / self.enqueue_seconds:,.0f}",
            f"{self.end_to_end_seconds:.2f}",
            f"{self.jobs / self.end_to_end_seconds:,.0f}",
            f"{self.jobs / self.processing_seconds:,.0f}",
        ]


HEADER = [
    "database",
    "workers",
    "concurrency",
    "jobs",
    "enqueued/s",
    "end-to-end s",
    "jobs/s end to end",
    "jobs/s first start to last finish",
]


def start_workers(url: str, data_dir: Path, count: int, concurrency: int) -> list[Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURIER_")}
    env.update(
        COURIER_DATABASE_URL=url,
        COURIER_DATA_DIR=str(data_dir),
        COURIER_JOB_MODULES="bench.jobs",
        COURIER_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    command = [sys.executable, "-m", "courier.cli", "worker", f"--concurrency={concurrency}"]
    return [subprocess.Popen(command, cwd=REPO, env=env) for _ in range(count)]


async def wait_for(engine: AsyncEngine, stmt: Any, expected: int, limit: float = 600) -> None:
    deadline = time.monotonic() + limit
    while True:
        async with engine.connect() as connection:
            if (await connection.execute(stmt)).scalar_one() >= expected:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {limit} s")
        await asyncio.sleep(0.02)


async def one_round(
    url: str, data_dir: Path, name: str, jobs: int, workers: int, concurrency: int
) -> Row:
    settings = Settings(database_url=url, data_dir=data_dir, run_worker=False)
    database = Database(settings)
    # Reads go through a plain engine: no BEGIN IMMEDIATE, so watching takes no write lock.
    watcher = create_async_engine(url)
    processes = start_workers(url, data_dir, workers, concurrency)
    try:
        pids = [p.pid for p in processes]
        registered = select(func.count()).select_from(Replicator).where(Replicator.pid.in_(pids))
        await wait_for(watcher, registered, workers, limit=60)
        async with database.sessionmaker() as session:
            organization = Organization(name=f"bench {uuid.uuid4().hex[:6]}", timezone="UTC")
            session.add(organization)
            await session.flush()
            started = time.perf_counter()
            for n in range(jobs):
                await enqueue(session, KIND, {"n": n}, organization_id=organization.id)
            await commit(session)
            committed = time.perf_counter()
        done = (
            select(func.count())
            .select_from(Job)
            .where(Job.organization_id == organization.id, Job.state == "succeeded")
        )
        await wait_for(watcher, done, jobs)
        finished = time.perf_counter()
        span = select(func.min(Job.started_at), func.max(Job.finished_at)).where(
            Job.organization_id == organization.id
        )
        async with watcher.connect() as connection:
            first, last = (await connection.execute(span)).one()
        processing = _seconds(last) - _seconds(first)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        await watcher.dispose()
        await database.dispose()
    return Row(
        name,
        workers,
        concurrency,
        jobs,
        committed - started,
        finished - committed,
        max(processing, 1e-6),
    )


def _seconds(value: Any) -> float:
    if isinstance(value, str):  # aggregates skip the column type on SQLite
        from datetime import UTC, datetime

        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    return float(value.timestamp())


async def bench_database(raw: str, jobs: int, counts: list[int], concurrency: int) -> list[Row]:
    from courier.core.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="courier-bench-") as tmp:
        data_dir = Path(tmp)
        created: str | None = None
        if raw == "sqlite":
            url, name = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}", "SQLite"
        else:
            database = f"courier_bench_{secrets.token_hex(4)}"
            await pg_admin(raw, f'CREATE DATABASE "{database}"')
            created = database
            url = make_url(raw).set(database=database).render_as_string(hide_password=False)
            name = "PostgreSQL"
        try:
            await asyncio.to_thread(upgrade, Settings(database_url=url, data_dir=data_dir))
            return [
                await one_round(url, data_dir, name, jobs, count, concurrency) for count in counts
            ]
        finally:
            if created is not None:
                await pg_admin(raw, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per round (default 2000)")
    parser.add_argument(
        "--database-url",
        action="append",
        help="'sqlite' or a postgresql+asyncpg:// URL; repeat for several (default sqlite)",
    )
    parser.add_argument("--workers", default="1,2", help="worker counts to run (default 1,2)")
    parser.add_argument("--concurrency", type=int, default=4, help="per worker (default 4)")
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    rows: list[Row] = []
    for raw in args.database_url or ["sqlite"]:
        rows += await bench_database(raw, args.jobs, counts, args.concurrency)
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "|".join("---" for _ in HEADER) + "|")
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")


if __name__ == "__main__":
    asyncio.run(main())
