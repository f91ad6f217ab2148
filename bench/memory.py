"""A server worker's memory under mixed load, and the fixed CPU cost of a cheap request.

    python bench/memory.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    python bench/memory.py --database-url ... --minutes 2
    python bench/memory.py --database-url ... --cheap --compare /work/wt/main-copy

A fresh database is created beside the one named (``sqlite``: a file in a temporary
directory), migrated and loaded by ``bench/messaging_data.py`` (a smaller data set than
``bench/messaging.py``'s); ``courier serve --workers 1`` (no embedded worker) and one
``courier worker`` (it provisions the text numbers and sends the texts) are started as real
processes; an organization made through the API gets a text account and two numbers.

Memory (the default): ``--clients`` concurrent clients drive ``--minutes`` of mixed load over
the main routes: message posts, newest-100 reads, channel lists, communication summaries, gets
of a message just posted, text sends and text lists. The server worker's RSS is sampled from
``/proc`` every second; printed: RSS once ready (before any request), after the first request
of each kind (the lazily imported libraries and caches), peak, and at the end.

``--cheap``: the fixed cost of an authenticated cheap request, in server CPU milliseconds per
request (the worker's user + system time from ``/proc``): ``get`` (one small message by id)
and ``missing`` (a 404 on an unknown id), ``--seconds`` each with ``--clients`` clients, over
``--rounds`` rounds. ``--serve PATH``: serve from another checkout (e.g. a worktree of main)
instead of this one; with ``--compare PATH`` a second server from another checkout (e.g. a
worktree of main) serves the same database and the two are measured in turns; medians printed.

Talks only to 127.0.0.1; drops what it creates.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.messaging import cpu_seconds, process_tree, rss_mb  # noqa: E402
from bench.messaging_data import CORPUS, Manifest, load  # noqa: E402
from bench.pg import pg_admin  # noqa: E402
from bench.processes import free_port, serve_args, stop  # noqa: E402
from bench.texts import doc, setup, spawn  # noqa: E402

# Weights of the mixed load's requests.
MIX = {
    "post": 30,
    "newest": 15,
    "channels": 10,
    "summary": 10,
    "get": 15,
    "text": 10,
    "texts": 10,
}


@dataclass
class Server:
    repo: Path
    process: Any
    base_url: str

    def worker_pid(self) -> int:
        pids = process_tree(self.process.pid)
        return pids[-1]  # --workers 1: uvicorn serves in the process it started in

    def rss(self) -> float:
        return rss_mb(self.worker_pid())

    def cpu(self) -> float:
        return sum(cpu_seconds(process_tree(self.process.pid)).values())


async def start(repo: Path, url: str, data_dir: Path) -> Server:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = spawn(serve_args(port, 1), url, data_dir, base, repo)
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            if time.monotonic() > deadline:
                stop(process)
                raise TimeoutError("the server did not become ready")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return Server(repo, process, base)
            except httpx.HTTPError:
                await asyncio.sleep(0.2)


@dataclass
class Load:
    manifest: Manifest
    staff: dict[str, str]
    texter: dict[str, str]
    numbers: list[str]
    account_id: str
    posted: list[str] = field(default_factory=list)  # ids of messages posted (for gets)
    counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first_error: str = ""

    async def one(self, http: httpx.AsyncClient, kind: str, rng: random.Random) -> None:
        m = self.manifest
        if kind == "post":
            channel, members = rng.choice(m.posting)
            body = doc(
                "messaging-messages",
                {
                    "channel-id": channel,
                    "individual-id": rng.choice(members),
                    "message": rng.choice(CORPUS),
                },
            )
            answer = await http.post("/v1/messaging-messages/", json=body, headers=self.staff)
            if answer.status_code == 201:
                self.posted.append(answer.json()["data"]["id"])
                del self.posted[:-1000]
        elif kind == "newest":
            answer = await http.get(
                f"/v1/messaging-messages/?channel-id={m.big_channel_id}"
                f"&individual-id={m.big_reader_id}&page[limit]=100",
                headers=self.staff,
            )
        elif kind == "channels":
            answer = await http.get(
                f"/v1/messaging-channels/?individual-id={m.heavy_individual_id}", headers=self.staff
            )
        elif kind == "summary":
            answer = await http.get(
                f"/v1/communication-summaries/?individual-id={m.heavy_individual_id}",
                headers=self.staff,
            )
        elif kind == "get":
            target = rng.choice(self.posted) if self.posted else str(uuid.uuid4())
            answer = await http.get(f"/v1/messaging-messages/{target}/", headers=self.staff)
        elif kind == "missing":
            answer = await http.get(f"/v1/messaging-messages/{uuid.uuid4()}/", headers=self.staff)
        elif kind == "text":
            body = doc(
                "texts",
                {
                    "target": "+14155552671",
                    "message": rng.choice(CORPUS),
                    "number-id": rng.choice(self.numbers),
                },
            )
            answer = await http.post("/v1/texts/", json=body, headers=self.texter)
        elif kind == "texts":
            answer = await http.get(
                f"/v1/texts/?account-id={self.account_id}&page[limit]=50", headers=self.texter
            )
        else:
            raise ValueError(kind)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        expected = 404 if kind == "missing" else 200 if kind not in ("post", "text") else 201
        if kind == "get" and not self.posted:
            expected = 404
        if answer.status_code != expected:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            self.first_error = (
                self.first_error or f"{kind} {answer.status_code}: {answer.text[:200]}"
            )


async def run_clients(
    base_url: str, clients: int, until: float, pick: Callable[[random.Random], str], load: Load
) -> None:
    async def client(n: int) -> None:
        rng = random.Random(n)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as http:
            while time.time() < until:
                await load.one(http, pick(rng), rng)

    await asyncio.gather(*(client(n) for n in range(clients)))


async def memory(server: Server, load: Load, args: argparse.Namespace) -> None:
    samples: list[tuple[float, float]] = []
    began = time.time()
    ready = server.rss()
    print(f"RSS once ready: {ready:.1f} MB", file=sys.stderr)
    # One request of each kind first: what the first use of each route loads.
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as http:
        rng = random.Random(0)
        for kind in MIX:
            await load.one(http, kind, rng)
    first = server.rss()
    print(f"RSS after one request of each kind: {first:.1f} MB", file=sys.stderr)
    kinds = list(MIX)
    weights = list(MIX.values())
    until = time.time() + args.minutes * 60
    done = asyncio.create_task(
        run_clients(
            server.base_url, args.clients, until, lambda r: r.choices(kinds, weights)[0], load
        )
    )
    while not done.done():
        samples.append((time.time() - began, server.rss()))
        minute = int(samples[-1][0] // 60)
        if len(samples) % 60 == 0:
            print(
                f"  {samples[-1][0]:.0f} s: {samples[-1][1]:.1f} MB (minute {minute})",
                file=sys.stderr,
            )
        await asyncio.sleep(1.0)
    await done
    end = server.rss()
    peak = max([value for _, value in samples] + [end])
    total = sum(load.counts.values())
    print()
    print("| RSS MB once ready | after one of each | peak | end | minutes | requests | errors |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {ready:.1f} | {first:.1f} | {peak:.1f} | {end:.1f} | {args.minutes:g} | {total:,} "
        f"| {sum(load.errors.values())} |"
    )
    print("requests by kind: " + ", ".join(f"{k} {v:,}" for k, v in sorted(load.counts.items())))
    if load.first_error:
        print(f"first error: {load.first_error}")


def _constant(kind: str, _rng: random.Random) -> str:
    return kind


async def cheap(servers: list[Server], load: Load, args: argparse.Namespace) -> None:
    results: dict[tuple[str, str], list[float]] = {}
    for kind in ("get", "missing"):
        for _round in range(args.rounds):
            for server in servers:
                warm = time.time() + 1.0
                only = functools.partial(_constant, kind)
                await run_clients(server.base_url, args.clients, warm, only, load)
                before_count = sum(load.counts.values())
                before = server.cpu()
                await run_clients(
                    server.base_url, args.clients, time.time() + args.seconds, only, load
                )
                spent = server.cpu() - before
                count = sum(load.counts.values()) - before_count
                value = spent * 1000 / max(count, 1)
                results.setdefault((kind, str(server.repo)), []).append(value)
                print(f"  {kind} {server.repo}: {value:.2f} ms ({count} requests)", file=sys.stderr)
    print()
    print("| request | server | CPU ms per request (median) | rounds |")
    print("|---|---|---|---|")
    for (kind, repo), values in results.items():
        print(
            f"| {kind} | {repo} | {statistics.median(values):.2f} "
            f"| {', '.join(f'{v:.2f}' for v in values)} |"
        )
    if load.first_error:
        print(f"first error: {load.first_error}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default="sqlite", help="'sqlite' or a postgresql+asyncpg:// URL"
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="of mixed load (default 10)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--cheap", action="store_true", help="measure a cheap request's CPU instead"
    )
    parser.add_argument(
        "--serve", type=Path, default=REPO, help="the checkout to serve (default this one)"
    )
    parser.add_argument(
        "--compare", type=Path, help="--cheap: also serve from this checkout, in turns"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="--cheap: per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="--cheap: turns per server")
    parser.add_argument("--big-messages", type=int, default=20_000)
    args = parser.parse_args()

    from courier.config import Settings
    from courier.core.migrate import upgrade

    raw = args.database_url
    postgres = raw != "sqlite"
    created: str | None = None
    with tempfile.TemporaryDirectory(prefix="courier-memory-") as tmp:
        data_dir = Path(tmp)
        if postgres:
            created = f"courier_memory_{secrets.token_hex(4)}"
            await pg_admin(raw, f'CREATE DATABASE "{created}"')
            url = make_url(raw).set(database=created).render_as_string(hide_password=False)
        else:
            url = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
        processes: list[Any] = []
        try:
            await asyncio.to_thread(upgrade, Settings(database_url=url, data_dir=data_dir))
            manifest = await load(
                url, seed=1, big_messages=args.big_messages, heavy_channels=500, posting_channels=50
            )
            servers = [await start(args.serve.resolve(), url, data_dir)]
            processes.append(servers[0].process)
            if args.compare:
                servers.append(await start(args.compare.resolve(), url, data_dir))
                processes.append(servers[1].process)
            worker = spawn(["worker"], url, data_dir, servers[0].base_url, args.serve.resolve())
            processes.append(worker)
            async with httpx.AsyncClient(base_url=servers[0].base_url, timeout=30.0) as http:
                texter, numbers, account_id = await setup(http, 1000, numbers=2)
            staff = {"Authorization": f"Bearer {manifest.staff_key}"}
            state = Load(manifest, staff, texter, numbers, account_id)
            if args.cheap:
                async with httpx.AsyncClient(base_url=servers[0].base_url, timeout=30.0) as http:
                    for _ in range(20):
                        await state.one(http, "post", random.Random(1))
                await cheap(servers, state, args)
            else:
                await memory(servers[0], state, args)
        finally:
            stop(*processes)
            if created is not None:
                await pg_admin(raw, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
