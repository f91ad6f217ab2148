"""Many people posting and reading in one channel at once: seqs and horizons stay exact."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from courier.core.tenancy import unscoped
from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber
from tests.conftest import Org, doc
from tests.test_messaging import (
    CHANNELS,
    MESSAGES,
    make_channel,
    make_individual,
    make_token,
    unread,
)

CLIENTS = 50


async def stored(app: Any, channel_id: str) -> tuple[MessagingChannel, list[Any], list[Any]]:
    ident = uuid.UUID(channel_id)
    async with app.state.database.sessionmaker() as session:
        channel = (
            await session.execute(
                unscoped(select(MessagingChannel).where(MessagingChannel.id == ident), "test")
            )
        ).scalar_one()
        messages = (
            await session.execute(
                unscoped(
                    select(MessagingMessage).where(MessagingMessage.channel_id == ident), "test"
                )
            )
        ).scalars()
        subscribers = (
            await session.execute(
                unscoped(
                    select(MessagingSubscriber).where(MessagingSubscriber.channel_id == ident),
                    "test",
                )
            )
        ).scalars()
        return channel, list(messages), list(subscribers)


def clients(app: Any, count: int) -> list[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    return [
        httpx.AsyncClient(transport=transport, base_url="http://courier.test") for _ in range(count)
    ]


async def test_concurrent_posts_and_acks_keep_seqs_and_horizons_exact(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    writers = [
        await make_individual(
            client, org, f"Writer{i}", "W", **({"account-type": "provider"} if i < 2 else {})
        )
        for i in range(5)
    ]
    observer = await make_individual(client, org, "Quiet", "Observer")
    channel = (await make_channel(client, org, {"individual-ids": [*writers, observer]}))["id"]
    tokens = {w: await make_token(client, org, w) for w in writers}
    seen: dict[str, list[int]] = {w: [] for w in writers}  # seqs each writer posted or acked

    async def converse(http: httpx.AsyncClient, index: int) -> None:
        writer = writers[index % len(writers)]
        headers = tokens[writer]
        response = await http.post(
            MESSAGES,
            json=doc("messaging-messages", {"channel-id": channel, "message": f"note {index}"}),
            headers=headers,
        )
        assert response.status_code == 201, response.text
        seen[writer].append(response.json()["data"]["attributes"]["seq"])
        newest = await http.get(
            MESSAGES, headers=headers, params={"channel-id": channel, "page[limit]": "1"}
        )
        assert newest.status_code == 200, newest.text
        target = newest.json()["data"][0]
        acked = await http.post(f"{MESSAGES}{target['id']}/ack/", json={}, headers=headers)
        assert acked.status_code == 201, acked.text
        assert acked.json()["data"]["attributes"]["ack"] is True
        seen[writer].append(target["attributes"]["seq"])

    pool = clients(app, CLIENTS)
    try:
        await asyncio.gather(*(converse(http, i) for i, http in enumerate(pool)))
    finally:
        await asyncio.gather(*(http.aclose() for http in pool))

    # Seqs: unique, contiguous, and the channel's counter says how many.
    listing = await client.get(
        MESSAGES, headers=org.staff, params={"channel-id": channel, "page[limit]": "1000"}
    )
    seqs = [m["attributes"]["seq"] for m in listing.json()["data"]]
    assert seqs == list(range(CLIENTS, 0, -1))
    stored_channel, stored_messages, subscribers = await stored(app, channel)
    assert stored_channel.last_seq == CLIENTS
    by_seq = {m.seq: m for m in stored_messages}
    assert stored_channel.last_message_id == by_seq[CLIENTS].id
    # The observer read nothing: every message is unread for them.
    observer_token = await make_token(client, org, observer)
    assert await unread(client, observer_token, channel) == CLIENTS

    # Horizons: each writer's is the newest seq they posted or acked, never lower.
    horizons = {str(s.individual_id): s for s in subscribers}
    for writer in writers:
        expected = max(seen[writer])
        assert horizons[writer].ack_seq == expected
        assert horizons[writer].ack_message_id == by_seq[expected].id
        assert await unread(client, tokens[writer], channel) == CLIENTS - expected
    assert horizons[observer].ack_seq == 0

    # Receipts agree with the horizons, message by message.
    for message in stored_messages:
        receipts = await client.get(f"{MESSAGES}{message.id}/get-receipts/", headers=org.staff)
        read = {r["individual-id"] for r in receipts.json()["read"]}
        unread_ids = {r["individual-id"] for r in receipts.json()["unread"]}
        others = {w for w in [*writers, observer] if w != str(message.individual_id)}
        assert read | unread_ids == others and not read & unread_ids
        assert read == {w for w in others if horizons[w].ack_seq >= message.seq}


async def test_concurrent_group_provider_acks_never_deadlock(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    response = await client.post(
        "/v1/org-preferences/",
        json=doc(
            "org-preferences", {"name": "group-provider-ack", "type": "json", "value-js": True}
        ),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    providers = [
        await make_individual(client, org, f"Doc{i}", "D", **{"account-type": "provider"})
        for i in range(3)
    ]
    patient = await make_individual(client, org, "Pat", "P")
    channel = (await make_channel(client, org, {"individual-ids": [*providers, patient]}))["id"]
    tokens = {p: await make_token(client, org, p) for p in [*providers, patient]}
    ids = []
    for i in range(20):
        created = await client.post(
            MESSAGES,
            json=doc("messaging-messages", {"channel-id": channel, "message": f"question {i}"}),
            headers=tokens[patient],
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["data"]["id"])
    rng = random.Random(7)
    picks = [(providers[i % 3], rng.randrange(20)) for i in range(30)]

    async def ack(http: httpx.AsyncClient, provider: str, index: int) -> None:
        response = await http.post(
            f"{MESSAGES}{ids[index]}/ack/", json={}, headers=tokens[provider]
        )
        assert response.status_code == 201, response.text

    pool = clients(app, len(picks))
    try:
        await asyncio.gather(*(ack(http, p, i) for http, (p, i) in zip(pool, picks, strict=True)))
    finally:
        await asyncio.gather(*(http.aclose() for http in pool))

    newest_acked = max(index for _, index in picks) + 1  # seqs start at 1
    for provider in providers:
        assert await unread(client, tokens[provider], channel) == 20 - newest_acked
    assert await unread(client, tokens[patient], channel) == 0
    view = await client.get(f"{CHANNELS}{channel}/", headers=org.staff)
    assert view.json()["data"]["attributes"]["last-message"]["id"] == ids[-1]


async def test_concurrent_subscribes_and_unsubscribes_keep_the_subscriber_count_exact(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """Many clients subscribing and unsubscribing people of one channel at once (each its own
    person, several times, and posts between): the channel's ``subscriber_count`` ends equal to
    its memberships."""
    owner = await make_individual(client, org, "Owner", "O", **{"account-type": "provider"})
    people = [await make_individual(client, org, f"Guest{i}", "G") for i in range(8)]
    channel = (await make_channel(client, org, {"individual-ids": [owner, *people[:4]]}))["id"]

    async def churn(http: httpx.AsyncClient, index: int) -> None:
        person = people[index % len(people)]
        steps = ["subscribe", "unsubscribe", "subscribe"] if index % 2 else ["unsubscribe"]
        for step in steps:
            response = await http.post(
                f"{CHANNELS}{channel}/{step}/",
                json={"individual-ids": [person]},
                headers=org.staff,
            )
            assert response.status_code == 201, response.text
            posted = await http.post(
                MESSAGES,
                json=doc(
                    "messaging-messages",
                    {"channel-id": channel, "individual-id": owner, "message": f"{step} {index}"},
                ),
                headers=org.staff,
            )
            assert posted.status_code == 201, posted.text

    pool = clients(app, len(people))
    try:
        await asyncio.gather(*(churn(http, i) for i, http in enumerate(pool)))
    finally:
        await asyncio.gather(*(http.aclose() for http in pool))

    stored_channel, _messages, subscribers = await stored(app, channel)
    assert stored_channel.subscriber_count == len(subscribers)
    expected = {owner, *(p for i, p in enumerate(people) if i % 2)}
    assert {str(s.individual_id) for s in subscribers} == expected
