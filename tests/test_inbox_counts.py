"""Unread counts as a second client sees them, through every change that moves them.

The communication summary (``GET /v1/communication-summaries/``) and the channel list's
``caller-new-message-count`` are both read from the seq counters (a channel's ``last_seq``, a
membership's ``ack_seq``); the providers' part of the summary from the messages of each unread
range. These tests pin what each change does to them, whatever computes them: a post (by
someone else, by the reader), an ack, a removal, archiving, unsubscribing and an author's
account type; and how many statements each read takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import Org, doc
from tests.support import count_queries
from tests.test_inbox_support import ack, channel, group_channel, individual, post, token

CHANNELS = "/v1/messaging-channels/"
SUMMARY = "/v1/communication-summaries/"


@dataclass
class Reader:
    """The patient, read through its own token: a second client beside the staff key that
    makes the changes."""

    id: str
    headers: dict[str, str]


async def summary(client: httpx.AsyncClient, reader: Reader, senders: bool = False) -> Any:
    params = {"include-senders": "true"} if senders else {}
    response = await client.get(SUMMARY, params=params, headers=reader.headers)
    assert response.status_code == 200, response.text
    return response.json()["summary"]


async def counts(client: httpx.AsyncClient, reader: Reader) -> dict[str, int]:
    """messages, group, direct and provider counts: the same with and without senders."""
    plain = await summary(client, reader)
    detailed = await summary(client, reader, senders=True)
    shown = {
        "messages": plain["messages"],
        "group": plain["message-types"][0]["count"],
        "direct": plain["message-types"][1]["count"],
        "providers": plain["provider-messages"],
    }
    assert {k: v for k, v in detailed.items() if k != "message-senders"} == plain
    assert sum(s["count"] for s in detailed["message-senders"]) == plain["messages"]
    return shown


async def listed(client: httpx.AsyncClient, reader: Reader) -> dict[str, int]:
    """The reader's channels with their unread counts, as its channel list shows them."""
    response = await client.get(CHANNELS, headers=reader.headers)
    assert response.status_code == 200, response.text
    return {
        item["id"]: item["attributes"]["caller-new-message-count"]
        for item in response.json()["data"]
    }


async def remove(client: httpx.AsyncClient, org: Org, message_id: str, author: str) -> None:
    response = await client.patch(
        f"/v1/messaging-messages/{message_id}/",
        json=doc("messaging-messages", {"individual-id": author, "removed": True}, message_id),
        headers=org.staff,
    )
    assert response.status_code == 200, response.text


async def channel_action(
    client: httpx.AsyncClient, org: Org, channel_id: str, name: str, body: dict[str, Any]
) -> None:
    response = await client.post(f"{CHANNELS}{channel_id}/{name}/", json=body, headers=org.staff)
    assert response.status_code == 201, response.text


