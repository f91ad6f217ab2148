"""Texts: accepted per second by the API, delivered per second through the sandbox carrier.

For each database (a fresh SQLite file; a fresh PostgreSQL database beside the one named,
dropped afterwards): `courier serve --workers W` (no embedded worker) and one
`courier worker --concurrency C`, an organization with a text account and 10 numbers. Two
scenarios: the numbers at Twilio's long-code rate (1 text per second each) and unlimited.
``accepted/s``: N ``POST /v1/texts/`` from K concurrent clients over HTTP, divided by the time
until the last 201. ``delivered/s``: the texts delivered divided by the time from the first
request to the last delivery reported ``delivered`` by the sandbox's signed status callbacks;
``undelivered``: those still not delivered after ``--stall-seconds`` without progress (a lost
status callback).

``--accepts-only``: the unlimited scenario on its own, the worker stopped once the numbers are
provisioned, nothing delivered; also the server's CPU per accept (its processes, from
``/proc``) and the whole machine's. ``--load wrk``: Debian's ``wrk`` (C, ``apt-get install
wrk``) sends the texts for ``--seconds`` instead of the Python client, which costs ~2 ms of CPU
per request on the same 2 cores.

    python bench/texts.py --database-url sqlite \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    python bench/texts.py --accepts-only --load wrk \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from courier.config import Settings
from courier.models.delivery import Delivery

# Run as a script: the repository root on the path, for ``bench.*``.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.messaging import cpu_seconds, machine_busy_seconds, process_tree
from bench.pg import pg_admin
from bench.processes import free_port, serve_args, spawn_courier, stop

REPO = Path(__file__).resolve().parent.parent
MASTER = "bench-master-" + secrets.token_hex(8)
NUMBERS = 10


def spawn(
    args: list[str], url: str, data_dir: Path, public: str, repo: Path = REPO
) -> subprocess.Popen[bytes]:
    """A Courier process of checkout ``repo`` on ``url``, sandbox delays short, no throttling."""
    return spawn_courier(
        args,
        dict(
            COURIER_DATABASE_URL=url,
            COURIER_DATA_DIR=str(data_dir),
            COURIER_MASTER_KEY=MASTER,
            COURIER_RATE_LIMIT="1000000/second",
            COURIER_RUN_WORKER="false",
            COURIER_LOG_LEVEL="WARNING",
            COURIER_PUBLIC_URL=public,
            COURIER_SANDBOX_DELAY_SECONDS="0.2",
        ),
        repo,
    )


@dataclass
class Row:
    database: str
    scenario: str
    texts: int
    accepted_per_second: float
    delivered_per_second: float
    errors: int
    undelivered: int = 0
    server_ms: float = 0.0  # --accepts-only: server CPU per accept
    machine_ms: float = 0.0  # --accepts-only: the whole machine's CPU per accept

    def accept_cells(self) -> list[str]:
        return [
            self.database,
            str(self.texts),
            f"{self.accepted_per_second:,.0f}",
            f"{self.server_ms:.2f}",
            f"{self.machine_ms:.2f}",
            str(self.errors),
        ]

    def cells(self) -> list[str]:
        return [
            self.database,
            self.scenario,
            str(self.texts),
            f"{self.accepted_per_second:,.0f}",
            f"{self.delivered_per_second:,.1f}",
            str(self.errors),
            str(self.undelivered),
        ]


def doc(type_name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": type_name, "attributes": attributes}}


async def setup(
    http: httpx.AsyncClient, rate: float, numbers: int = NUMBERS
) -> tuple[dict[str, str], list[str], str]:
    """An organization with a text account and ``numbers`` active numbers sending at ``rate``
    per second: its admin key's headers, the numbers' ids and the account's id."""
    master = {"Authorization": f"Bearer {MASTER}"}
    org = (
        await http.post(
            "/v1/organizations/", json=doc("organizations", {"name": "Bench"}), headers=master
        )
    ).json()["data"]["id"]
    key = await http.post(
        "/v1/api-keys/",
        headers=master,
        json=doc("api-keys", {"name": "bench", "role": "admin", "organization-id": org}),
    )
    headers = {"Authorization": "Bearer " + key.json()["data"]["attributes"]["secret"]}
    account = await http.post("/v1/text-accounts/", json=doc("text-accounts", {}), headers=headers)
    account_id: str = account.json()["data"]["id"]
    ids = []
    for _ in range(numbers):
        made = await http.post(
            "/v1/text-account-numbers/",
            headers=headers,
            json=doc("text-account-numbers", {"area-code": "415", "rate-per-second": rate}),
        )
        ids.append(made.json()["data"]["id"])
    deadline = time.monotonic() + 300
    while True:
        states = [
            (await http.get(f"/v1/text-account-numbers/{i}/", headers=headers)).json()["data"][
                "attributes"
            ]["status"]
            for i in ids
        ]
        if all(s == "active" for s in states):
            return headers, ids, account_id
        if time.monotonic() > deadline:
            raise TimeoutError("numbers not provisioned")
        await asyncio.sleep(0.5)


