"""Helpers shared by several test modules."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

# Bookkeeping that comes and goes independently of the request under test: the credential's
# last-used time (once a minute), the sniffer cache refresh (every few seconds), idempotency
# purges, job and replicator upkeep.
BOOKKEEPING = re.compile(r"\b(api_keys|sniffers|idempotency_keys|jobs|replicators)\b")

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


@contextmanager
def count_queries(app: Any, only: str | None = None) -> Iterator[list[str]]:
    """Collect the SQL statements the app runs inside the block (bookkeeping excluded);
    with ``only``, just the statements that mention it (e.g. a table-name prefix)."""
    statements: list[str] = []
    engine = app.state.database.engine.sync_engine

    def record(*args: Any) -> None:
        statement = str(args[2])
        if BOOKKEEPING.search(statement):
            return
        if only is None or only in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
