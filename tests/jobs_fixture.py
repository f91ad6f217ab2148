"""Job handlers for the worker tests, and the tables they write to.

A ``courier worker`` subprocess imports this module through ``COURIER_JOB_MODULES=
tests.jobs_fixture`` (run from the repository root). Handlers here record:

- an external side effect (a line appended to a file) inside a ``step``, so a retried job must
  find the recorded step and not repeat it;
- a database effect (a row in ``job_test_effects``) in the job's session, which commits with
  "succeeded" or not at all;
- for overlap checks, every run (job, pid, start, end) in ``job_test_runs`` through a connection
  of its own, so a run is recorded even if its job transaction were to roll back.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from courier.config import Settings
from courier.jobs import JobContext, job_handler

SLOW = "fixture.slow"
RECORD = "fixture.record"

TABLES = (
    "CREATE TABLE IF NOT EXISTS job_test_effects ("
    " job_id VARCHAR(36) NOT NULL, kind VARCHAR(100) NOT NULL, pid INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS job_test_runs ("
    " job_id VARCHAR(36) NOT NULL, pid INTEGER NOT NULL,"
    " started DOUBLE PRECISION NOT NULL, ended DOUBLE PRECISION NOT NULL)",
)


async def create_test_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for statement in TABLES:
            await connection.execute(text(statement))


def effects_file(settings: Settings, run: str) -> Path:
    return Path(settings.data_dir) / f"job-effects-{run}.log"


def append_line(path: Path, line: str) -> None:
    """One write(2) with O_APPEND: lines from several processes never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


async def record_effect(job: JobContext) -> None:
    await job.session.execute(
        text("INSERT INTO job_test_effects (job_id, kind, pid) VALUES (:job, :kind, :pid)"),
        {"job": str(job.job_id), "kind": job.kind, "pid": os.getpid()},
    )


@job_handler(SLOW)
async def slow(job: JobContext) -> dict[str, Any] | None:
    """Send (once, as a step), sleep on the first attempt only, then record the DB effect."""
    path = effects_file(job.settings, str(job.payload["run"]))

    async def send() -> dict[str, Any]:
        append_line(path, f"{job.job_id} {os.getpid()}")
        return {"pid": os.getpid()}

    sent = await job.step("send", send)
    if job.attempt == 1:
        await asyncio.sleep(float(job.payload.get("sleep", 0)))
    await record_effect(job)
    return {"sent-by": sent["pid"] if sent else None, "done-by": os.getpid()}


_recorder: AsyncEngine | None = None


@job_handler(RECORD)
async def record(job: JobContext) -> dict[str, Any] | None:
    """Run briefly, record the run on a connection of its own, record the DB effect."""
    global _recorder
    if _recorder is None:
        _recorder = create_async_engine(job.settings.resolved_database_url, pool_size=2)
    started = time.time()
    await asyncio.sleep(float(job.payload.get("sleep", 0.005)))
    ended = time.time()
    async with _recorder.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO job_test_runs (job_id, pid, started, ended) "
                "VALUES (:job, :pid, :started, :ended)"
            ),
            {"job": str(job.job_id), "pid": os.getpid(), "started": started, "ended": ended},
        )
    await record_effect(job)
    return None
