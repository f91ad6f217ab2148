"""The real `courier serve` process, over a real socket: migrations on start, conventions,
graceful shutdown on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import MASTER_KEY
from tests.support import PROCESS_POOL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes], deadline: float = 60) -> None:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise AssertionError(f"courier serve exited early with {process.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("courier serve did not become ready")


def test_courier_serve_over_a_socket(tmp_path: Path, database_url: str) -> None:
    port = _free_port()
    env = {
        **os.environ,
        **PROCESS_POOL,
        "COURIER_DATA_DIR": str(tmp_path / "data"),
        "COURIER_MASTER_KEY": MASTER_KEY,
        "COURIER_RUN_WORKER": "false",
    }
    if database_url.startswith("postgresql"):
        env["COURIER_DATABASE_URL"] = database_url
    else:
        env.pop("COURIER_DATABASE_URL", None)  # the embedded default: a SQLite file in the data dir
    process = subprocess.Popen(
        [sys.executable, "-m", "courier.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        if not database_url.startswith("postgresql"):
            assert (tmp_path / "data" / "courier.db").exists()
        anonymous = httpx.get(base + "/v1/organizations/")
        assert anonymous.status_code == 401
        assert anonymous.json()["statusCode"] == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        created = httpx.post(
            base + "/v1/organizations",
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
            json={"data": {"type": "organizations", "attributes": {"name": "Socket Clinic"}}},
        )
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    # uvicorn finishes its graceful shutdown, then re-raises SIGTERM (exit by that signal).
    assert process.returncode in (0, -signal.SIGTERM), err.decode()[-2000:]
    assert "Application shutdown complete." in err.decode()
    # Structured logs: one JSON object per line, with the request id and no bodies.
    log_lines = [line for line in err.decode().splitlines() if '"courier.access"' in line]
    assert any('"route": "/v1/organizations/"' in line for line in log_lines)
    assert all("Socket Clinic" not in line for line in err.decode().splitlines())
