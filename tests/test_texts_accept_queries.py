"""How many SQL statements one text accept (``POST /v1/texts/``) costs: a guard against a
query per something creeping into the hot path (issue 11)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Org
from tests.support import count_queries
from tests.test_texts_rate import make_number, new_phone, send


async def test_a_text_accept_costs_a_bounded_number_of_statements(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    number = await make_number(client, app, org, 1000.0)
    await send(client, org, number, new_phone())  # warm-up
    with count_queries(app) as statements:
        await send(client, org, number, new_phone())
    # 12 on SQLite before issue 11's lean accept path (the account, the number and the opt-out
    # were three SELECTs): the account, number and opt-out in one, the text, its delivery and
    # history, the audit row, the events, the webhooks' interest, the number's send slot (one
    # statement on PostgreSQL, a read and a write on SQLite), and SQLite's BEGIN IMMEDIATE.
    # Bookkeeping (the key's last use, the send job) is not counted.
    assert len(statements) <= 10, "\n\n".join(statements)