def text_doc(index: int, numbers: list[str]) -> dict[str, Any]:
    return doc(
        "texts",
        {
            "target": "+14155552671",
            "message": f"Reminder {index}",
            "number-id": numbers[index % NUMBERS],
        },
    )


async def httpx_accepts(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    numbers: list[str],
    texts: int,
    clients: int,
) -> int:
    """``texts`` accepts from ``clients`` concurrent httpx clients; the errors."""
    errors = 0
    queue = list(range(texts))

    async def client() -> None:
        nonlocal errors
        while queue:
            index = queue.pop()
            answer = await http.post("/v1/texts/", headers=headers, json=text_doc(index, numbers))
            errors += answer.status_code != 201

    await asyncio.gather(*(client() for _ in range(clients)))
    return errors


# wrk: each connection posts the next text of its own rotation over the numbers.
WRK_SCRIPT = """
local bodies = {}
local counter = 0
function setup(thread) end
function init(args)
  for i, body in ipairs(args) do bodies[i] = body end
end
function request()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  return wrk.format("POST", "/v1/texts/", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = AUTHORIZATION,
  }, body)
end
"""


async def wrk_accepts(
    base: str, headers: dict[str, str], numbers: list[str], args: argparse.Namespace
) -> tuple[int, int]:
    """``wrk`` posting texts for ``--seconds`` from ``--clients`` connections; (requests,
    errors: answers other than 2xx, and socket errors)."""
    if shutil.which("wrk") is None:
        raise SystemExit("--load wrk needs wrk on the PATH (apt-get install wrk)")
    bodies = [json.dumps(text_doc(index, numbers)) for index in range(NUMBERS)]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f"AUTHORIZATION = {json.dumps(headers['Authorization'])}\n" + WRK_SCRIPT)
    try:
        process = await asyncio.create_subprocess_exec(
            "wrk",
            "-t2",
            f"-c{args.clients}",
            f"-d{args.seconds}s",
            "--timeout=30s",
            "-s",
            script.name,
            base,
            "--",
            *bodies,
            stdout=asyncio.subprocess.PIPE,
        )
        output = (await process.communicate())[0].decode()
    finally:
        os.unlink(script.name)
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    if errors:  # say which: a socket error as the run stops is wrk's, not the server's
        for line in (non_2xx, socket_errors):
            if line:
                print(f"wrk: {line.group(0)}", file=sys.stderr)
    return requests, errors


