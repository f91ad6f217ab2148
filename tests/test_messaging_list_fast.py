"""The newest-100 read of a channel (issue 17, point 1): Core rows rendered straight to JSON,
in a fixed number of statements whatever the page holds.

A page of messages costs (besides SQLite's ``BEGIN``; the key lookup is cached):

1. the page (Core rows of the message columns) with the total, from the channel's seq counter
   (and the viewer's drafts), and the viewer's read horizon (a statement built once);
2. their reactions;
3. the people they show (authors, reactors, readers) with their logins' names;
4. their attachments;

and with ``include-read-receipts`` every subscriber's horizon. An empty page asks for the total
alone after it.

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
    patch_message,
    posted,
)

PAGE_STATEMENTS = 4


async def test_a_page_of_100_messages_costs_four_statements(
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

    # A smaller page costs the same; read receipts one more (every horizon).
    assert len((await page(10))[1]) == PAGE_STATEMENTS
    data, statements = await page(100, **{"include-read-receipts": "true"})
    assert len(statements) == PAGE_STATEMENTS + 1, "\n".join(statements)  # every horizon
    assert data[0]["attributes"]["read-receipts"] == []  # Bob's: Alice has not read it
    receipts = data[1]["attributes"]["read-receipts"]  # Alice's, read by Bob
    assert [r["individual-id"] for r in receipts] == [bob]
    assert receipts[0]["individual-first-name"] == "Bob" and receipts[0]["ack-time"]


def _comparable(attributes: dict[str, Any]) -> list[tuple[str, Any]]:
    """A message's attributes in their order, attachments without their signed links (which
    carry the time they were signed)."""
    items = []
    for key, value in attributes.items():
        if key == "attachments":
            value = [{k: v for k, v in a.items() if k not in ("url", "thumbnail")} for a in value]
        items.append((key, value))
    return items


async def test_a_page_shows_each_message_as_getting_it_does(
    client: httpx.AsyncClient, org: Org
) -> None:
    """The list's page (one statement built once; on PostgreSQL its times formatted by the
    database) shows every message exactly as getting that message does (loaded objects, times
    formatted in Python): same keys in the same order, same values; drafts, removed messages,
    reactions, attachments, phrases, both orders, and a page past the end with its total."""
    alice = await make_individual(client, org, "Alice", "Patient")
    bob = await make_individual(client, org, "Bob", "Provider", **{"account-type": "provider"})
    channel = await make_channel(client, org, {"individual-ids": [alice, bob]})
    as_alice = await make_token(client, org, alice)
    as_bob = await make_token(client, org, bob)
    ids = [(await posted(client, as_bob, channel["id"], f"message {n}"))["id"] for n in range(4)]
    ids.append((await posted(client, as_alice, channel["id"], "a draft", draft=True))["id"])
    removed = await patch_message(client, as_bob, ids[1], {"removed": True})
    assert removed.status_code == 200, removed.text
    reaction = {"reaction-type": "wow"}
    reacted = await action(client, as_alice, f"{MESSAGES}{ids[2]}/add-reaction/", reaction)
    assert reacted.status_code == 201, reacted.text
    _, processed = await attach(client, as_bob, ids[3], b"Results attached.\n")
    assert processed.status_code == 201, processed.text

    async def listed(headers: dict[str, str], **params: str) -> dict[str, Any]:
        query = {"channel-id": channel["id"], **params}
        response = await client.get(MESSAGES, params=query, headers=headers)
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    async def got(headers: dict[str, str], ident: str, **params: str) -> dict[str, Any]:
        response = await client.get(f"{MESSAGES}{ident}/", params=params, headers=headers)
        assert response.status_code == 200, response.text
        attributes: dict[str, Any] = response.json()["data"]["attributes"]
        return attributes

    for headers, params in (
        (as_alice, {}),
        (as_alice, {"sort": "seq", "include-phrases": "true"}),
        (org.staff, {"individual-id": bob}),
        (org.staff, {}),
    ):
        document = await listed(headers, **params)
        data = document["data"]
        draft_seen = headers is as_alice
        assert len(data) == document["meta"]["page[total]"] == 4 + draft_seen
        assert [item["id"] for item in data][:: 1 if "sort" in params else -1][:4] == ids[:4]
        shown = {name: value for name, value in params.items() if name != "sort"}
        for item in data:
            expected = await got(headers, item["id"], **shown)
            assert _comparable(item["attributes"]) == _comparable(expected)
        by_id = {item["id"]: item["attributes"] for item in data}
        assert [a["filename"] for a in by_id[ids[3]]["attachments"]] == ["file.bin"]
        assert [r["reaction-type"] for r in by_id[ids[2]]["reactions"]] == ["wow"]
        assert by_id[ids[1]]["removed"] is True and by_id[ids[1]]["message"] == ""

    past = await listed(as_alice, **{"page[offset]": "10"})
    assert past["data"] == [] and past["meta"]["page[total]"] == 5
    assert past["meta"]["pagination"]["hasMore"] is False


async def test_the_database_formats_times_as_the_api_does(app: Any) -> None:
    """On PostgreSQL a page's times are the database's text: the same as format_timestamp's
    for every time (milliseconds truncated, years below 1000 padded)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import bindparam, select

    from courier.core.time import format_timestamp
    from courier.domains.messaging.repository import _time_text
    from courier.models.base import UTCDateTime

    engine = app.state.database.engine
    if engine.dialect.name != "postgresql":
        return  # SQLite's page brings times, formatted in Python
    times = [
        datetime(2026, 12, 5, 21, 0, 0, 999999, tzinfo=UTC),
        datetime(2026, 12, 5, 21, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 5, 21, 0, 0, 1000, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999500, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
        datetime(1, 1, 2, tzinfo=UTC),
        datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=UTC),
    ]
    times += [times[0] + timedelta(microseconds=7919 * n, hours=n) for n in range(200)]
    column = bindparam("t", type_=UTCDateTime())
    async with engine.connect() as connection:
        for value in times:
            text = (
                await connection.execute(select(_time_text(column, True)), {"t": value})
            ).scalar()
            assert text == format_timestamp(value), value
