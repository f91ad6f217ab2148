"""notify_many throughput: recipients per second, rendering + rows + one push each (sandbox).

For each database (a fresh SQLite file; a fresh PostgreSQL database created beside the one
named, dropped afterwards): N individuals, each with a login account and one device, and a
template are written; then ``notify_many`` is called for chunks of ``--chunk`` targets, each
chunk in its own transaction as a multicast's fan-out chunk calls it ("notify/s"); then
in-process workers (``--concurrency``) run the push jobs until every push is sent, through the
delivery state machine to the sandbox push ("end to end/s" counts from the first notify to the
last push recorded by the sandbox).

    python bench/notify.py --recipients 10000 --database-url sqlite \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg import pg_admin
from courier.config import Settings
from courier.core.db import Database, commit
from courier.core.time import utcnow
from courier.domains.user_notifications.service import (
    NotificationTarget,
    Notified,
    notify_many,
)
from courier.jobs import load_job_modules, run_until_idle
from courier.models.delivery import Delivery
from courier.models.individual import Individual
from courier.models.organization import Organization
from courier.models.push_device import UserDevice
from courier.models.template import Template
from courier.models.user import User
from courier.providers.delivery import BATCH_CONCURRENCY

HEADER = ["database", "recipients", "chunk", "notify s", "notify/s", "end to end s", "end to end/s"]


async def seed(database: Database, n: int) -> tuple[uuid.UUID, Template, list[uuid.UUID]]:
    org = uuid.uuid4()
    now = utcnow()
    individuals = [uuid.uuid4() for _ in range(n)]
    async with database.sessionmaker() as session:
        session.add(Organization(id=org, name=f"bench {org.hex[:6]}", timezone="UTC"))
        await session.flush()
        for start in range(0, n, 1000):
            part = individuals[start : start + 1000]
            await session.execute(
                insert(Individual),
                [
                    {
                        "id": ident,
                        "organization_id": org,
                        "first_name": f"P{i}",
                        "last_name": "Bench",
                        "created_at": now,
                        "last_modified_at": now,
                    }
                    for i, ident in enumerate(part)
                ],
            )
            await session.execute(
                insert(User),
                [
                    {
                        "id": uuid.uuid4(),
                        "organization_id": org,
                        "username": f"u{ident.hex}",
                        "username_key": f"u{ident.hex}",
                        "primary_individual_id": ident,
                        "notifications": [],
                        "created_at": now,
                        "last_modified_at": now,
                    }
                    for ident in part
                ],
            )
            await session.execute(
                insert(UserDevice),
                [
                    {
                        "id": uuid.uuid4(),
                        "organization_id": org,
                        "individual_id": ident,
                        "type": "apn",
                        "token": ident.hex * 2,
                        "app_name": "",
                        "keys": {},
                        "created_at": now,
                        "last_modified_at": now,
                    }
                    for ident in part
                ],
            )
        template = Template(
            id=uuid.uuid4(),
            organization_id=org,
            name="reminder",
            category="appointments",
            channels={
                "apn": {
                    "title": "Visit with {{ clinician }}",
                    "body": "Hi {{ individual.first_name }}, room {{ room }}",
                }
            },
            required_data={"clinician": "string", "room": "number"},
            locales={},
            sensitive=False,
            neutral_text="You have a new message.",
            created_at=now,
            last_modified_at=now,
        )
        session.add(template)
        await commit(session)
    return org, template, individuals


async def one_round(url: str, data_dir: Path, name: str, args: argparse.Namespace) -> list[str]:
    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        run_worker=False,
        # Each push job calls the provider BATCH_CONCURRENCY at a time, and the push sandbox
        # keeps its records through a pool of its own of the same size.
        database_pool_size=args.concurrency * BATCH_CONCURRENCY + 4,
    )
    load_job_modules(settings)
    database = Database(settings)
    try:
        org, template, individuals = await seed(database, args.recipients)
        started = time.perf_counter()
        for start in range(0, len(individuals), args.chunk):
            part = individuals[start : start + args.chunk]
            async with database.sessionmaker() as session:
                results = await notify_many(
                    session,
                    settings,
                    organization_id=org,
                    template=template,
                    data={"clinician": "Dr. Oz", "room": 4},
                    targets=[NotificationTarget(ident) for ident in part],
                    source="bench",
                    dedupe_keys=[f"bench:{ident}" for ident in part],
                )
                await commit(session)
            assert all(isinstance(r, Notified) and r.channels for r in results.values())
        notified = time.perf_counter() - started
        await run_until_idle(database, settings, concurrency=args.concurrency, give_up_after=3600.0)
        done = time.perf_counter() - started
        async with database.sessionmaker() as session:
            states = dict(
                (
                    await session.execute(
                        select(Delivery.state, func.count())
                        .where(Delivery.organization_id == org)
                        .group_by(Delivery.state)
                    )
                ).all()
            )
        if states != {"sent": args.recipients}:
            print(f"deliveries: {states}", file=sys.stderr)
        n = args.recipients
        return [
            name,
            f"{n:,}",
            str(args.chunk),
            f"{notified:.2f}",
            f"{n / notified:,.0f}",
            f"{done:.2f}",
            f"{n / done:,.0f}",
        ]
    finally:
        await database.dispose()


async def bench_database(raw: str, args: argparse.Namespace) -> list[str]:
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
            return await one_round(url, data_dir, name, args)
        finally:
            if created is not None:
                await pg_admin(raw, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=500, help="targets per notify_many call")
    parser.add_argument("--concurrency", type=int, default=2, help="in-process worker jobs")
    parser.add_argument("--database-url", action="append", help="'sqlite' or a postgresql URL")
    args = parser.parse_args()
    rows: list[Any] = [await bench_database(raw, args) for raw in args.database_url or ["sqlite"]]
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "|".join("---" for _ in HEADER) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    asyncio.run(main())
