"""The newest-100 read of a channel (issue 17, point 1): Core rows rendered straight to JSON,
in a fixed number of statements whatever the page holds.

A page of messages costs (besides SQLite's ``BEGIN``; the key lookup is cached):

1. the total, from the channel's seq counter (and the viewer's drafts);
2. the page (Core rows of the message columns);
3. their reactions;
4. the viewer's read horizon (with ``include-read-receipts``: every subscriber's);
5. the people they show (authors, reactors, readers) with their logins' names;
6. their attachments.

The attributes are MessageRead's (the tests' OpenAPI check validates every response).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Org
from tests.support import count_queries
from tests.test_attachments import attach
from tests.test_messaging import (
    MESSAGES,
    action,
    make_channel,
    make_individual,
    make_token,
    posted,
)

PAGE_STATEMENTS = 6


async def test_a_page_of_100_messages_costs_six_statements(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    alice = await make_individual(client, org, "Alice", "Patient")
    bob = await make_individual(client, org, "Bob", "Provider", **{"account-type": "provider"})
    channel = await make_channel(client, org, {"individual-ids": [alice, bob]})
    as_alice = await make_token(client, org, alice)
    as_bob = await make_token(client, org, bob)
    ids = []
    for n in range(101):
        author = as_alice if n % 2 else as_bob
        ids.append((await posted(client, author, channel["id"], f"message {n}"))["id"])
    for ident, who, kind in ((ids[-1], as_bob, "like"), (ids[-2], as_alice, "love")):
        reacted = await action(
            client, who, f"{MESSAGES}{ident}/add-reaction/", {"reaction-type": kind}
        )
        assert reacted.status_code == 201, reacted.text
    attachment, processed = await attach(client, as_alice, ids[-2], b"Take two tablets.\n")
    assert processed.status_code == 201, processed.text

    async def page(limit: int, **params: str) -> tuple[list[dict[str, Any]], list[str]]:
        query = {"channel-id": channel["id"], "individual-id": alice, "page[limit]": str(limit)}
        with count_queries(app) as statements:
            response = await client.get(MESSAGES, params={**query, **params}, headers=org.staff)
        assert response.status_code == 200, response.text
        return response.json()["data"], [s for s in statements if not s.startswith("BEGIN")]

    data, statements = await page(100)
    assert len(data) == 100
    assert len(statements) == PAGE_STATEMENTS, "\n".join(statements)
    assert [item["id"] for item in data] == ids[::-1][:100]  # newest first
    newest, second = data[0]["attributes"], data[1]["attributes"]  # Bob's, then Alice's
    assert [r["reaction-type"] for r in newest["reactions"]] == ["like"]
    assert newest["reactions"][0]["first-name"] == "Bob"
    assert newest["first-name"] == "Bob" and newest["user-type"] == "provider"
    assert [(r["individual-id"], r["reaction-type"]) for r in second["reactions"]] == [
        (alice, "love")
    ]
    assert [a["id"] for a in second["attachments"]] == [attachment]
    assert set(second["attachments"][0]) == {
        "content-size",
        "content-type",
        "filename",
        "id",
        "removed",
        "thumbnail",
        "url",
    }
    # Alice read up to her own last message, not Bob's after it.
    assert (newest["ack"], second["ack"]) == (False, True)
    assert newest["read-receipts"] == second["read-receipts"] == []

    # A smaller page, and one with read receipts, cost the same.
    assert len((await page(10))[1]) == PAGE_STATEMENTS
    data, statements = await page(100, **{"include-read-receipts": "true"})
    assert len(statements) == PAGE_STATEMENTS, "\n".join(statements)
    assert data[0]["attributes"]["read-receipts"] == []  # Bob's: Alice has not read it
    receipts = data[1]["attributes"]["read-receipts"]  # Alice's, read by Bob
    assert [r["individual-id"] for r in receipts] == [bob]
    assert receipts[0]["individual-first-name"] == "Bob" and receipts[0]["ack-time"]
