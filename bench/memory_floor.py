"""The memory floor of Courier's stack: a server worker's RSS with the frameworks alone.

    python bench/memory_floor.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    python bench/memory_floor.py --database-url ... --minutes 2

Issue 17 asks for ≤ 100 MB per server worker after 10 minutes of mixed load. This measures
what is left of that budget for Courier: ``bench/memory_floor.py`` serves, with the libraries
every request of Courier's goes through and nothing of Courier's own (FastAPI with a pydantic
body model and a dependency, a SQLAlchemy ORM model on an ``AsyncSession`` over asyncpg,
orjson, uvicorn with uvloop and httptools, as ``courier serve`` runs), one read and one write
route; ``--clients`` clients drive them for ``--minutes``; the worker's RSS is read from
``/proc`` every second. Printed: RSS once ready, after a minute, peak and end, beside
``bench/memory.py``'s figures for Courier's worker (the same libraries, and Courier).

The app is this file's ``app`` (``uvicorn bench.memory_floor:app``, ``FLOOR_DATABASE_URL``). A
fresh database is created beside the one named (``sqlite``: a temporary file) and dropped at
the end. Talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import String, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "memory_floor_notes"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    channel: Mapped[int] = mapped_column(index=True)
    message: Mapped[str] = mapped_column(String(4000))


class NoteIn(BaseModel):
    channel: int = Field(ge=0, le=1000)
    message: str = Field(min_length=1, max_length=4000)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ["FLOOR_DATABASE_URL"]
    sized = {} if url.startswith("sqlite") else {"pool_size": 16, "max_overflow": 4}
    engine = create_async_engine(url, **sized)
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()


async def session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as s, s.begin():
        yield s


app = FastAPI(lifespan=lifespan)
Session = Annotated[AsyncSession, Depends(session)]


def _json(status: int, document: object) -> Response:
    return Response(orjson.dumps(document), status, media_type="application/vnd.api+json")


@app.post("/notes")
async def write(note: NoteIn, s: Session) -> Response:
    row = Note(channel=note.channel, message=note.message)
    s.add(row)
    await s.flush()
    return _json(201, {"data": {"id": str(row.id), "channel": row.channel}})


@app.get("/notes")
async def read(channel: int, s: Session) -> Response:
    rows = (await s.scalars(select(Note).where(Note.channel == channel).limit(50))).all()
    total = await s.scalar(select(func.count()).where(Note.channel == channel))
    data = [{"id": str(r.id), "message": r.message} for r in rows]
    return _json(200, {"data": data, "meta": {"total": total}})


@app.get("/readyz")
async def ready() -> Response:
    return Response(b"ok")


# --- the measurement --------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def drive(base: str, clients: int, seconds: float, samples: list[float], pid: int) -> int:
    from bench.wire import Client

    done = 0
    stop_at = time.monotonic() + seconds

    async def one(n: int) -> None:
        nonlocal done
        rng = random.Random(n)
        client = Client(base, {"content-type": "application/json"})
        try:
            while time.monotonic() < stop_at:
                channel = rng.randrange(100)
                if rng.random() < 0.5:
                    body = orjson.dumps(
                        {"channel": channel, "message": "x" * (1 + rng.randrange(200))}
                    )
                    status, _ = await client.request("POST", "/notes", body)
                else:
                    status, _ = await client.request("GET", f"/notes?channel={channel}")
                if status >= 300:
                    raise RuntimeError(f"the floor app answered {status}")
                done += 1
        finally:
            client.close()

    async def sample() -> None:
        while time.monotonic() < stop_at:
            samples.append(rss_mb(pid))
            await asyncio.sleep(1.0)

    await asyncio.gather(sample(), *(one(n) for n in range(clients)))
    return done


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    """``uvicorn bench.memory_floor:app``, one worker, as ``courier serve`` runs."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "FLOOR_DATABASE_URL": url, "PYTHONPATH": path}
    command = [sys.executable, "-m", "uvicorn", "bench.memory_floor:app", "--host=127.0.0.1"]
    command += [f"--port={port}", "--workers=1", "--log-level=warning", "--no-access-log"]
    return subprocess.Popen(command, cwd=REPO, env=env)


def remove_file(url: str) -> None:
    Path(url.split("///", 1)[1]).unlink(missing_ok=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="sqlite", help="PostgreSQL URL, or sqlite")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    from bench.pg import pg_admin
    from bench.processes import free_port
    from bench.wire import is_loopback

    raw = args.database_url
    created: str | None = None
    if raw.startswith("sqlite"):
        url = f"sqlite+aiosqlite:////tmp/memory-floor-{os.getpid()}.db"
    else:
        given = make_url(raw)
        host = given.host or "127.0.0.1"  # (as bench/pg.py's pg_admin connects)
        if not is_loopback(host):
            parser.error(f"the benchmarks talk to this machine only, not to {host}")
        created = f"courier_floor_{secrets.token_hex(4)}"
        await pg_admin(raw, f'CREATE DATABASE "{created}"')
        url = given.set(host=host, database=created).render_as_string(hide_password=False)
    process: subprocess.Popen[bytes] | None = None
    try:
        setup = create_async_engine(url)
        async with setup.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await setup.dispose()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = serve(url, port)
        await until_ready(process, base)
        ready = rss_mb(process.pid)
        samples: list[float] = []
        done = await drive(base, args.clients, args.minutes * 60, samples, process.pid)
        # (runs shorter than a minute: the last sample)
        minute = samples[min(60, len(samples) - 1)] if samples else float("nan")
        end = rss_mb(process.pid)
        print("| RSS MB once ready | after a minute | peak | end | minutes | requests |")
        print("|---|---|---|---|---|---|")
        print(
            f"| {ready:.1f} | {minute:.1f} | {max([*samples, end]):.1f} | {end:.1f} "
            f"| {args.minutes:g} | {done:,} |"
        )
    finally:
        if process is not None:
            stop(process)
        if created is not None:
            await pg_admin(raw, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')
        else:
            remove_file(url)


async def until_ready(process: subprocess.Popen[bytes], base: str) -> None:
    import httpx

    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base, timeout=2.0, trust_env=False) as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the floor app exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("the floor app did not become ready in 60 s")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


if __name__ == "__main__":
    asyncio.run(main())
