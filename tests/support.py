"""Helpers shared by several test modules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

# Bookkeeping that comes and goes independently of the request under test: the credential's
# last-used time (once a minute), the sniffer cache refresh (every few seconds), idempotency
# purges, job and replicator upkeep.
BOOKKEEPING = re.compile(r"\b(api_keys|sniffers|idempotency_keys|jobs|replicators)\b")


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
