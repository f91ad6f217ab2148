"""Emails per second through the ``smtp`` adapter into a local aiosmtpd (STARTTLS, AUTH).

    python bench/emails.py --emails 500 --database-url sqlite \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

Two measurements, each against a fresh aiosmtpd on 127.0.0.1 (a thread of this process) with a
self-signed certificate, STARTTLS required and AUTH PLAIN:

1. *adapter*: N messages (text + HTML, and a 100 KiB PDF when ``attachment`` says so) built
   with ``build_message`` and handed to ``SmtpEmail.send`` by C concurrent senders; the
   adapter keeps up to ``smtp_connections`` connections open and reuses them (``1 conn per
   send`` closes the adapter after every message: a new TCP + TLS + AUTH each time).
2. *end to end*: N emails created with ``auto-send`` over the API (the app in this process,
   over ASGI), then sent by the in-process job runner (concurrency 4): delivery rows, the
   at-most-once send protocol, the email's status, all in the database named. The clock runs
   from the first POST until every email is ``sent``.

Prints markdown tables.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder is first on sys.path, where this file would shadow the
# standard library's ``email`` package: put the repository root there instead.
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import secrets  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from courier.app import create_app  # noqa: E402
from courier.config import Settings  # noqa: E402
from courier.core.migrate import upgrade  # noqa: E402
from courier.core.tenancy import unscoped  # noqa: E402
from courier.jobs import run_until_idle  # noqa: E402
from courier.models.email import UserEmail  # noqa: E402
from courier.providers.email.message import (  # noqa: E402
    EmailAttachment,
    EmailContent,
    OutgoingEmail,
    build_message,
)
from courier.providers.email.smtp import SmtpEmail  # noqa: E402
from tests.smtp_server import SmtpServer  # noqa: E402

PDF = b"%PDF-1.4\n" + secrets.token_bytes(100 * 1024) + b"\n%%EOF\n"
MASTER = "bench-master-" + secrets.token_hex(8)


def message(index: int, attachment: bool) -> Any:
    return build_message(
        OutgoingEmail(
            sender="Clinic <noreply@clinic.example>",
            to=[f"patient-{index}@patients.example"],
            content=EmailContent(
                f"Your appointment #{index}",
                "See you on Tuesday at 10.\n",
                "<p>See you on <b>Tuesday</b> at 10.</p>",
            ),
            attachments=[EmailAttachment("letter.pdf", "application/pdf", PDF)]
            if attachment
            else [],
        )
    )


async def adapter_run(
    directory: Path, emails: int, concurrency: int, attachment: bool, reuse: bool
) -> dict[str, Any]:
    with SmtpServer(directory / uuid.uuid4().hex) as server:
        values: dict[str, Any] = {**server.settings(), "smtp_connections": concurrency}
        settings = Settings(**values)
        adapter = SmtpEmail(settings)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(emails):
            queue.put_nowait(index)

        async def sender() -> None:
            nonlocal adapter
            while not queue.empty():
                index = queue.get_nowait()
                own = adapter if reuse else SmtpEmail(settings)
                await own.send(message(index, attachment), delivery_id=uuid.uuid4())
                if not reuse:
                    await own.close()

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        await adapter.close()
        assert len(server.received) == emails, len(server.received)
        return {
            "mode": "reused connections" if reuse else "1 conn per send",
            "concurrency": concurrency,
            "attachment": "100 KiB PDF" if attachment else "none",
            "emails": emails,
            "seconds": elapsed,
            "per_second": emails / elapsed,
        }


async def end_to_end_run(directory: Path, database: str, emails: int) -> dict[str, Any]:
    import asyncpg

    data_dir = directory / uuid.uuid4().hex
    data_dir.mkdir()
    created_pg: str | None = None
    if database == "sqlite":
        url = f"sqlite+aiosqlite:///{data_dir / 'courier.db'}"
    else:
        base = make_url(database)
        name = f"courier_bench_{secrets.token_hex(4)}"
        conn = await asyncpg.connect(
            host=base.host or "127.0.0.1",
            port=base.port or 5432,
            user=base.username or "postgres",
            database=base.database or "postgres",
        )
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        created_pg = name
        url = base.set(database=name).render_as_string(hide_password=False)
    try:
        with SmtpServer(data_dir / "smtp") as server:
            values: dict[str, Any] = {
                **server.settings(),
                "database_url": url,
                "data_dir": data_dir,
                "master_key": MASTER,
                "rate_limit": "1000000/minute",
                "run_worker": False,
                "auto_migrate": False,
                "job_concurrency": 4,
            }
            settings = Settings(**values)
            await asyncio.to_thread(upgrade, settings)
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://courier.bench"
                ) as client:
                    master = {"Authorization": f"Bearer {MASTER}"}
                    org = await client.post(
                        "/v1/organizations/",
                        headers=master,
                        json={"data": {"type": "organizations", "attributes": {"name": "B"}}},
                    )
                    org_id = org.json()["data"]["id"]
                    key = await client.post(
                        "/v1/api-keys/",
                        headers=master,
                        json={
                            "data": {
                                "type": "api-keys",
                                "attributes": {
                                    "name": "bench",
                                    "role": "staff",
                                    "organization-id": org_id,
                                },
                            }
                        },
                    )
                    staff = {
                        "Authorization": f"Bearer {key.json()['data']['attributes']['secret']}"
                    }
                    started = time.perf_counter()
                    for index in range(emails):
                        response = await client.post(
                            "/v1/user-emails/",
                            headers=staff,
                            json={
                                "data": {
                                    "type": "user-emails",
                                    "attributes": {
                                        "to": f"patient-{index}@patients.example",
                                        "subject": f"Appointment #{index}",
                                        "message": "See you on Tuesday at 10.",
                                        "message-html": "<p>See you on <b>Tuesday</b>.</p>",
                                        "auto-send": True,
                                    },
                                }
                            },
                        )
                        assert response.status_code == 201, response.text
                    requests_done = time.perf_counter()
                    await run_until_idle(
                        app.state.database, settings, concurrency=4, give_up_after=600
                    )
                    elapsed = time.perf_counter() - started
                    async with app.state.database.sessionmaker() as session:
                        sent = (
                            await session.execute(
                                unscoped(
                                    select(func.count())
                                    .select_from(UserEmail)
                                    .where(UserEmail.status == "sent"),
                                    "the benchmark counts every email",
                                )
                            )
                        ).scalar_one()
                    assert sent == emails, (sent, emails)
                    assert len(server.received) == emails
        return {
            "database": "SQLite" if database == "sqlite" else "PostgreSQL",
            "emails": emails,
            "requests_seconds": requests_done - started,
            "seconds": elapsed,
            "per_second": emails / elapsed,
        }
    finally:
        if created_pg is not None:
            base = make_url(database)
            conn = await asyncpg.connect(
                host=base.host or "127.0.0.1",
                port=base.port or 5432,
                user=base.username or "postgres",
                database=base.database or "postgres",
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{created_pg}" WITH (FORCE)')
            await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=500)
    parser.add_argument("--database-url", action="append", default=[])
    parser.add_argument("--skip-adapter", action="store_true", help="only the end-to-end runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print("| mode | concurrency | attachment | emails | seconds | emails/s |")
        print("|---|---|---|---|---|---|")
        runs = [(False, 1, False), (True, 1, False), (True, 4, False), (True, 4, True)]
        for reuse, concurrency, attachment in [] if args.skip_adapter else runs:
            row = await adapter_run(directory, args.emails, concurrency, attachment, reuse)
            print(
                f"| {row['mode']} | {row['concurrency']} | {row['attachment']} | "
                f"{row['emails']} | {row['seconds']:.2f} | {row['per_second']:,.0f} |",
                flush=True,
            )
        if args.database_url:
            print()
            print("| database | emails | requests s | end-to-end s | emails/s end to end |")
            print("|---|---|---|---|---|")
        for database in args.database_url:
            row = await end_to_end_run(directory, database, args.emails)
            print(
                f"| {row['database']} | {row['emails']} | {row['requests_seconds']:.2f} | "
                f"{row['seconds']:.2f} | {row['per_second']:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
