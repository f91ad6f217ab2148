"""Multicasts, end to end: one template to N recipients over HTTP, notified by workers, each
recipient's device pushed through the sandbox.

    python bench/multicast.py --recipients 10000 --runs 3 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --database-url sqlite

``sqlite`` means a fresh SQLite file in a temporary directory; a PostgreSQL URL names the
server and a database to connect to first: each run creates a database of its own next to it
and drops it afterwards. Each run, on a fresh database:

1. the fixtures are written straight into the database: an organization, a staff key, a
   template (apn and fcm bodies, one data key), N participants in one group, each with one apn
   device; on PostgreSQL those tables are then ``ANALYZE``d, as a database in use would be
   (the tables a multicast writes are left as migrations made them: never analyzed, as
   autovacuum leaves an empty table);
2. ``--workers`` ``courier worker --concurrency C`` processes are started and registered (small
   connection pools: ``COURIER_DATABASE_POOL_SIZE``);
   with ``--history N``, an earlier multicast to N of the participants runs first, every push
   settled, then the whole database is ``ANALYZE``d: the tables a multicast writes hold rows
   and the planner's statistics say so (a database in use; not measured);
3. **reference**: ``--reference-jobs`` no-op jobs (``bench.noop``) are enqueued in one
   transaction and run by those workers: no-op jobs per second, measured in the same run, on
   the same database and workers, so the machine's load at that moment is in both figures;
4. the clock starts; ``POST /v1/multicasts/`` (the app in this process, through ASGI) with
   ``filter-type: group``; it stops when the multicast is ``completed`` (every recipient has
   their notification, polled every 20 ms); pushes settled are then counted until all are
   or ``--push-seconds`` have passed.

Prints each run, then medians over the runs: the request, the plan job, recipients per second
over the fan-out (first chunk start to last chunk finish: the notifications and their push
deliveries and jobs, written), end to end (request to ``completed``), until every push settled
(request to the last push delivery settled; ``nan`` when some were still unsettled
``--push-seconds`` after ``completed``), pushes per second (push deliveries settled from the
moment the multicast completed, over ``--push-seconds`` at most or until the last), the ratio of
fan-out recipients/s to the reference jobs/s, and the CPU milliseconds per recipient, from the
request until every push settled (or the window closed), of the worker processes and of the
PostgreSQL backends serving the bench's database (read from ``/proc``; the backends sampled
every 0.25 s, so a connection that lived less than that is missed).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, put the repository root first so ``bench.bulk`` and ``bench.jobs`` import.
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402

from bench.bulk import _seconds, scalar, until  # noqa: E402
from bench.jobs import KIND as NOOP  # noqa: E402
from bench.pg import pg_admin  # noqa: E402
from bench.processes import timed_post  # noqa: E402
from courier.config import Settings  # noqa: E402
from courier.core.db import Database, commit  # noqa: E402
from courier.jobs import enqueue  # noqa: E402
from courier.models.api_key import ApiKey  # noqa: E402
from courier.models.delivery import Delivery  # noqa: E402
from courier.models.fanout import Fanout  # noqa: E402
from courier.models.individual import Individual  # noqa: E402
from courier.models.individual_group import IndividualGroup, IndividualGroupMember  # noqa: E402
from courier.models.job import Job  # noqa: E402
from courier.models.multicast import Multicast  # noqa: E402
from courier.models.organization import Organization  # noqa: E402
from courier.models.push_device import UserDevice  # noqa: E402
from courier.models.replicator import Replicator  # noqa: E402
from courier.models.template import Template  # noqa: E402

PLAN_JOB, CHUNK_JOB = "multicasts.plan", "multicasts.chunk"
UNSETTLED = ("accepted", "queued", "sending")


@dataclass
class Run:
    database: str
    recipients: int
    reference_jobs_per_second: float
    request_seconds: float
    plan_seconds: float
    fanout_seconds: float
    end_to_end_seconds: float
    pushes_seconds: float
    pushes: int
    all_pushed_seconds: float | None = None  # request to the last push settled (in the window)
    # CPU from the request until every push settled (or the window closed): the workers',
    # and the PostgreSQL backends' serving the bench database.
    worker_cpu_seconds: float = 0.0
    server_cpu_seconds: float = 0.0

    @property
    def fanout_rate(self) -> float:
        return self.recipients / self.fanout_seconds

    @property
    def end_to_end_rate(self) -> float:
        return self.recipients / self.end_to_end_seconds

    @property
    def all_pushed_rate(self) -> float:
        """Recipients per second until every push settled (NaN: not within the window)."""
        if self.all_pushed_seconds is None:
            return float("nan")
        return self.recipients / self.all_pushed_seconds

    @property
    def push_rate(self) -> float:
        return self.pushes / self.pushes_seconds

    @property
    def ratio(self) -> float:
        return self.fanout_rate / self.reference_jobs_per_second

    @property
    def worker_cpu_ms(self) -> float:
        return self.worker_cpu_seconds * 1000 / self.recipients

    @property
    def server_cpu_ms(self) -> float:
        return self.server_cpu_seconds * 1000 / self.recipients


HEADER = [
    "database",
    "recipients",
    "reference no-op jobs/s",
    "request ms",
    "plan s",
    "recipients/s fan-out",
    "recipients/s end to end",
    "recipients/s until every push settled",
    "pushes/s after completion",
    "fan-out ÷ reference",
    "worker CPU ms per recipient",
    "PostgreSQL CPU ms per recipient",
]


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """Each live process's CPU seconds so far (user + system, from /proc; Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / tick
    return found


