"""Messaging under load, over real HTTP: posting, the newest messages of a 1,000,000-message
channel, the channels of an individual in 5,000 channels, and its communication summary.

    python bench/messaging.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \\
        --database-url sqlite

For each database: a database of its own is created (a PostgreSQL URL names the server and a
database to connect to first; ``sqlite`` means a file in a temporary directory), migrated and
loaded by ``bench/messaging_data.py``; ``courier serve --workers N`` is started as a real
process (rate limit out of the way, in-process job worker off: messaging enqueues no job), and
load processes drive it (``bench/wire.py``, a lean HTTP/1.1 client: one kept-alive connection per
simulated client; ``--client httpx`` for ``httpx.AsyncClient``, as before 2026-12-06's last
section of bench/README.md) at each client count, for a short warm-up
and then ``--seconds`` of measurement (or ``--max-requests``, whichever comes first). The
server's RSS is sampled from ``/proc`` over the run. The database is dropped at the end unless
``--keep`` is given; ``--reuse MANIFEST`` runs against data loaded before (with ``--keep``).

Scenarios:

- ``post``: ``POST /v1/messaging-messages/`` into one of the channels of 10 subscribers, a
  staff key acting as one of its subscribers (``individual-id``);
- ``newest``: ``GET /v1/messaging-messages/?channel-id=…&individual-id=…&page[limit]=100``,
  newest first (the default order; ``sort=seq`` is oldest first);
- ``channels``: ``GET /v1/messaging-channels/?individual-id=…`` (first page, 50 channels);
- ``summary``: ``GET /v1/communication-summaries/?individual-id=…``;
- ``newest-in-sql`` (not run by default; with ``--reference``, measured on the reference
  only): the newest-100 read as one statement whose JSON document PostgreSQL builds
  (``bench/reference.py``): how far that read goes on this machine with no framework and no
  rendering in Python;
- ``healthz`` (not run by default): ``GET /healthz``, no credentials and no database: the
  ceiling of the server and of the load generator on this machine.

``--reference`` (PostgreSQL): ``bench/reference.py``, the same post and newest-100 read written
by hand with Starlette + asyncpg + orjson on the same database, is started beside Courier with
as many processes, and measured right after Courier at each scenario and client count (same
load generator, same data, same window); a second table gives Courier's rate as a fraction of
the reference's.

Prints a markdown table. Talks only to 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.messaging_data import CORPUS, Manifest, load  # noqa: E402
from bench.pg import pg_admin  # noqa: E402
from bench.processes import free_port  # noqa: E402
from bench.wire import Client, WireError  # noqa: E402

SCENARIOS = ("newest", "channels", "summary", "post")
# Targets on a 2-core machine with PostgreSQL (issue 17): (clients, minimum req/s, maximum p99 ms).
TARGETS: dict[str, tuple[int, float | None, float | None]] = {
    "post": (64, 600.0, 150.0),
    "newest": (64, 900.0, None),
    "channels": (16, None, 100.0),
    "summary": (16, None, 100.0),
}
RSS_TARGET_MB = 300.0


# --- what each scenario asks ------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    body: bytes | None = None


def next_call(scenario: str, manifest: Manifest, rng: random.Random) -> Call:
    if scenario == "post":
        channel, members = rng.choice(manifest.posting)
        document = {
            "data": {
                "type": "messaging-messages",
                "attributes": {
                    "channel-id": channel,
                    "individual-id": rng.choice(members),
                    "message": rng.choice(CORPUS),
                },
            }
        }
        return Call("POST", "/v1/messaging-messages/", orjson.dumps(document))
    if scenario == "newest":
        return Call(
            "GET",
            f"/v1/messaging-messages/?channel-id={manifest.big_channel_id}"
            f"&individual-id={manifest.big_reader_id}&page[limit]=100",
        )
    if scenario == "newest-in-sql":
        return Call(
            "GET",
            f"/in-sql/messaging-messages/?channel-id={manifest.big_channel_id}"
            f"&individual-id={manifest.big_reader_id}&page[limit]=100",
        )
    if scenario == "channels":
        return Call("GET", f"/v1/messaging-channels/?individual-id={manifest.heavy_individual_id}")
    if scenario == "healthz":  # no credentials, no database: what the machinery alone costs
        return Call("GET", "/healthz")
    if scenario == "summary":
        return Call(
            "GET", f"/v1/communication-summaries/?individual-id={manifest.heavy_individual_id}"
        )
    raise ValueError(scenario)


# --- load processes ---------------------------------------------------------------------------


@dataclass
class Slice:
    """What one load process measured."""

    latencies: list[float] = field(default_factory=list)  # seconds, requests done in the window
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    cpu_seconds: float = 0.0  # of this load process, within the window
    last_done: float = 0.0  # wall clock of the last request counted
    sample_error: str = ""


@dataclass(frozen=True)
class Plan:
    base_url: str
    scenario: str
    manifest_path: str
    clients: int
    start_at: float  # wall clock: every load process starts together
    warmup: float
    seconds: float
    max_requests: int
    seed: int
    client: str = "wire"  # or "httpx"


def drive(plan: Plan) -> Slice:
    """Entry point of a load process."""
    import uvloop  # the server's loop too; the standard one costs the generator more CPU

    return uvloop.run(_drive(plan))


async def _drive(plan: Plan) -> Slice:
    manifest = Manifest.load(Path(plan.manifest_path))
    headers = {
        "authorization": f"Bearer {manifest.staff_key}",
        "content-type": "application/json",
        "accept": "application/json",
    }
    result = Slice()
    window_start = plan.start_at + plan.warmup
    window_end = window_start + plan.seconds
    budget = [plan.max_requests]
    # One client (one kept-alive connection) per simulated user: a shared pool of 64
    # connections costs httpx several times more CPU per request than 64 pools of one.
    send = _wire_clients(plan, headers) if plan.client == "wire" else _httpx_clients(plan, headers)
    async with send as request:

        async def one_client(n: int) -> None:
            rng = random.Random(plan.seed * 1_000_003 + n)
            while True:
                now = time.time()
                if now >= window_end or budget[0] <= 0:
                    return
                call = next_call(plan.scenario, manifest, rng)
                began = time.perf_counter()
                began_wall = time.time()
                try:
                    status, body = await request(n, call)
                    if status >= 400 and not result.sample_error:
                        result.sample_error = f"{status}: {body[:300].decode(errors='replace')}"
                except (httpx.HTTPError, WireError) as exc:
                    status = 0
                    if not result.sample_error:
                        result.sample_error = repr(exc)
                elapsed = time.perf_counter() - began
                ended_wall = began_wall + elapsed
                if began_wall >= window_start and ended_wall <= window_end:
                    budget[0] -= 1
                    result.last_done = max(result.last_done, ended_wall)
                    result.latencies.append(elapsed)
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    if status == 0 or status >= 400:
                        result.errors += 1

        cpu_at_start: list[float] = []

        async def window_opens() -> None:
            await asyncio.sleep(max(0.0, window_start - time.time()))
            cpu_at_start.append(_own_cpu())

        await asyncio.sleep(max(0.0, plan.start_at - time.time()))
        await asyncio.gather(window_opens(), *(one_client(n) for n in range(plan.clients)))
        result.cpu_seconds = _own_cpu() - cpu_at_start[0]  # the clients stop with the window
    return result


Send = Callable[[int, Call], Awaitable[tuple[int, bytes]]]


@contextlib.asynccontextmanager
async def _wire_clients(plan: Plan, headers: dict[str, str]) -> AsyncIterator[Send]:
    clients = [Client(plan.base_url, headers) for _ in range(plan.clients)]

    async def send(n: int, call: Call) -> tuple[int, bytes]:
        return await clients[n].request(call.method, call.url, call.body)

    try:
        yield send
    finally:
        for client in clients:
            client.close()


@contextlib.asynccontextmanager
async def _httpx_clients(plan: Plan, headers: dict[str, str]) -> AsyncIterator[Send]:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=plan.base_url, headers=headers, limits=limits, timeout=30.0)
        for _ in range(plan.clients)
    ]

    async def send(n: int, call: Call) -> tuple[int, bytes]:
        response = await clients[n].request(call.method, call.url, content=call.body)
        return response.status_code, response.content

    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        yield send


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the server -------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for current in pids:
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pids += [int(child) for child in children]
    return pids


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """user + system CPU of each process, from /proc/<pid>/stat."""
    found: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def postgres_backends(database: str | None) -> list[int]:
    """The PostgreSQL server processes serving connections to ``database``."""
    if not database:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            pids.append(int(entry.name))
    return pids


def machine_busy_seconds() -> float:
    """CPU seconds spent by every process of the machine (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


@dataclass
class CpuSnapshot:
    server: dict[int, float]
    database: dict[int, float]
    machine: float

    @classmethod
    def take(cls, server: Server, database: str | None) -> CpuSnapshot:
        return cls(
            cpu_seconds(process_tree(server.process.pid)),
            cpu_seconds(postgres_backends(database)),
            machine_busy_seconds(),
        )


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    # A process born during the window counts from zero.
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    workers: int

    def rss(self) -> tuple[float, float]:
        """(sum over the server's processes, largest worker process) in MB."""
        pids = process_tree(self.process.pid)
        sizes = [rss_mb(pid) for pid in pids]
        workers = sizes[1:] or sizes
        return sum(sizes), max(workers, default=0.0)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def spawn_server(
    url: str, data_dir: Path, workers: int, port: int, settings: dict[str, str]
) -> subprocess.Popen[bytes]:
    """``courier serve`` as its own process (its workers are its children); ``settings``:
    more ``COURIER_…`` variables (``--server-env``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURIER_")}
    env.update(
        COURIER_DATABASE_URL=url,
        COURIER_DATA_DIR=str(data_dir),
        COURIER_RATE_LIMIT="1000000/second",
        COURIER_RUN_WORKER="false",
        COURIER_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    env.update(settings)
    command = [
        sys.executable,
        "-m",
        "courier.cli",
        "serve",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--workers={workers}",
        "--no-migrate",
    ]
    return subprocess.Popen(command, cwd=REPO, env=env)


def spawn_reference(url: str, workers: int, port: int) -> subprocess.Popen[bytes]:
    """``bench/reference.py`` under uvicorn (as ``courier serve`` runs: uvloop, httptools)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURIER_")}
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    env.update(
        COURIER_REFERENCE_DSN=dsn,
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.reference:app",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--workers={workers}",
        "--log-level=warning",
        "--no-access-log",
    ]
    return subprocess.Popen(command, cwd=REPO, env=env)


REFERENCE_SCENARIOS = ("post", "newest")
REFERENCE_ONLY = ("newest-in-sql",)  # served by the reference alone


async def start_server(
    url: str,
    data_dir: Path,
    workers: int,
    reference: bool = False,
    settings: dict[str, str] | None = None,
) -> Server:
    port = free_port()
    if reference:
        process = spawn_reference(url, workers, port)
    else:
        process = spawn_server(url, data_dir, workers, port, settings or {})
    server = Server(process, f"http://127.0.0.1:{port}", workers)
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2.0) as client:
        ready = 0
        while ready < 3 * workers:  # several answers: every worker has had time to start
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            if time.monotonic() > deadline:
                server.stop()
                raise TimeoutError("the server did not become ready in 60 s")
            try:
                ready += (await client.get("/readyz")).status_code == 200
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
    return server


