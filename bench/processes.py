"""Courier's processes for the benchmarks: a free loopback port, and ``courier <args>`` started
with the benchmark's settings only (none of the caller's ``COURIER_`` environment)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn_courier(
    args: list[str], settings: Mapping[str, str], repo: Path = REPO
) -> subprocess.Popen[bytes]:
    """``python -m courier.cli <args>`` from checkout ``repo`` (default: this one), quiet, with
    ``settings`` (names such as ``COURIER_DATABASE_URL``) as its only Courier settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURIER_")}
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-m", "courier.cli", *args],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def serve_args(port: int, workers: int) -> list[str]:
    """``courier serve`` on loopback ``port`` with ``workers`` processes (migrated already)."""
    return ["serve", "--host=127.0.0.1", f"--port={port}", f"--workers={workers}", "--no-migrate"]


def stop(*processes: subprocess.Popen[bytes]) -> None:
    """SIGTERM each, then SIGKILL what has not ended within 30 s."""
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


async def timed_post(
    application: Any, path: str, body: dict[str, Any], secret: str
) -> tuple[float, float, Any]:
    """``POST path`` with ``body`` to ``application`` through ASGI (its lifespan started for
    the request), as the API key ``secret``: when it was sent, when answered, and the
    response, raising unless 201."""
    import httpx

    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            started = time.perf_counter()
            response = await http.post(
                path, json=body, headers={"Authorization": f"Bearer {secret}"}
            )
            answered = time.perf_counter()
    if response.status_code != 201:
        raise RuntimeError(f"{response.status_code}: {response.text}")
    return started, answered, response
