"""How many SQL statements one message post costs (issue 9: before/after the split)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Org
from tests.support import count_queries
from tests.test_messaging import make_channel, make_individual, make_token, post


async def post_statements(client: httpx.AsyncClient, org: Org, app: Any) -> list[str]:
    alice = await make_individual(client, org, "Alice", "Patient")
    bob = await make_individual(client, org, "Bob", "Patient")
    channel = await make_channel(client, org, {"individual-ids": [alice, bob]})
    as_alice = await make_token(client, org, alice)
    first = await post(client, as_alice, channel["id"], "warm-up")
    assert first.status_code == 201, first.text
    with count_queries(app) as statements:
        response = await post(client, as_alice, channel["id"], "How is my knee?")
    assert response.status_code == 201, response.text
    return statements


async def test_a_message_post_costs_a_bounded_number_of_statements(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    statements = await post_statements(client, org, app)
    # 16 before the messaging split and after it (issue 9); a guard against a query per
    # something creeping into the hot path.
    assert len(statements) <= 16, "\n".join(statements)
