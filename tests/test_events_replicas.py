"""Two real `courier serve` processes on one PostgreSQL database: an event caused through one
reaches an event stream held open on the other (LISTEN/NOTIFY, with the poll as a safety net)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import MASTER_KEY, doc
from tests.support import PROCESS_POOL
from tests.test_events_stream import EventParser, ServerSentEvent

DEADLINE = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Replica:
    base: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def courier_serve(database_url: str, workdir: Path) -> Iterator[Replica]:
    port = _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **PROCESS_POOL,
        "COURIER_DATABASE_URL": database_url,
        "COURIER_DATA_DIR": str(workdir / "data"),
        "COURIER_MASTER_KEY": MASTER_KEY,
        "COURIER_RUN_WORKER": "false",
        "COURIER_AUTO_MIGRATE": "false",
        "COURIER_LOG_LEVEL": "WARNING",
    }
    log_path = workdir / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "courier.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        stop = time.monotonic() + DEADLINE
        while True:
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < stop, "courier serve did not become ready"
            try:
                if httpx.get(base + "/readyz", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield Replica(base, process, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_an_event_caused_on_one_replica_reaches_a_stream_on_another(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database; SQLite is one process")
    with (
        courier_serve(database_url, tmp_path / "a") as replica_a,
        courier_serve(database_url, tmp_path / "b") as replica_b,
        httpx.Client(timeout=DEADLINE, trust_env=False) as http,
    ):
        master = {"Authorization": f"Bearer {MASTER_KEY}"}
        org = http.post(
            replica_b.base + "/v1/organizations/",
            headers=master,
            json=doc("organizations", {"name": "Replica Clinic"}),
        )
        assert org.status_code == 201, org.text
        org_id = org.json()["data"]["id"]
        key = http.post(
            replica_b.base + "/v1/api-keys/",
            headers=master,
            json=doc("api-keys", {"name": "admin", "role": "admin", "organization-id": org_id}),
        )
        assert key.status_code == 201, key.text
        admin = {"Authorization": f"Bearer {key.json()['data']['attributes']['secret']}"}

        with http.stream(
            "GET",
            replica_a.base + "/v1/events/",
            headers={**admin, "Accept": "text/event-stream"},
            params={"filter[type]": "api-keys"},
        ) as stream:
            assert stream.status_code == 200
            parser = EventParser()
            lines = stream.iter_lines()
            while "connected" not in parser.comments:
                assert parser.feed(next(lines)) is None
            created = http.post(
                replica_b.base + "/v1/api-keys/",
                headers=admin,
                json=doc("api-keys", {"name": "from b", "role": "readonly"}),
            )
            assert created.status_code == 201, created.text
            event: ServerSentEvent = next(iter(parser.parse(lines)))
            assert event.event == "api-keys.created"
            assert event.json["resource-id"] == created.json()["data"]["id"]

            # Stopping a replica ends its streams at once, so it need not wait out uvicorn's
            # graceful-shutdown timeout; the client reconnects elsewhere with Last-Event-ID.
            replica_a.process.send_signal(signal.SIGTERM)
            rest = list(parser.parse(lines))
        assert rest == []
        assert replica_a.process.wait(timeout=DEADLINE) in (0, -signal.SIGTERM)
        assert "graceful shutdown exceeded" not in replica_a.log.read_text()