async def test_unread_counts_through_every_change(client: httpx.AsyncClient, org: Org) -> None:
    patient = await individual(client, org, name="Pat")
    reader = Reader(patient, await token(client, org, patient))
    doctor = await individual(client, org, "provider", name="Doc")
    nurse = await individual(client, org, "provider", name="Nurse")
    neighbour = await individual(client, org, name="Quinn")
    direct = await channel(client, org, [patient, doctor])
    group = await channel(client, org, [patient, nurse, neighbour])
    nothing = {"messages": 0, "group": 0, "direct": 0, "providers": 0}
    assert await counts(client, reader) == nothing
    assert await listed(client, reader) == {direct: 0, group: 0}

    # Posts by others: unread, in their channel's kind; providers' counted as such.
    first = await post(client, org, direct, doctor, "results are in")
    second = await post(client, org, direct, doctor, "call me")
    hello = await post(client, org, group, neighbour, "hello")
    welcome = await post(client, org, group, nurse, "welcome")
    assert await counts(client, reader) == {"messages": 4, "group": 2, "direct": 2, "providers": 3}
    assert await listed(client, reader) == {direct: 2, group: 2}

    # An ack reads up to that message.
    await ack(client, org, first, patient)
    assert await counts(client, reader) == {"messages": 3, "group": 2, "direct": 1, "providers": 2}
    assert await listed(client, reader) == {direct: 1, group: 2}

    # The reader's own post reads everything before it, and is not unread itself.
    await post(client, org, direct, patient, "on my way")
    assert await counts(client, reader) == {"messages": 2, "group": 2, "direct": 0, "providers": 1}
    assert await listed(client, reader) == {direct: 0, group: 2}

    # A removed message kept its seq: it stays unread until read.
    await remove(client, org, welcome, nurse)
    assert await counts(client, reader) == {"messages": 2, "group": 2, "direct": 0, "providers": 1}
    assert await listed(client, reader) == {direct: 0, group: 2}

    # An author who becomes a provider: their unread messages count as providers' at once.
    became = await client.patch(
        f"/v1/individuals/{neighbour}/",
        json=doc("individuals", {"account-type": "provider"}, neighbour),
        headers=org.admin,
    )
    assert became.status_code == 200, became.text
    assert await counts(client, reader) == {"messages": 2, "group": 2, "direct": 0, "providers": 2}

    # An archived channel leaves the summary, not the channel list; unarchived, it is back.
    await channel_action(client, org, group, "archive", {})
    assert await counts(client, reader) == nothing
    assert await listed(client, reader) == {direct: 0, group: 2}
    await channel_action(client, org, group, "unarchive", {})
    assert (await counts(client, reader))["messages"] == 2

    # Acked up to the newest: nothing unread, whatever the senders.
    await ack(client, org, welcome, patient)
    assert await counts(client, reader) == nothing
    assert await summary(client, reader, senders=True) == {
        **(await summary(client, reader)),
        "message-senders": [],
    }

    # Unsubscribed from a channel with unread messages: they are no longer the reader's.
    await post(client, org, group, nurse, "one more")
    assert (await counts(client, reader))["messages"] == 1
    await channel_action(client, org, group, "unsubscribe", {"individual-ids": [patient]})
    assert await counts(client, reader) == nothing
    assert await listed(client, reader) == {direct: 0}
    assert hello and second  # (posted above: part of the ranges counted)


async def test_reads_take_a_fixed_number_of_statements(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """The summary without senders is one statement on the messaging tables (two with
    senders); a channel page is a fixed set of statements whatever its channels hold: a
    group's, one with a bookmark, ones with last messages."""
    patient = await individual(client, org)
    doctor = await individual(client, org, "provider")
    reader = Reader(patient, await token(client, org, patient))
    grouped = await group_channel(client, org, [patient, doctor])
    posted = await post(client, org, grouped, doctor, "team note")
    mark = await client.post(
        "/v1/messaging-bookmarks/",
        json=doc(
            "messaging-bookmarks",
            {"channel-id": grouped, "message-id": posted, "individual-id": patient},
        ),
        headers=org.staff,
    )
    assert mark.status_code == 201, mark.text
    for _ in range(3):
        more = await channel(client, org, [patient, doctor])
        await post(client, org, more, doctor)

    with count_queries(app, only="messaging_") as plain:
        assert (await summary(client, reader))["messages"] == 4
    with count_queries(app, only="messaging_") as detailed:
        assert (await summary(client, reader, senders=True))["messages"] == 4
    assert (len(plain), len(detailed)) == (1, 2)

    with count_queries(app) as page:
        response = await client.get(CHANNELS, headers=reader.headers)
    data = response.json()["data"]
    assert len(data) == 4
    shown = next(d["attributes"] for d in data if d["id"] == grouped)
    assert shown["individual-group"]["name"] == "Care team"
    assert shown["bookmark"]["message-id"] == posted
    assert shown["last-message"]["message"] == "team note"
    # The count, the page, subscribers, the group with its members and leaders, people, last
    # messages, bookmarks, the organization's preferences (both in one statement): no entity
    # loaded, none per channel.
    ran = [statement for statement in page if not statement.startswith("BEGIN")]
    assert len(ran) == 8, ran
