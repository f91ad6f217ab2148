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

    python bench/texts.py --database-url sqlite \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
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
from bench.pg import pg_admin
from bench.processes import free_port, serve_args, spawn_courier, stop

REPO = Path(__file__).resolve().parent.parent
MASTER = "bench-master-" + secrets.token_hex(8)
NUMBERS = 10


def spawn(args: list[str], url: str, data_dir: Path, public: str) -> subprocess.Popen[bytes]:
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


async def setup(http: httpx.AsyncClient, rate: float) -> tuple[dict[str, str], list[str]]:
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
    await http.post("/v1/text-accounts/", json=doc("text-accounts", {}), headers=headers)
    ids = []
    for _ in range(NUMBERS):
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
            return headers, ids
        if time.monotonic() > deadline:
            raise TimeoutError("numbers not provisioned")
        await asyncio.sleep(0.5)


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
            headers, numbers = await setup(http, rate)
            errors = 0
            queue = list(range(texts))

            async def client() -> None:
                nonlocal errors
                while queue:
                    index = queue.pop()
                    answer = await http.post(
                        "/v1/texts/",
                        headers=headers,
                        json=doc(
                            "texts",
                            {
                                "target": "+14155552671",
                                "message": f"Reminder {index}",
                                "number-id": numbers[index % NUMBERS],
                            },
                        ),
                    )
                    errors += answer.status_code != 201

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(args.clients)))
            accepted = time.perf_counter() - started
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
    for scenario, rate, texts in (
        ("10 numbers at 1/s", 1.0, args.limited_texts),
        ("10 numbers, unlimited", 1000.0, args.texts),
    ):
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
                print("| " + " | ".join(rows[-1].cells()) + " |", flush=True)
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
    args = parser.parse_args()
    print("| database | scenario | texts | accepted/s | delivered/s | errors | undelivered |")
    print("|---|---|---|---|---|---|---|")
    for raw in args.database_url or ["sqlite"]:
        await bench_database(raw, args)


if __name__ == "__main__":
    asyncio.run(main())