# --- one measurement --------------------------------------------------------------------------


@dataclass
class Row:
    database: str
    scenario: str
    clients: int
    workers: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    rss_sum_mb: float
    rss_worker_mb: float
    server_cpu_ms: float  # CPU per request: the server's processes
    database_cpu_ms: float  # CPU per request: PostgreSQL's backends (0 for SQLite)
    generator_cpu_ms: float  # CPU per request: the load processes
    other_cores: float  # cores busy with everything else on the machine meanwhile
    sample_error: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def verdict(self) -> str:
        if self.scenario not in TARGETS:
            return ""
        clients, rate, p99 = TARGETS[self.scenario]
        if clients != self.clients:
            return ""
        ok = (rate is None or self.rate >= rate) and (p99 is None or self.p99_ms <= p99)
        ok = ok and self.rss_worker_mb <= RSS_TARGET_MB and self.errors == 0
        wanted = [f"≥ {rate:,.0f} req/s" if rate else "", f"p99 ≤ {p99:.0f} ms" if p99 else ""]
        return ("met" if ok else "missed") + " (" + ", ".join(w for w in wanted if w) + ")"

    def cells(self) -> list[str]:
        return [
            self.database,
            self.scenario,
            str(self.clients),
            f"{self.rate:,.0f}",
            f"{self.p50_ms:.1f}",
            f"{self.p99_ms:.1f}",
            str(self.errors),
            f"{self.rss_sum_mb:.0f} / {self.rss_worker_mb:.0f}",
            f"{self.server_cpu_ms:.1f} / {self.database_cpu_ms:.1f} / {self.generator_cpu_ms:.1f}",
            f"{self.other_cores:.2f}",
            self.verdict(),
        ]


