"""A real `courier serve` and a real `courier worker` over one database, a local receiver for
callbacks, and helpers for the SMS tests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.conftest import MASTER_KEY
from tests.support import process_env

REPO = Path(__file__).resolve().parent.parent
DEADLINE = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers 200."""

    url: str = ""
    posts: list[Received] = field(default_factory=list)

    def signed_by(self, secret: str, post: Received) -> bool:
        stamp = post.headers.get("courier-timestamp", "")
        expected = (
            "v1="
            + hmac.new(
                secret.encode(), stamp.encode() + b"." + post.body, hashlib.sha256
            ).hexdigest()
        )
        return hmac.compare_digest(expected, post.headers.get("courier-signature", ""))


def start_receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.posts.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Courier:
    """`courier serve` (no embedded worker) and `courier worker` processes."""

    database_url: str
    data_dir: Path
    logs: Path
    settings: dict[str, str]
    base: str = ""
    processes: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)
    # On SQLite: whether the processes share the test's database file (else a copy)
    share_sqlite_file: bool = False

    def __post_init__(self) -> None:
        # On SQLite the processes get a database file of their own, a consistent copy of the
        # session's migrated one (SQLite's backup API reads beside any writer): a transaction
        # the in-process app of earlier tests holds cannot stall their start, and their load
        # cannot stall later tests. PostgreSQL serves everyone concurrently.
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix) and not self.share_sqlite_file:
            source = sqlite3.connect(self.database_url[len(prefix) :], timeout=60)
            copy = self.logs / "courier.db"
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
            self.database_url = prefix + str(copy)

    def env(self) -> dict[str, str]:
        env = process_env()
        env.update(
            COURIER_DATABASE_URL=self.database_url,
            COURIER_DATA_DIR=str(self.data_dir),
            COURIER_MASTER_KEY=MASTER_KEY,
            COURIER_RUN_WORKER="false",
            COURIER_AUTO_MIGRATE="false",
            COURIER_WEBHOOK_ALLOW_PRIVATE="true",
            COURIER_RATE_LIMIT="1000000/minute",
            COURIER_PUBLIC_URL=self.base,
            COURIER_SANDBOX_DELAY_SECONDS="0.05",
            COURIER_JOB_BACKOFF_BASE_SECONDS="0.2",
            COURIER_JOB_BACKOFF_MAX_SECONDS="1",
            PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        )
        env.update({f"COURIER_{k.upper()}": v for k, v in self.settings.items()})
        return env

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = self.logs / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "courier.cli", *args],
                cwd=REPO,
                env=self.env(),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes.append((process, log))
        return process

    def serve(self, port: int | None = None) -> None:
        """Start `courier serve` on ``port`` (a free one by default: a test that must tell
        another server where Courier will be picks it first)."""
        port = port or free_port()
        self.base = f"http://127.0.0.1:{port}"
        process = self._spawn("serve", ["serve", "--port", str(port)])
        stop = time.monotonic() + DEADLINE
        while time.monotonic() < stop:
            assert process.poll() is None, "courier serve exited:\n" + self.log(process)
            try:
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        output = self.log(process)
        self.stop()  # nothing is left running behind a failed start
        raise AssertionError("courier serve did not become ready:\n" + output)

    def worker(self, concurrency: int = 4) -> subprocess.Popen[bytes]:
        return self._spawn("worker", ["worker", f"--concurrency={concurrency}"])

    def log(self, process: subprocess.Popen[bytes]) -> str:
        for started, log in self.processes:
            if started is process:
                return log.read_text(errors="replace")[-4000:]
        return ""

    def logs_text(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-3000:] for _p, log in self.processes)

    def stop(self) -> None:
        for process, _log in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _log in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def until(check: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def doc(type_name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": type_name, "attributes": attributes}}


def new_org(http: httpx.Client) -> dict[str, str]:
    """An organization and its admin key, over HTTP."""
    created = http.post(
        "/v1/organizations/",
        json=doc("organizations", {"name": "SMS Clinic", "timezone": "America/New_York"}),
        headers=bearer(MASTER_KEY),
    )
    assert created.status_code == 201, created.text
    org = created.json()["data"]["id"]
    key = http.post(
        "/v1/api-keys/",
        json=doc("api-keys", {"name": "admin", "role": "admin", "organization-id": org}),
        headers=bearer(MASTER_KEY),
    )
    assert key.status_code == 201, key.text
    return {"org": org, **bearer(key.json()["data"]["attributes"]["secret"])}


@asynccontextmanager
async def another_process(
    database_url: str, data_dir: Path, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A separate ``courier serve`` on the test's database (on SQLite, the same file), and a
    client of it."""
    courier = Courier(database_url, data_dir, tmp_path, {}, share_sqlite_file=True)
    await asyncio.to_thread(courier.serve)
    try:
        async with httpx.AsyncClient(base_url=courier.base, timeout=30) as process:
            yield process
    finally:
        await asyncio.to_thread(courier.stop)