async def backend_pids(engine: AsyncEngine) -> list[int]:
    """The PostgreSQL backends serving the bench's database (none on SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    stmt = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    async with engine.connect() as connection:
        return [int(pid) for pid in (await connection.execute(stmt)).scalars()]


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)


class BackendCpu:
    """The CPU of the bench database's PostgreSQL backends over a span, sampled every
    ``period`` seconds so a connection opened and closed within the span (a pool's overflow)
    is counted up to its last sample."""

    def __init__(self, engine: AsyncEngine, period: float = 0.25) -> None:
        self.engine, self.period = engine, period
        self.before: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.before = cpu_seconds(await backend_pids(self.engine))
        self.last = dict(self.before)
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            self.last.update(cpu_seconds(await backend_pids(self.engine)))

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.last.update(cpu_seconds(await backend_pids(self.engine)))
        return spent(self.before, self.last)


def cells(database: str, recipients: int, runs: list[Run], *, median: bool) -> list[str]:
    def pick(values: list[float]) -> float:
        return statistics.median(values) if median else values[0]

    def shown(values: list[float], fmt: str) -> str:
        value = format(pick(values), fmt)
        if median and len(values) > 1:
            return f"**{value}** ({'/'.join(format(v, fmt) for v in values)})"
        return value

    return [
        database,
        f"{recipients:,}",
        shown([r.reference_jobs_per_second for r in runs], ",.0f"),
        shown([r.request_seconds * 1000 for r in runs], ",.0f"),
        shown([r.plan_seconds for r in runs], ".2f"),
        shown([r.fanout_rate for r in runs], ",.0f"),
        shown([r.end_to_end_rate for r in runs], ",.0f"),
        shown([r.all_pushed_rate for r in runs], ",.0f"),
        shown([r.push_rate for r in runs], ",.0f"),
        shown([r.ratio for r in runs], ".2f"),
        shown([r.worker_cpu_ms for r in runs], ".2f"),
        shown([r.server_cpu_ms for r in runs], ".2f"),
    ]


@dataclass
class Fixtures:
    organization: uuid.UUID
    secret: str
    group: uuid.UUID
    template: uuid.UUID
    earlier: uuid.UUID  # the group of the earlier multicast (--history)


async def seed(engine: AsyncEngine, recipients: int, history: int) -> Fixtures:
    """Everything the request needs, in a few multi-row INSERTs."""
    organization = uuid.uuid4()
    secret = "ck_" + secrets.token_urlsafe(32)
    people = [uuid.uuid4() for _ in range(recipients)]
    group = uuid.uuid4()
    earlier = uuid.uuid4()
    template = uuid.uuid4()
    now = datetime.now(UTC)
    async with engine.begin() as connection:

        async def rows(table: Any, values: list[dict[str, Any]]) -> None:
            for start in range(0, len(values), 1000):
                await connection.execute(insert(table), values[start : start + 1000])

        await rows(
            Organization.__table__,
            [{"id": organization, "name": "Multicast bench", "timezone": "America/New_York"}],
        )
        await rows(
            ApiKey.__table__,
            [
                {
                    "organization_id": organization,
                    "name": "bench",
                    "role": "staff",
                    "secret_hash": hashlib.sha256(secret.encode()).hexdigest(),
                    "secret_prefix": secret[:8],
                    "created_by": "bench",
                }
            ],
        )
        await rows(
            Template.__table__,
            [
                {
                    "id": template,
                    "organization_id": organization,
                    "name": "closure",
                    "channels": {
                        "apn": {
                            "title": "Clinic",
                            "body": "Hi {{ individual.first_name }}: {{ news }}",
                        },
                        "fcm": {"title": "Clinic", "body": "{{ news }}"},
                    },
                    "required_data": {"news": "string"},
                    "locales": {},
                    "sensitive": False,
                    "neutral_text": "You have a new message from your clinic.",
                    "created_at": now,
                    "last_modified_at": now,
                }
            ],
        )
        await rows(
            Individual.__table__,
            [
                {
                    "id": ident,
                    "organization_id": organization,
                    "first_name": "Pat",
                    "last_name": f"Patient {n}",
                    "account_type": "participant",
                    "extended": {},
                }
                for n, ident in enumerate(people)
            ],
        )
        await rows(
            IndividualGroup.__table__,
            [
                {"id": group, "organization_id": organization, "name": "Cohort"},
                {"id": earlier, "organization_id": organization, "name": "Earlier"},
            ],
        )
        await rows(
            IndividualGroupMember.__table__,
            [
                {"organization_id": organization, "group_id": group, "individual_id": ident}
                for ident in people
            ]
            + [
                {"organization_id": organization, "group_id": earlier, "individual_id": ident}
                for ident in people[:history]
            ],
        )
        await rows(
            UserDevice.__table__,
            [
                {
                    "id": uuid.uuid4(),
                    "organization_id": organization,
                    "individual_id": ident,
                    "type": "apn",
                    "token": f"apn-{uuid.uuid4().hex}",
                    "app_name": "",
                    "sandbox": False,
                    "allow_notification": True,
                    "keys": {},
                    "active": True,
                    "created_at": now,
                    "last_modified_at": now,
                }
                for ident in people
            ],
        )
    return Fixtures(organization, secret, group, template, earlier)


def start_workers(url: str, data_dir: Path, args: argparse.Namespace) -> list[Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURIER_")}
    env.update(
        COURIER_DATABASE_URL=url,
        COURIER_DATA_DIR=str(data_dir),
        COURIER_LOG_LEVEL="WARNING",
        COURIER_MULTICAST_CHUNK_SIZE=str(args.chunk_size),
        COURIER_DATABASE_POOL_SIZE=str(args.concurrency + 2),
        COURIER_DATABASE_MAX_OVERFLOW="2",
        COURIER_JOB_MODULES="bench.jobs",
        COURIER_SANDBOX_DELAY_SECONDS="0",
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    command = [sys.executable, "-m", "courier.cli", "worker", f"--concurrency={args.concurrency}"]
    return [subprocess.Popen(command, cwd=REPO, env=env) for _ in range(args.workers)]


async def reference(url: str, data_dir: Path, watcher: AsyncEngine, jobs: int) -> float:
    """No-op jobs per second through the same workers (enqueued at once, run to the last)."""
    database = Database(Settings(database_url=url, data_dir=data_dir, run_worker=False))
    try:
        async with database.sessionmaker() as session:
            organization = Organization(name=f"reference {uuid.uuid4().hex[:6]}", timezone="UTC")
            session.add(organization)
            await session.flush()
            for n in range(jobs):
                await enqueue(session, NOOP, {"n": n}, organization_id=organization.id)
            await commit(session)
    finally:
        await database.dispose()
    done = (
        select(func.count())
        .select_from(Job)
        .where(Job.organization_id == organization.id, Job.state == "succeeded")
    )
    await until(watcher, done, jobs)
    span = select(func.min(Job.started_at), func.max(Job.finished_at)).where(
        Job.organization_id == organization.id
    )
    async with watcher.connect() as connection:
        first, last = (await connection.execute(span)).one()
    return jobs / max(_seconds(last) - _seconds(first), 1e-6)


# What seed() writes: the tables a database in use holds rows in before any multicast.
SEEDED = (
    Organization,
    ApiKey,
    Template,
    Individual,
    IndividualGroup,
    IndividualGroupMember,
    UserDevice,
)


async def analyze(engine: AsyncEngine, tables: Sequence[str] = ()) -> None:
    """``ANALYZE`` these tables (every table when none is named; PostgreSQL): the planner's
    statistics of what they hold now."""
    if engine.dialect.name != "postgresql":
        return
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(" ".join(["ANALYZE", ", ".join(tables)])))


async def post_multicast(
    application: Any, fixtures: Fixtures, group: uuid.UUID
) -> tuple[float, float, uuid.UUID]:
    """``POST /v1/multicasts/`` to ``group`` (through ASGI, the app started): when it was sent
    and answered, and the multicast's id."""
    body = {
        "data": {
            "type": "multicasts",
            "attributes": {
                "filter-type": "group",
                "filter-value": {"individual-group-id": str(group)},
                "template-id": str(fixtures.template),
                "data": {"news": "The clinic is closed on Friday, June 7."},
            },
        }
    }
    started, answered, response = await timed_post(
        application, "/v1/multicasts/", body, fixtures.secret
    )
    return started, answered, uuid.UUID(response.json()["data"]["id"])


async def one_run(url: str, data_dir: Path, name: str, args: argparse.Namespace) -> Run:
    from courier.app import create_app

    watcher = (
        create_async_engine(url, pool_size=2, max_overflow=0)
        if "postgresql" in url
        else (create_async_engine(url))
    )
    fixtures = await seed(watcher, args.recipients, args.history)
    # The seeded tables only: the tables a multicast writes stay as migrations left them, never
    # analyzed (as autovacuum leaves an empty table), not "analyzed and empty" (an ANALYZE of
    # everything would say so, and PostgreSQL then keeps plans for nearly empty tables, e.g.
    # sequential scans for the foreign-key checks of the deliveries' history).
    await analyze(watcher, [] if args.analyze == "all" else [m.__tablename__ for m in SEEDED])
    processes = start_workers(url, data_dir, args)
    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        run_worker=False,
        rate_limit="100000/minute",
        database_pool_size=2,
        database_max_overflow=1,
    )
    application = create_app(settings)
    unsettled = (
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.organization_id == fixtures.organization, Delivery.state.in_(UNSETTLED))
    )
    try:
        pids = [p.pid for p in processes]
        registered = select(func.count()).select_from(Replicator).where(Replicator.pid.in_(pids))
        await until(watcher, registered, args.workers, limit=60)
        if args.history:
            # An earlier multicast, settled, then ANALYZE: the tables a multicast writes hold
            # rows and their statistics say so, as in a database in use (not the measure).
            *_, earlier = await post_multicast(application, fixtures, fixtures.earlier)
            status = select(Multicast.status).where(Multicast.id == earlier)
            await until(watcher, status, "completed")
            await until(watcher, unsettled, 0, limit=120)
            await analyze(watcher)
        jobs_per_second = await reference(url, data_dir, watcher, args.reference_jobs)
        since = datetime.now(UTC)
        workers_before = cpu_seconds(pids)
        backends = BackendCpu(watcher)
        await backends.start()
        started, answered, multicast = await post_multicast(application, fixtures, fixtures.group)
        status = select(Multicast.status).where(Multicast.id == multicast)
        await until(watcher, status, "completed")
        completed = time.perf_counter()
        # Pushes are deliveries (a send job each), mostly sent after the fan-out: their rate is
        # measured from the moment the multicast completed, over --push-seconds at most.
        settled_stmt = (
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.organization_id == fixtures.organization,
                Delivery.state.not_in(UNSETTLED),
            )
        )
        settled_at_completion = await scalar(watcher, settled_stmt)
        window_end = completed + args.push_seconds
        while time.perf_counter() < window_end:
            if not await scalar(watcher, unsettled):
                break
            await asyncio.sleep(0.2)
        pushed = time.perf_counter()
        pushes = await scalar(watcher, settled_stmt) - settled_at_completion
        all_pushed = None if await scalar(watcher, unsettled) else pushed - started
        worker_cpu = spent(workers_before, cpu_seconds(pids))
        server_cpu = await backends.stop()
        async with watcher.connect() as connection:
            counts = select(Fanout.delivered_count, Fanout.target_count).where(
                Fanout.kind == "multicasts", Fanout.subject_id == multicast
            )
            notified, total = (await connection.execute(counts)).one()
            span = select(func.min(Job.started_at), func.max(Job.finished_at)).where(
                Job.organization_id == fixtures.organization,
                Job.kind == CHUNK_JOB,
                Job.created_at >= since,
            )
            first, last = (await connection.execute(span)).one()
            plan = select(Job.started_at, Job.finished_at).where(
                Job.organization_id == fixtures.organization,
                Job.kind == PLAN_JOB,
                Job.created_at >= since,
            )
            plan_start, plan_end = (await connection.execute(plan)).one()
        if (notified, total) != (args.recipients,) * 2:
            raise RuntimeError(f"notified {notified} of {total}; expected {args.recipients}")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=120)
        await watcher.dispose()
    return Run(
        name,
        args.recipients,
        jobs_per_second,
        answered - started,
        _seconds(plan_end) - _seconds(plan_start),
        max(_seconds(last) - _seconds(first), 1e-6),
        completed - started,
        max(pushed - completed, 1e-6),
        pushes,
        all_pushed,
        worker_cpu,
        server_cpu,
    )