HEADER = [
    "database",
    "scenario",
    "clients",
    "req/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "server RSS MB (sum / largest worker)",
    "CPU ms per request (server / PostgreSQL / load generator)",
    "other load (cores)",
    "target at this client count",
]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


async def measure(
    server: Server,
    database_name: str | None,
    database: str,
    scenario: str,
    manifest_path: Path,
    clients: int,
    args: argparse.Namespace,
    pool: ProcessPoolExecutor,
) -> Row:
    processes = min(args.load_processes, clients)
    shares = [clients // processes + (n < clients % processes) for n in range(processes)]
    start_at = time.time() + 1.0
    plans = [
        Plan(
            server.base_url,
            scenario,
            str(manifest_path),
            share,
            start_at,
            args.warmup,
            args.seconds,
            args.max_requests // processes,
            seed=n + 1,
            client=args.client,
        )
        for n, share in enumerate(shares)
    ]
    loop = asyncio.get_running_loop()
    futures = [loop.run_in_executor(pool, drive, plan) for plan in plans]
    window_start = start_at + args.warmup
    peak_sum, peak_worker = 0.0, 0.0
    first: CpuSnapshot | None = None
    last: CpuSnapshot | None = None
    while not all(f.done() for f in futures):
        total, worker = server.rss()
        peak_sum, peak_worker = max(peak_sum, total), max(peak_worker, worker)
        now = time.time()
        if first is None and now >= window_start:
            first = CpuSnapshot.take(server, database_name)
        elif first is not None and now <= window_start + args.seconds:
            last = CpuSnapshot.take(server, database_name)
        await asyncio.sleep(0.25)
    slices = [f.result() for f in futures]
    latencies = [value for part in slices for value in part.latencies]
    ended = max((part.last_done for part in slices), default=window_start)
    window = min(args.seconds, max(ended - window_start, 1e-3))
    count = max(len(latencies), 1)
    server_cpu = database_cpu = other = 0.0
    if first is not None and last is not None:
        server_cpu = _spent(first.server, last.server)
        database_cpu = _spent(first.database, last.database)
        generator_cpu = sum(part.cpu_seconds for part in slices)
        busy = last.machine - first.machine
        other = max(0.0, busy - server_cpu - database_cpu - generator_cpu) / window
    return Row(
        database,
        scenario,
        clients,
        server.workers,
        len(latencies),
        sum(part.errors for part in slices),
        window,
        percentile(latencies, 0.50) * 1000,
        percentile(latencies, 0.99) * 1000,
        peak_sum,
        peak_worker,
        server_cpu * 1000 / count,
        database_cpu * 1000 / count,
        sum(part.cpu_seconds for part in slices) * 1000 / count,
        other,
        next((part.sample_error for part in slices if part.sample_error), ""),
    )


# --- databases --------------------------------------------------------------------------------


async def bench_database(raw: str, args: argparse.Namespace) -> list[Row]:
    from courier.config import Settings
    from courier.core.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="courier-bench-") as tmp:
        data_dir = Path(args.data_dir or tmp)
        os.makedirs(data_dir, exist_ok=True)
        created: str | None = None
        postgres = raw != "sqlite" and not raw.startswith("sqlite")
        if args.reuse:
            url = raw
        elif not postgres:
            url = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
        else:
            database = f"courier_bench_{secrets.token_hex(4)}"
            await pg_admin(raw, f'CREATE DATABASE "{database}"')
            created = database
            url = make_url(raw).set(database=database).render_as_string(hide_password=False)
        name = "PostgreSQL" if postgres else "SQLite"
        try:
            if args.reuse:
                manifest_path = Path(args.reuse)
                manifest = Manifest.load(manifest_path)
            else:
                await asyncio.to_thread(upgrade, Settings(database_url=url, data_dir=data_dir))
                big = args.big_messages if postgres else args.sqlite_big_messages
                manifest = await load(
                    url,
                    seed=args.seed,
                    big_messages=big,
                    heavy_channels=args.heavy_channels,
                    posting_channels=args.posting_channels,
                )
                manifest_path = data_dir / "manifest.json"
                manifest.save(manifest_path)
                print(
                    f"{name}: loaded in {manifest.load_seconds:.0f} s "
                    f"({manifest.big_messages:,} messages in the big channel, "
                    f"{manifest.heavy_unread:,} unread of the heavy individual)",
                    file=sys.stderr,
                )
            if args.keep and created:
                print(f"kept database {created}: {url}", file=sys.stderr)
            label = f"{name} ({manifest.big_messages:,})"
            if args.settings:  # rows of runs with other settings tell themselves apart
                label += " " + " ".join(f"{k}={v}" for k, v in args.settings.items())
            workers = args.workers if postgres else args.sqlite_workers
            server = await start_server(url, data_dir, workers, settings=args.settings)
            reference = None
            if args.reference and postgres:
                reference = await start_server(url, data_dir, workers, reference=True)
            rows: list[Row] = []
            context = multiprocessing.get_context("spawn")
            try:
                with ProcessPoolExecutor(args.load_processes, mp_context=context) as pool:
                    for scenario in args.scenarios.split(","):
                        for clients in (int(c) for c in args.clients.split(",")):
                            targets = [] if scenario in REFERENCE_ONLY else [(server, label)]
                            if reference is not None and scenario in (
                                REFERENCE_SCENARIOS + REFERENCE_ONLY
                            ):
                                targets.append((reference, REFERENCE_PREFIX + label))
                            for target, name in targets:
                                row = await measure(
                                    target,
                                    make_url(url).database if postgres else None,
                                    name,
                                    scenario,
                                    manifest_path,
                                    clients,
                                    args,
                                    pool,
                                )
                                print("| " + " | ".join(row.cells()) + " |", file=sys.stderr)
                                if row.sample_error:
                                    print(f"  first error: {row.sample_error}", file=sys.stderr)
                                rows.append(row)
            finally:
                server.stop()
                if reference is not None:
                    reference.stop()
            return rows
        finally:
            if created is not None and not args.keep:
                await pg_admin(raw, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')


def server_settings(given: list[str]) -> dict[str, str]:
    """``--server-env COURIER_X=value`` (repeated): settings of Courier's server for the run,
    each one that Courier has (a misspelt name would be ignored by the server)."""
    from courier.config import Settings

    settings: dict[str, str] = {}
    for one in given:
        name, equals, value = one.partition("=")
        known = name.startswith("COURIER_") and (
            name.removeprefix("COURIER_").lower() in Settings.model_fields
        )
        if not equals or not known:
            raise ValueError(f"--server-env wants COURIER_NAME=value of a setting, not {one!r}")
        settings[name] = value
    return settings


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


REFERENCE_PREFIX = "reference: "
# Issue 17: the post at ≥ 0.6x the reference, the newest-100 read at ≥ 0.5x.
REFERENCE_TARGETS = {"post": 0.6, "newest": 0.5}


def ratios(rows: list[Row]) -> str:
    """Courier's rate as a fraction of the reference's, per scenario and client count."""
    measured = {(row.database, row.scenario, row.clients): row for row in rows}
    lines = [
        "| database | scenario | clients | Courier req/s | reference req/s | ratio "
        "| CPU ms per request (Courier / reference server) | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (database, scenario, clients), ours in measured.items():
        theirs = measured.get((REFERENCE_PREFIX + database, scenario, clients))
        if theirs is None:
            continue
        ratio = ours.rate / theirs.rate if theirs.rate else float("nan")
        wanted = REFERENCE_TARGETS.get(scenario)
        verdict = ""
        if wanted is not None:
            verdict = ("met" if ratio >= wanted else "missed") + f" (≥ {wanted:.1f}x)"
        lines.append(
            f"| {database} | {scenario} | {clients} | {ours.rate:,.0f} | {theirs.rate:,.0f} "
            f"| {ratio:.2f} | {ours.server_cpu_ms:.1f} / {theirs.server_cpu_ms:.1f} | {verdict} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        action="append",
        help="'sqlite' or a postgresql+asyncpg:// URL; repeat for several (default sqlite)",
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--clients", default="16,64", help="concurrent clients (default 16,64)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured per row")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured, before each row")
    parser.add_argument("--max-requests", type=int, default=200_000, help="per row, at most")
    parser.add_argument("--workers", type=int, default=2, help="server processes (PostgreSQL)")
    parser.add_argument(
        "--sqlite-workers",
        type=int,
        default=1,
        help="server processes (SQLite; default 1: its requests take turns at the write lock)",
    )
    parser.add_argument("--load-processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--client",
        choices=("wire", "httpx"),
        default="wire",
        help="the load processes' HTTP client: bench/wire.py (default) or httpx.AsyncClient",
    )
    parser.add_argument("--big-messages", type=int, default=1_000_000)
    parser.add_argument("--sqlite-big-messages", type=int, default=1_000_000)
    parser.add_argument("--heavy-channels", type=int, default=5_000)
    parser.add_argument("--posting-channels", type=int, default=200)
    parser.add_argument("--data-dir", help="keep the SQLite file and manifest here")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--reuse", help="a manifest of data loaded before; --database-url is then its database"
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also measure bench/reference.py (hand-written, PostgreSQL) and print the ratios",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="COURIER_NAME=VALUE",
        help="a setting of Courier's server for the run (repeatable), e.g. "
        "COURIER_DATABASE_POOL_SIZE=20",
    )
    args = parser.parse_args()
    if set(args.scenarios.split(",")) & set(REFERENCE_ONLY):
        postgres = [u for u in args.database_url or [] if not u.startswith("sqlite")]
        if not args.reference or not postgres:
            parser.error(
                f"{', '.join(REFERENCE_ONLY)} is served by the reference: add --reference "
                "and a PostgreSQL --database-url"
            )
    try:
        args.settings = server_settings(args.server_env)
    except ValueError as error:
        parser.error(str(error))
    rows: list[Row] = []
    for raw in args.database_url or ["sqlite"]:
        rows += await bench_database(raw, args)
    print(table(rows))
    if compared := ratios(rows):
        print()
        print(compared)


if __name__ == "__main__":
    asyncio.run(main())
