"""Bulk messages, end to end: one message to N recipients over HTTP, posted by workers.

    python bench/bulk.py --recipients 10000 \
        --database-url sqlite \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

``sqlite`` means a fresh SQLite file in a temporary directory; a PostgreSQL URL names the
server and a database to connect to first: the benchmark creates a database of its own next to
it and drops it afterwards (``--keep`` keeps it). For each database:

1. the fixtures are written straight into the database (fast): an organization, a staff key, a
   provider (the sender) and N participants with mixed locales; half of them in a group, and a
   direct channel with the sender for ``--existing`` of them (the rest get one created on the
   way: ``auto-create-channel``); PostgreSQL is then ``ANALYZE``d, as a database in use would be;
2. ``--workers`` ``courier worker --concurrency C`` processes are started and registered;
3. the clock starts; ``POST /v1/messaging-bulk-messages/`` (the app in this process, through
   ASGI) names half the recipients in ``individual-ids`` and the group for the rest, with a
   ``message-js`` in two languages;
4. the clock stops when the bulk message is ``posted`` (polled every 20 ms).

Prints a markdown table: the request's own time, the plan job, and recipients per second end to
end (request to last chunk) and over the chunks alone.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from courier.config import Settings
from courier.models.api_key import ApiKey
from courier.models.fanout import Fanout
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroup, IndividualGroupMember
from courier.models.job import Job
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from courier.models.messaging_bulk import MessagingBulkMessage
from courier.models.organization import Organization
from courier.models.replicator import Replicator

# Run as a script: the repository root on the path, for ``bench.*``.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.pg import pg_admin
from bench.processes import timed_post

REPO = Path(__file__).resolve().parent.parent
LOCALES = ["en-US", "es-US", None, "es", "fr-FR"]
CHUNK_JOB = "messaging-bulk-messages.chunk"


@dataclass
class Row:
    database: str
    recipients: int
    existing: int
    workers: int
    concurrency: int
    chunk_size: int
    request_seconds: float
    plan_seconds: float
    chunks_seconds: float
    end_to_end_seconds: float

    def cells(self) -> list[str]:
        return [
            self.database,
            f"{self.recipients:,}",
            f"{self.existing:,}",
            f"{self.workers} x {self.concurrency}",
            str(self.chunk_size),
            f"{self.request_seconds * 1000:,.0f}",
            f"{self.plan_seconds:.2f}",
            f"{self.end_to_end_seconds:.2f}",
            f"{self.recipients / self.end_to_end_seconds:,.0f}",
            f"{self.recipients / self.chunks_seconds:,.0f}",
        ]


HEADER = [
    "database",
    "recipients",
    "with a channel",
    "workers x concurrency",
    "chunk",
    "request ms",
    "plan s",
    "end-to-end s",
    "recipients/s end to end",
    "recipients/s posting",
]


@dataclass
class Fixtures:
    organization: uuid.UUID
    secret: str
    sender: uuid.UUID
    listed: list[uuid.UUID]
    group: uuid.UUID


async def seed(engine: AsyncEngine, recipients: int, existing: int) -> Fixtures:
    """Everything the request needs, in a few multi-row INSERTs."""
    organization = uuid.uuid4()
    secret = "ck_" + secrets.token_urlsafe(32)
    sender = uuid.uuid4()
    people = [uuid.uuid4() for _ in range(recipients)]
    group = uuid.uuid4()
    half = recipients // 2
    now = datetime.now(UTC)
    async with engine.begin() as connection:

        async def rows(table: Any, values: list[dict[str, Any]]) -> None:
            for start in range(0, len(values), 1000):
                await connection.execute(insert(table), values[start : start + 1000])

        await rows(
            Organization.__table__,
            [{"id": organization, "name": "Bulk bench", "timezone": "America/New_York"}],
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
            Individual.__table__,
            [
                {
                    "id": sender,
                    "organization_id": organization,
                    "first_name": "Dana",
                    "last_name": "Provider",
                    "account_type": "provider",
                    "extended": {},
                },
                *(
                    {
                        "id": ident,
                        "organization_id": organization,
                        "first_name": "Pat",
                        "last_name": f"Patient {n}",
                        "account_type": "participant",
                        "locale": LOCALES[n % len(LOCALES)],
                        "extended": {},
                    }
                    for n, ident in enumerate(people)
                ),
            ],
        )
        await rows(
            IndividualGroup.__table__,
            [{"id": group, "organization_id": organization, "name": "Cohort"}],
        )
        await rows(
            IndividualGroupMember.__table__,
            [
                {"organization_id": organization, "group_id": group, "individual_id": ident}
                for ident in people[half:]
            ],
        )
        channels = {person: uuid.uuid4() for person in people[:existing]}
        await rows(
            MessagingChannel.__table__,
            [
                {
                    "id": channel,
                    "organization_id": organization,
                    "event_settings": {"enabled": True},
                    "sms_initial_message_js": {},
                    "last_seq": 0,
                    "owner_id": sender,
                    "created_by": sender,
                    "created_at": now,
                    "last_modified_at": now,
                }
                for channel in channels.values()
            ],
        )
        await rows(
            MessagingSubscriber.__table__,
            [
                {
                    "organization_id": organization,
                    "channel_id": channel,
                    "individual_id": ident,
                    "admin": ident == sender,
                    "preferences": {},
                    "subscribed_at": now,
                }
                for person, channel in channels.items()
                for ident in (sender, person)
            ],
        )
    return Fixtures(organization, secret, sender, people[:half], group)


def start_workers(
    url: str, data_dir: Path, count: int, concurrency: int, chunk_size: int
) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURIER_")}
    env.update(
        COURIER_DATABASE_URL=url,
        COURIER_DATA_DIR=str(data_dir),
        COURIER_LOG_LEVEL="WARNING",
        COURIER_BULK_MESSAGE_CHUNK_SIZE=str(chunk_size),
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    command = [sys.executable, "-m", "courier.cli", "worker", f"--concurrency={concurrency}"]
    return [subprocess.Popen(command, cwd=REPO, env=env) for _ in range(count)]


async def scalar(engine: AsyncEngine, stmt: Any) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(stmt)).scalar_one_or_none()


async def until(engine: AsyncEngine, stmt: Any, expected: Any, limit: float = 1800) -> None:
    deadline = time.monotonic() + limit
    while await scalar(engine, stmt) != expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {limit} s")
        await asyncio.sleep(0.02)


def _seconds(value: Any) -> float:
    if isinstance(value, str):  # aggregates skip the column type on SQLite
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    moment: datetime = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.timestamp()


async def one_round(url: str, data_dir: Path, name: str, args: argparse.Namespace) -> Row:
    from courier.app import create_app

    existing = int(args.recipients * args.existing)
    # Reads go through a plain engine: no BEGIN IMMEDIATE, so watching takes no write lock.
    watcher = create_async_engine(url)
    fixtures = await seed(watcher, args.recipients, existing)
    if not url.startswith("sqlite"):
        # A database in use has planner statistics; tables bulk-loaded a second ago have none
        # until autovacuum gets to them, and the planner would guess they are empty.
        async with watcher.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE"))
    processes = start_workers(url, data_dir, args.workers, args.concurrency, args.chunk_size)
    settings = Settings(
        database_url=url, data_dir=data_dir, run_worker=False, rate_limit="100000/minute"
    )
    application = create_app(settings)
    try:
        pids = [p.pid for p in processes]
        registered = select(func.count()).select_from(Replicator).where(Replicator.pid.in_(pids))
        await until(watcher, registered, args.workers, limit=60)
        body = {
            "data": {
                "type": "messaging-bulk-messages",
                "attributes": {
                    "sender-individual-id": str(fixtures.sender),
                    "individual-ids": [str(i) for i in fixtures.listed],
                    "individual-group-ids": [str(fixtures.group)],
                    "message": "Our clinic moves to 5 Elm Street on Monday, June 3.",
                    "message-js": {"es_US": "Nuestra clínica se muda a 5 Elm Street el lunes."},
                    "auto-create-channel": True,
                },
            }
        }
        started, answered, response = await timed_post(
            application, "/v1/messaging-bulk-messages/", body, fixtures.secret
        )
        bulk_id = uuid.UUID(response.json()["data"]["id"])
        status = select(MessagingBulkMessage.status).where(MessagingBulkMessage.id == bulk_id)
        await until(watcher, status, "posted")
        finished = time.perf_counter()
        counts = select(Fanout.delivered_count, Fanout.target_count).where(
            Fanout.kind == "messaging-bulk-messages", Fanout.subject_id == bulk_id
        )
        async with watcher.connect() as connection:
            posted, total = (await connection.execute(counts)).one()
            span = select(func.min(Job.started_at), func.max(Job.finished_at)).where(
                Job.organization_id == fixtures.organization, Job.kind == CHUNK_JOB
            )
            first, last = (await connection.execute(span)).one()
            plan = select(Job.started_at, Job.finished_at).where(
                Job.organization_id == fixtures.organization,
                Job.kind == "messaging-bulk-messages.plan",
            )
            plan_start, plan_end = (await connection.execute(plan)).one()
        if (posted, total) != (args.recipients, args.recipients):
            raise RuntimeError(f"posted {posted} of {total}, expected {args.recipients}")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=120)
        await watcher.dispose()
    return Row(
        name,
        args.recipients,
        existing,
        args.workers,
        args.concurrency,
        args.chunk_size,
        answered - started,
        _seconds(plan_end) - _seconds(plan_start),
        max(_seconds(last) - _seconds(first), 1e-6),
        finished - started,
    )


async def bench_database(raw: str, args: argparse.Namespace) -> Row:
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
            return await one_round(url, data_dir, name, args)
        finally:
            if created is not None and not args.keep:
                await pg_admin(raw, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')
            elif created is not None:
                print(f"kept database {created}", file=sys.stderr)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000, help="N (default 10000)")
    parser.add_argument(
        "--database-url",
        action="append",
        help="'sqlite' or a postgresql+asyncpg:// URL; repeat for several (default sqlite)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="per worker (default 2)")
    parser.add_argument("--chunk-size", type=int, default=200, help="recipients per job")
    parser.add_argument(
        "--existing",
        type=float,
        default=0.5,
        help="share of recipients who already have a direct channel (default 0.5)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    rows = [await bench_database(raw, args) for raw in args.database_url or ["sqlite"]]
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "|".join("---" for _ in HEADER) + "|")
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")


if __name__ == "__main__":
    asyncio.run(main())