async def bench_database(raw: str, args: argparse.Namespace) -> Run:
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
            return await one_run(url, data_dir, name, args)
        finally:
            if created is not None:
                await pg_admin(raw, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000, help="N (default 10000)")
    parser.add_argument(
        "--database-url",
        action="append",
        help="'sqlite' or a postgresql+asyncpg:// URL; repeat for several (default sqlite)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per database, in turns")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="per worker (default 2)")
    parser.add_argument("--chunk-size", type=int, default=250, help="recipients per chunk job")
    parser.add_argument(
        "--push-seconds",
        type=float,
        default=60.0,
        help="count pushes settled for this long after completion at most (default 60)",
    )
    parser.add_argument(
        "--analyze",
        choices=("seeded", "all"),
        default="seeded",
        help="before the workers start, ANALYZE the seeded tables (default) or every table "
        "(the tables a multicast writes then say 'empty': this bench before 2026-12-05)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="recipients of an earlier multicast, settled and ANALYZEd before the measure "
        "(default 0: the measured multicast writes into empty tables)",
    )
    parser.add_argument(
        "--reference-jobs", type=int, default=2000, help="no-op jobs of the reference"
    )
    args = parser.parse_args()
    databases = args.database_url or ["sqlite"]
    runs: dict[str, list[Run]] = {raw: [] for raw in databases}
    print("| run | " + " | ".join(HEADER) + " |", flush=True)
    print("|" + "|".join("---" for _ in range(len(HEADER) + 1)) + "|", flush=True)
    for n in range(args.runs):
        for raw in databases:  # in turns, so a busy minute falls on both
            run = await bench_database(raw, args)
            runs[raw].append(run)
            print(
                f"| {n + 1} | "
                + " | ".join(cells(run.database, run.recipients, [run], median=False))
                + " |",
                flush=True,
            )
    print()
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "|".join("---" for _ in HEADER) + "|")
    for done in runs.values():
        print("| " + " | ".join(cells(done[0].database, args.recipients, done, median=True)) + " |")


if __name__ == "__main__":
    asyncio.run(main())
