"""Voice: TwiML responses per second and their latency (p50, p99) when many simulated calls
walk the IVR at once.

For each database (a fresh SQLite file; a fresh PostgreSQL database beside the one named,
dropped afterwards): `courier serve --workers W` and one `courier worker` (it provisions the
number, configures the line, and takes the queue's dispatch jobs), an organization with a text
account, a voice-capable number and a voice line. Then C concurrent callers (default 100), each
call four webhooks as the voice service sends them, signed with ``X-Twilio-Signature``:
the greeting (``<Gather>``), the menu choice 1, the queue (a queue entry is written,
``<Enqueue>``) and the hold music. ``TwiML/s``: responses divided by the wall time; ``p50`` /
``p99``: latency of one webhook, client side; ``errors``: answers other than 200 TwiML.
``--think S``: a call waits about S seconds between its webhooks, as a caller listening to
each prompt does (default 0: back to back, the worst case).

    python bench/voice.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy.engine import make_url

from courier.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.pg import pg_admin
from bench.processes import free_port, serve_args, spawn_courier, stop

REPO = Path(__file__).resolve().parent.parent
MASTER = "bench-master-" + secrets.token_hex(8)
TOKEN_SECRET = "bench-token-" + secrets.token_hex(16)
STEPS = ("", "menu", "queue", "hold")


def spawn(args: list[str], url: str, data_dir: Path, public: str) -> subprocess.Popen[bytes]:
    return spawn_courier(
        args,
        dict(
            COURIER_DATABASE_URL=url,
            COURIER_DATA_DIR=str(data_dir),
            COURIER_MASTER_KEY=MASTER,
            COURIER_TOKEN_SECRET=TOKEN_SECRET,
            COURIER_RATE_LIMIT="1000000/second",
            COURIER_RUN_WORKER="false",
            COURIER_LOG_LEVEL="WARNING",
            COURIER_PUBLIC_URL=public,
            COURIER_DATABASE_POOL_SIZE="10",
            COURIER_DATABASE_MAX_OVERFLOW="10",
        ),
    )


def doc(type_name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": type_name, "attributes": attributes}}


async def until(check: Any, what: str, seconds: float = 300) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.3)
    raise TimeoutError(what)


async def setup(http: httpx.AsyncClient) -> str:
    master = {"Authorization": f"Bearer {MASTER}"}
    org = (
        await http.post(
            "/v1/organizations/",
            json=doc("organizations", {"name": "Bench", "timezone": "America/New_York"}),
            headers=master,
        )
    ).json()["data"]["id"]
    key = await http.post(
        "/v1/api-keys/",
        headers=master,
        json=doc("api-keys", {"name": "bench", "role": "admin", "organization-id": org}),
    )
    headers = {"Authorization": "Bearer " + key.json()["data"]["attributes"]["secret"]}
    await http.post("/v1/text-accounts/", json=doc("text-accounts", {}), headers=headers)
    made = await http.post(
        "/v1/text-account-numbers/",
        headers=headers,
        json=doc("text-account-numbers", {"area-code": "415"}),
    )
    number_id = made.json()["data"]["id"]

    async def active() -> str | None:
        got = await http.get(f"/v1/text-account-numbers/{number_id}/", headers=headers)
        attributes = got.json()["data"]["attributes"]
        return str(attributes["phone-number"]) if attributes["status"] == "active" else None

    number = await until(active, "number not provisioned")
    line = await http.post(
        "/v1/voice-settings/",
        headers=headers,
        json=doc("voice-settings", {"phone-number": number, "wait-message": "Please hold"}),
    )
    ident: str = line.json()["data"]["id"]
    return ident


async def one_round(url: str, data_dir: Path, name: str, args: argparse.Namespace) -> list[str]:
    from courier.providers.twilio_signature import SIGNATURE_HEADER, sign_twilio
    from courier.providers.voice.sandbox import sandbox_auth_token

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = spawn(serve_args(port, args.workers), url, data_dir, base)
    worker = spawn(["worker", "--concurrency=4"], url, data_dir, base)
    auth_token = sandbox_auth_token(Settings(token_secret=TOKEN_SECRET, data_dir=data_dir))
    latencies: list[float] = []
    errors = 0
    try:
        limits = httpx.Limits(max_connections=args.clients)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await until(ready, "courier serve did not start", 120)
            line = await setup(http)
            calls = list(range(args.calls))

            async def caller() -> None:
                nonlocal errors
                while calls:
                    index = calls.pop()
                    sid = f"CA{uuid.uuid4().hex}"
                    form = {
                        "AccountSid": "AC" + "0" * 32,
                        "CallSid": sid,
                        "CallStatus": "in-progress",
                        "Direction": "inbound",
                        "From": f"+1415555{index % 10000:04d}",
                        "To": "+14155550100",
                    }
                    if args.think:  # calls come in over time, not all in the same instant
                        await asyncio.sleep(args.think * random.uniform(0.0, 1.0))
                    for number, step in enumerate(STEPS):
                        if number and args.think:  # the caller listens to the prompt, presses
                            await asyncio.sleep(args.think * random.uniform(0.5, 1.5))
                        query = f"?{urlencode({'step': step})}" if step else ""
                        path = f"/v1/voice-ivrs/{line}/twiml/{query}"
                        body = dict(form, Digits="1") if step == "menu" else form
                        pairs = list(body.items())
                        signature = sign_twilio(auth_token, base + path, pairs)
                        started = time.perf_counter()
                        answer = await http.post(
                            path,
                            content=urlencode(pairs).encode(),
                            headers={
                                "Content-Type": "application/x-www-form-urlencoded",
                                SIGNATURE_HEADER: signature,
                            },
                        )
                        latencies.append(time.perf_counter() - started)
                        if answer.status_code != 200 or "<Response>" not in answer.text:
                            errors += 1

            started = time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(args.clients)))
            wall = time.perf_counter() - started
    finally:
        stop(worker, server)
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return [
        name,
        str(args.clients),
        str(args.calls),
        str(len(latencies)),
        f"{len(latencies) / wall:,.0f}",
        f"{statistics.median(ordered) * 1000:.0f}",
        f"{p99 * 1000:.0f}",
        str(errors),
    ]


async def bench_database(raw: str, args: argparse.Namespace) -> None:
    from courier.core.migrate import upgrade

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
            row = await one_round(url, data_dir, name, args)
            print("| " + " | ".join(row) + " |", flush=True)
        finally:
            if created is not None:
                await pg_admin(raw, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        action="append",
        help="'sqlite' or a postgresql+asyncpg:// URL; repeat (default sqlite)",
    )
    parser.add_argument("--calls", type=int, default=1000, help="simulated calls")
    parser.add_argument("--clients", type=int, default=100, help="concurrent calls")
    parser.add_argument("--workers", type=int, default=2, help="courier serve workers")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds between one call's webhooks (each wait 0.5-1.5x this: the caller hears "
        "the prompt, then presses); 0: back to back, every call always has a webhook in flight",
    )
    args = parser.parse_args()
    print("| database | concurrent calls | calls | webhooks | TwiML/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for raw in args.database_url or ["sqlite"]:
        await bench_database(raw, args)


if __name__ == "__main__":
    asyncio.run(main())
