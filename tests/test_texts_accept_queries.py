"""How many SQL statements one text accept (``POST /v1/texts/``) costs: a guard against a
query per something creeping into the hot path (issue 11)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.conftest import Org
from tests.support import caches_listening, count_queries, statements_by_connection
from tests.test_texts_rate import make_number, new_phone, send

# The key's last use (once a minute) and the sniffers' cache: not the accept's.
UPKEEP = re.compile(r"\b(api_keys|sniffers|idempotency_keys|replicators)\b")


@contextmanager
def accept_statements(app: Any) -> Iterator[list[str]]:
    """Every statement of the connection that wrote the text (its send job's included, which
    :func:`count_queries` leaves out as bookkeeping), but the key's and sniffers' upkeep and
    ``BEGIN``. The list fills when the block ends."""
    statements: list[str] = []
    with statements_by_connection(app) as by_connection:
        yield statements
    for ran in by_connection.values():
        flat = [" ".join(s.split()) for s in ran]
        if any("INSERT INTO texts " in s for s in flat):
            statements.extend(s for s in flat if not UPKEEP.search(s) and not s.startswith("BEGIN"))


async def test_a_text_accept_costs_a_bounded_number_of_statements(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    number = await make_number(client, app, org, 1000.0)
    await caches_listening(app)
    await send(client, org, number, new_phone())  # warm-up
    with count_queries(app) as statements:
        await send(client, org, number, new_phone())
    # 12 on SQLite before issue 11's lean accept path (the account, the number and the opt-out
    # were three SELECTs), 10 with them in one. Now, SQLite: the account, number, opt-out and
    # time zone in one read, the delivery, its history row and the text (their send job is
    # bookkeeping here), the audit row, the events, the webhooks' interest, the number's send
    # slot (a read and a write), and SQLite's BEGIN IMMEDIATE. PostgreSQL: the read, the
    # audit row, the events, the interest and the jobs' NOTIFY (the one write of the text,
    # its delivery and job, and the slot's statement that moves the job, mention ``jobs``).
    bound = 5 if app.state.database.engine.dialect.name == "postgresql" else 10
    assert len(statements) <= bound, "\n\n".join(statements)


async def test_an_accept_reads_once_and_writes_its_rows_in_one_statement(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """All of the accept's statements, its send job's included: on PostgreSQL the text, its
    delivery, the delivery's first history row, the send job and the number's send slot are
    one statement; the 201 is built from what the request holds (no read of the text, its
    delivery or number after the one read)."""
    number = await make_number(client, app, org, 1000.0)
    await caches_listening(app)
    await send(client, org, number, new_phone())  # warm-up
    with accept_statements(app) as statements:
        text_id = await send(client, org, number, new_phone())
    postgresql = app.state.database.engine.dialect.name == "postgresql"
    listing = "\n\n".join(statements)
    reads = [s for s in statements if s.startswith("SELECT") and "FROM text" in s]
    assert len(reads) == (1 if postgresql else 2), listing  # SQLite: and the slot's read
    assert not [s for s in statements if re.search(r"FROM (texts|deliveries|jobs)\b", s)]
    writes = [s for s in statements if s.startswith(("INSERT", "UPDATE", "WITH"))]
    tables = ("texts", "deliveries", "delivery_events", "jobs")
    if postgresql:
        accepted = [s for s in writes if "INSERT INTO texts" in s]
        assert len(accepted) == 1, listing
        assert all(f"INSERT INTO {table} " in accepted[0] for table in tables), listing
        # The number's send slot is taken in that statement too, the job written to run
        # at it: no statement of its own, no UPDATE of the job just written.
        assert "UPDATE text_account_numbers" in accepted[0], listing
        assert not [s for s in writes if "UPDATE jobs" in s], listing
        assert len([s for s in writes if "UPDATE text_account_numbers" in s]) == 1, listing
        # the read, the rows with the slot, and audit + events + NOTIFY
        assert len(statements) <= 3, listing
    else:
        for table in tables:
            assert len([s for s in writes if s.startswith(f"INSERT INTO {table} ")]) == 1, listing
        # the read, 4 rows, audit, events, the interest, the slot's read and write
        assert len(statements) <= 10, listing
    got = await client.get(f"/v1/texts/{text_id}/", headers=org.admin)
    assert got.status_code == 200, got.text
    assert got.json()["data"]["attributes"]["status"] in {"accepted", "queued", "sending"}
