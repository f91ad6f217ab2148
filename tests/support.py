"""Helpers shared by several test modules."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, update

from courier.events.interest import interest_cache

# Bookkeeping that comes and goes independently of the request under test: the credential's
# last-used time (once a minute), the sniffer cache refresh (every few seconds), idempotency
# purges, job and replicator upkeep.
BOOKKEEPING = re.compile(r"\b(api_keys|sniffers|idempotency_keys|jobs|replicators)\b")
# A statement that writes the request's own rows and carries a job along (one statement: the
# job a data-modifying CTE) is the request's, not bookkeeping.
OWN_WRITE = re.compile(
    r"\b(?:INSERT INTO|UPDATE)\s+(?!(?:api_keys|sniffers|idempotency_keys|jobs|replicators)\b)\w+"
)


def is_bookkeeping(statement: str) -> bool:
    return bool(BOOKKEEPING.search(statement)) and not OWN_WRITE.search(statement)


# Every Courier process a test starts gets a small PostgreSQL pool (3, up to 10 at busy
# moments): the two suites CI runs side by side, their in-process apps and the processes of a
# crash test together stay well below the server's max_connections (100).
PROCESS_POOL = {"COURIER_DATABASE_POOL_SIZE": "3", "COURIER_DATABASE_MAX_OVERFLOW": "7"}


def process_env() -> dict[str, str]:
    """The environment of a Courier process a test starts: this process's, without its
    ``COURIER_`` settings (the test names the ones it wants), with a small pool."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURIER_")}
    env.update(PROCESS_POOL)
    return env


def probe(code: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a fresh Python process (:func:`process_env`, with ``env``) and return
    the JSON its last line of output holds; raises if it fails."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=process_env() | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def statements_by_connection(app: Any) -> Iterator[dict[int, list[str]]]:
    """The SQL statements the app runs inside the block, by connection, in order (the dict
    fills as they run)."""
    by_connection: dict[int, list[str]] = {}
    engine = app.state.database.engine.sync_engine

    def record(*args: Any) -> None:
        by_connection.setdefault(id(args[0]), []).append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield by_connection
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def count_queries(app: Any, only: str | None = None) -> Iterator[list[str]]:
    """Collect the SQL statements the app runs inside the block (bookkeeping excluded);
    with ``only``, just the statements that mention it (e.g. a table-name prefix).

    Statements are grouped by connection: a connection that ran nothing but bookkeeping (a
    background job claim: its ``BEGIN IMMEDIATE`` on SQLite and its ``jobs`` query) is not
    the request's, and none of its statements count. The list fills when the block ends."""
    statements: list[str] = []
    with statements_by_connection(app) as by_connection:
        yield statements
    for ran in by_connection.values():
        counted = [s for s in ran if not is_bookkeeping(s)]
        if all(s.startswith("BEGIN") for s in counted):
            continue
        statements.extend(s for s in counted if only is None or only in s)


REPO = Path(__file__).resolve().parent.parent


class WorkerProcesses:
    """Real ``courier worker`` processes on a test's database; none outlives its test
    (:meth:`cleanup`). ``settings`` are ``COURIER_`` settings every worker gets; each
    :meth:`start` may add its own."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        logs: Path,
        *,
        concurrency: int = 2,
        **settings: str,
    ) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.logs = logs
        self.concurrency = concurrency
        self.settings = {"log_level": "WARNING", **settings}
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, concurrency: int | None = None, **settings: str) -> subprocess.Popen[bytes]:
        env = process_env()
        env.update(
            COURIER_DATABASE_URL=self.database_url,
            COURIER_DATA_DIR=str(self.data_dir),
            PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        )
        given = {**self.settings, **settings}
        env.update({f"COURIER_{name.upper()}": value for name, value in given.items()})
        log = self.logs / f"worker-{len(self.started)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "courier.cli",
                    "worker",
                    f"--concurrency={concurrency or self.concurrency}",
                ],
                cwd=REPO,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started.append((process, log))
        return process

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        for started, log in self.started:
            if started is process:
                return log.read_text(errors="replace")[-4000:]
        return ""

    async def exit_status(self, process: subprocess.Popen[bytes], deadline: float = 60.0) -> int:
        give_up = time.monotonic() + deadline
        while process.poll() is None:
            assert time.monotonic() < give_up, "worker did not exit:\n" + self.log_of(process)
            await asyncio.sleep(0.05)
        return process.returncode

    def cleanup(self) -> None:
        for process, _log in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


async def jobs_fall_due(
    database: Any,
    organization_id: str,
    *,
    kinds: Sequence[str] = (),
    dedupe_key: str | None = None,
) -> int:
    """Drive the job clock: the organization's queued jobs of ``kinds`` (or the one with
    ``dedupe_key``) fall due now instead of later. How many were moved."""
    import uuid

    from courier.core.db import commit
    from courier.core.tenancy import scoped
    from courier.core.time import utcnow
    from courier.models.job import Job

    stmt = update(Job).where(Job.state == "queued")
    if kinds:
        stmt = stmt.where(Job.kind.in_(list(kinds)))
    if dedupe_key is not None:
        stmt = stmt.where(Job.dedupe_key == dedupe_key)
    async with database.sessionmaker() as session:
        moved = await session.execute(
            scoped(stmt, Job, uuid.UUID(organization_id)).values(run_at=utcnow())
        )
        await commit(session)
    return int(moved.rowcount)  # type: ignore[attr-defined]


async def caches_listening(app: Any) -> None:
    """On PostgreSQL, wait until the process's listener is up: only then are the API key and
    the organization's event consumers kept between requests (on SQLite they are from the
    start, told of changes through the file beside the database)."""
    database = app.state.database
    if database.is_sqlite:
        return
    cache = interest_cache(database.engine.sync_engine)
    for _ in range(600):
        if cache.listening:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the event listener never connected")