async def one_round(
    url: str,
    data_dir: Path,
    name: str,
    scenario: str,
    rate: float,
    texts: int,
    args: argparse.Namespace,
) -> Row:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = spawn(serve_args(port, args.workers), url, data_dir, base)
    worker = spawn(["worker", f"--concurrency={args.concurrency}"], url, data_dir, base)
    engine = create_async_engine(url)
    try:
        limits = httpx.Limits(max_connections=args.clients)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("courier serve did not start")
                await asyncio.sleep(0.2)
            headers, numbers, _account = await setup(http, rate)
            if args.accepts_only:
                stop(worker)
            server_pids = process_tree(server.pid)
            cpu_before, busy_before = cpu_seconds(server_pids), machine_busy_seconds()
            started = time.perf_counter()
            if args.load == "wrk":
                texts, errors = await wrk_accepts(base, headers, numbers, args)
            else:
                errors = await httpx_accepts(http, headers, numbers, texts, args.clients)
            accepted = time.perf_counter() - started
            cpu_after, busy_after = cpu_seconds(server_pids), machine_busy_seconds()
            server_cpu = sum(cpu_after.values()) - sum(
                cpu_before.get(pid, 0.0) for pid in cpu_after
            )
            if args.accepts_only:
                ok = max(texts - errors, 1)
                return Row(
                    name,
                    scenario,
                    texts,
                    (texts - errors) / accepted,
                    0.0,
                    errors,
                    server_ms=1000 * server_cpu / ok,
                    machine_ms=1000 * (busy_after - busy_before) / ok,
                )
            delivered_stmt = (
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.resource_type == "texts", Delivery.state == "delivered")
            )
            limit = time.monotonic() + 1800
            done, progressed = 0, time.perf_counter()
            while True:
                async with engine.connect() as conn:
                    now_done = (await conn.execute(delivered_stmt)).scalar_one()
                if now_done > done:
                    done, progressed = now_done, time.perf_counter()
                if done >= texts - errors:
                    break
                # The sandbox carrier posts each status callback once, as Twilio does: one that
                # is lost (the server busy past the carrier's timeout) leaves its text at
                # "sent" for ever. Counted as undelivered rather than waited for.
                if time.perf_counter() - progressed > args.stall_seconds:
                    break
                if time.monotonic() > limit:
                    raise TimeoutError(f"{done} of {texts} delivered after 30 minutes")
                await asyncio.sleep(0.1)
            delivered = progressed - started
        return Row(
            name, scenario, texts, texts / accepted, done / delivered, errors, texts - errors - done
        )
    finally:
        await engine.dispose()
        stop(worker, server)


async def bench_database(raw: str, args: argparse.Namespace) -> list[Row]:
    from courier.core.migrate import upgrade

    rows = []
    scenarios = [
        ("10 numbers at 1/s", 1.0, args.limited_texts),
        ("10 numbers, unlimited", 1000.0, args.texts),
    ]
    for scenario, rate, texts in scenarios[1:] if args.accepts_only else scenarios:
        with tempfile.TemporaryDirectory(prefix="courier-bench-") as tmp:
            data_dir = Path(tmp)
            created: str | None = None
            if raw == "sqlite":
                url, name = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}", "SQLite"
            else:
                created = f"courier_bench_{secrets.token_hex(4)}"
                await pg_admin(raw, f'CREATE DATABASE "{created}"')
                url = make_url(raw).set(database=created).render_as_string(hide_password=False)
                name = "PostgreSQL"
            try:
                await asyncio.to_thread(upgrade, Settings(database_url=url, data_dir=data_dir))
                rows.append(await one_round(url, data_dir, name, scenario, rate, texts, args))
                cells = rows[-1].accept_cells() if args.accepts_only else rows[-1].cells()
                print("| " + " | ".join(cells) + " |", flush=True)
            finally:
                if created is not None:
                    await pg_admin(raw, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        action="append",
        help="'sqlite' or a postgresql+asyncpg:// URL; repeat (default sqlite)",
    )
    parser.add_argument("--texts", type=int, default=1000, help="texts, unlimited scenario")
    parser.add_argument(
        "--limited-texts",
        type=int,
        default=200,
        help="texts, 1/s scenario (default 200: 20 s at 10 numbers)",
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=2, help="courier serve workers")
    parser.add_argument("--concurrency", type=int, default=16, help="courier worker jobs")
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=120.0,
        help="stop waiting for deliveries after this long without one (default 120)",
    )
    parser.add_argument(
        "--accepts-only",
        action="store_true",
        help="accepts alone: the worker stopped once the numbers are provisioned",
    )
    parser.add_argument(
        "--load",
        choices=["httpx", "wrk"],
        default="httpx",
        help="load generator: httpx (--texts requests, default) or wrk (--seconds)",
    )
    parser.add_argument("--seconds", type=int, default=10, help="--load wrk: how long")
    args = parser.parse_args()
    if args.load == "wrk" and not args.accepts_only:
        parser.error("--load wrk measures accepts only: add --accepts-only")
    if args.accepts_only:
        print(
            "| database | texts | accepted/s | server CPU ms/accept | machine CPU ms/accept "
            "| errors |"
        )
        print("|---|---|---|---|---|---|")
    else:
        print("| database | scenario | texts | accepted/s | delivered/s | errors | undelivered |")
        print("|---|---|---|---|---|---|---|")
    for raw in args.database_url or ["sqlite"]:
        await bench_database(raw, args)


if __name__ == "__main__":
    asyncio.run(main())
