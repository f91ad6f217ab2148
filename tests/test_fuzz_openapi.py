"""The standing schemathesis suite (issue 10, point 8): every operation of the OpenAPI document,
positive and negative, every check, against a real ``courier serve`` on 127.0.0.1 with a seeded
organization and its admin key, on the database of the run (SQLite, or PostgreSQL with
``COURIER_TEST_DATABASE_URL``). Any 5xx or any response the document does not describe fails.

Schemathesis 4 runs every check by default (``--checks all``); the exceptions in
``tests/fuzz/schemathesis.toml``, each with its reason, turn single checks off for single
operations. Bounded in time: ``COURIER_FUZZ_SECONDS`` (default 60) caps the run; the seed is
fixed (``COURIER_FUZZ_SEED``, default 1) so a failure reproduces. To explore more:
``COURIER_FUZZ_SECONDS=600 COURIER_FUZZ_EXAMPLES=50``; the whole report is written to the
test's temporary directory (``schemathesis.txt``). ``COURIER_FUZZ_OPERATIONS`` (a regular
expression over operation ids) narrows a run to some routes, e.g. the ones a change touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import MASTER_KEY, doc
from tests.support import PROCESS_POOL
from tests.test_server_process import _free_port, _wait_ready

CONFIG = Path(__file__).resolve().parent / "fuzz" / "schemathesis.toml"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        **PROCESS_POOL,
        "COURIER_DATABASE_URL": database_url,  # the run's database, already migrated
        "COURIER_DATA_DIR": str(tmp_path / "data"),
        "COURIER_MASTER_KEY": MASTER_KEY,
        "COURIER_RUN_WORKER": "false",
        "COURIER_AUTO_MIGRATE": "false",
        "COURIER_RATE_LIMIT": "1000000/minute",
        "COURIER_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "courier.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process)
        # A served worker builds its document on the first request for it, in a process of
        # its own (a few seconds, more on a busy machine); schemathesis gives up after 10 s.
        assert httpx.get(base + "/openapi.json", timeout=120).status_code == 200
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _seed(base: str, master_key: str = MASTER_KEY) -> str:
    """A fresh organization with an admin key, an individual and a channel; the key's secret."""
    master = {"Authorization": f"Bearer {master_key}"}
    with httpx.Client(base_url=base) as http:
        org = http.post(
            "/v1/organizations/", json=doc("organizations", {"name": "Fuzz"}), headers=master
        )
        assert org.status_code == 201, org.text
        org_id = org.json()["data"]["id"]
        key = http.post(
            "/v1/api-keys/",
            json=doc("api-keys", {"name": "fuzz", "role": "admin", "organization-id": org_id}),
            headers=master,
        )
        assert key.status_code == 201, key.text
        secret: str = key.json()["data"]["attributes"]["secret"]
        admin = {"Authorization": f"Bearer {secret}"}
        person = http.post(
            "/v1/individuals/",
            json=doc("individuals", {"first-name": "Ada", "last-name": "Fuzz"}),
            headers=admin,
        )
        assert person.status_code == 201, person.text
        channel = http.post(
            "/v1/messaging-channels/",
            json=doc(
                "messaging-channels",
                {"name": "Fuzz", "individual-ids": [person.json()["data"]["id"]]},
            ),
            headers=admin,
        )
        assert channel.status_code == 201, channel.text
    return secret


def test_schemathesis_every_operation(server: str, tmp_path: Path) -> None:
    secret = _seed(server)
    seconds = os.environ.get("COURIER_FUZZ_SECONDS", "60")
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{server}/openapi.json",
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        "--max-examples",
        os.environ.get("COURIER_FUZZ_EXAMPLES", "5"),
        "--max-time",
        seconds,
        "--seed",
        os.environ.get("COURIER_FUZZ_SEED", "1"),
        "--workers",
        "1",  # CPython 3.11's ast module is not thread-safe; hypothesis parses lambdas with it
        "--request-timeout",
        "20",
        "--header",
        f"Authorization: Bearer {secret}",
    ]
    only = os.environ.get("COURIER_FUZZ_OPERATIONS")
    if only:
        command += ["--include-operation-id-regex", only]
    result = subprocess.run(
        command,
        cwd=tmp_path,  # schemathesis' own cache and reports stay in the test's directory
        capture_output=True,
        text=True,
        timeout=int(seconds) + 120,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",  # real phone numbers and time zones
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        },
    )
    report = result.stdout.replace(secret, "[admin key]")
    (tmp_path / "schemathesis.txt").write_text(report + result.stderr, encoding="utf-8")
    assert result.returncode == 0, report[-20000:] + result.stderr[-3000:]
