"""Aggregation requests: validated at once, computed by a job, right for a small scenario."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

import courier.domains.aggregations.jobs  # noqa: F401 (registers the handler)
from courier.core.time import format_timestamp
from courier.domains.aggregations.service import AGGREGATION_JOB
from courier.jobs import run_until_idle
from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber
from tests.conftest import Org, bearer, doc
from tests.factories import individual_token, make_individual_id

BASE = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


async def post(
    client: httpx.AsyncClient, headers: dict[str, str], entries: list[dict[str, Any]]
) -> httpx.Response:
    return await client.post(
        "/v1/aggregation-requests/",
        headers=headers,
        json=doc("aggregation-requests", {"entries": entries}),
    )


async def scenario(app: Any, org: Org, alice: str, bob: str, nurse: str) -> None:
    """Three channels, written as the messaging domain keeps them (seq counters, horizons).

    - ch1 (Alice, Bob): Alice #1 (t1), Bob #2 (t2), Bob #3 (t3), a draft of Alice's.
      Alice has read #1, Bob all.
    - ch2 (Alice): the nurse #1 (t4), Alice #2 removed (t5). Alice has read nothing.
    - ch3 (Alice), archived: 5 old messages by the nurse (t0); none read.
    """
    org_id = uuid.UUID(org.id)
    a, b, n = uuid.UUID(alice), uuid.UUID(bob), uuid.UUID(nurse)
    ch1 = MessagingChannel(id=uuid.uuid4(), organization_id=org_id, last_seq=3)
    ch2 = MessagingChannel(id=uuid.uuid4(), organization_id=org_id, last_seq=2)
    ch3 = MessagingChannel(id=uuid.uuid4(), organization_id=org_id, last_seq=5, archived=True)

    def message(channel: MessagingChannel, seq: int | None, author: uuid.UUID, **kw: Any) -> Any:
        return MessagingMessage(
            id=uuid.uuid4(),
            organization_id=org_id,
            channel_id=channel.id,
            seq=seq,
            individual_id=author,
            message="…",
            **kw,
        )

    rows: list[Any] = [
        ch1,
        ch2,
        ch3,
        MessagingSubscriber(organization_id=org_id, channel_id=ch1.id, individual_id=a, ack_seq=1),
        MessagingSubscriber(organization_id=org_id, channel_id=ch1.id, individual_id=b, ack_seq=3),
        MessagingSubscriber(organization_id=org_id, channel_id=ch2.id, individual_id=a, ack_seq=0),
        MessagingSubscriber(organization_id=org_id, channel_id=ch3.id, individual_id=a, ack_seq=0),
        message(ch1, 1, a, posted_time=at(1)),
        message(ch1, 2, b, posted_time=at(2)),
        message(ch1, 3, b, posted_time=at(3)),
        message(ch1, None, a, draft=True),
        message(ch2, 1, n, posted_time=at(4)),
        message(ch2, 2, a, posted_time=at(5), removed=True),
        *(message(ch3, seq, n, posted_time=at(0)) for seq in range(1, 6)),
    ]
    async with app.state.database.sessionmaker() as session:
        for row in rows:
            session.add(row)
            await session.flush()
        await session.commit()


async def test_aggregates_for_a_small_scenario(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    alice = await make_individual_id(client, org)
    bob = await make_individual_id(client, org)
    nurse = await make_individual_id(client, org, **{"account-type": "provider"})
    loner = await make_individual_id(client, org)
    await scenario(app, org, alice, bob, nurse)

    entries = [
        {"column": column, "individual-id": who}
        for who in (alice, bob, loner)
        for column in ("message-count", "unread-count", "last-contact-time", "channel-count")
    ]
    entries.append({"column": "message-count", "individual-id": alice})  # asked twice: once
    response = await post(client, org.staff, entries)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["type"] == "aggregation-requests"
    assert data["attributes"]["state"] == "queued"
    assert data["attributes"]["results"] is None
    ident = data["id"]
    queued = await client.get(f"/v1/aggregation-requests/{ident}/", headers=org.staff)
    assert queued.json()["data"]["attributes"]["state"] == "queued"

    await run_until_idle(app.state.database, app.state.settings, kinds=[AGGREGATION_JOB])

    shown = await client.get(f"/v1/aggregation-requests/{ident}/", headers=org.staff)
    assert shown.status_code == 200
    attributes = shown.json()["data"]["attributes"]
    assert attributes["state"] == "completed"
    assert attributes["completed-time"] is not None
    results = attributes["results"]
    assert [(r["individual-id"], r["column"]) for r in results] == [
        (e["individual-id"], e["column"]) for e in entries[:-1]
    ]
    values = {(r["individual-id"], r["column"]): r["value"] for r in results}
    assert values == {
        # Alice: one posted message (not the draft, not the removed one); unread 2 in ch1 and
        # 2 in ch2 (ch3 is archived); the newest message of hers or in her channels is the
        # nurse's at t4 (her own at t5 was removed).
        (alice, "message-count"): 1,
        (alice, "unread-count"): 4,
        (alice, "last-contact-time"): format_timestamp(at(4)),
        (alice, "channel-count"): 2,
        (bob, "message-count"): 2,
        (bob, "unread-count"): 0,
        (bob, "last-contact-time"): format_timestamp(at(3)),
        (bob, "channel-count"): 1,
        (loner, "message-count"): 0,
        (loner, "unread-count"): 0,
        (loner, "last-contact-time"): None,
        (loner, "channel-count"): 0,
    }


async def test_unknown_columns_and_foreign_individuals_are_refused(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    mine = await make_individual_id(client, org)
    theirs = await make_individual_id(client, other_org)
    unknown = await post(
        client,
        org.staff,
        [
            {"column": "message-count", "individual-id": mine},
            {"column": "shoe-size", "individual-id": mine},
        ],
    )
    assert unknown.status_code == 400
    body = unknown.json()
    assert body["message"] == [
        "entries[1].column 'shoe-size' is not one of: message-count, unread-count, "
        "last-contact-time, channel-count"
    ]
    assert body["errors"][0]["source"] == {"pointer": "/data/attributes/entries/1/column"}
    foreign = await post(client, org.staff, [{"column": "unread-count", "individual-id": theirs}])
    assert foreign.status_code == 404
    assert foreign.json()["errors"][0]["source"] == {
        "pointer": "/data/attributes/entries/0/individual-id"
    }
    assert (await post(client, org.staff, [])).status_code == 400
    malformed = await post(client, org.staff, [{"column": "unread-count", "individual-id": "x"}])
    assert malformed.status_code == 400
    extra = await post(
        client, org.staff, [{"column": "unread-count", "individual-id": mine, "colour": "red"}]
    )
    assert extra.status_code == 400


async def test_aggregation_access(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    mine = await make_individual_id(client, org)
    entries = [{"column": "channel-count", "individual-id": mine}]
    token = bearer(await individual_token(client, org, mine))
    assert (await post(client, org.readonly, entries)).status_code == 403
    assert (await post(client, token, entries)).status_code == 403
    created = await post(client, org.admin, entries)
    assert created.status_code == 201
    ident = created.json()["data"]["id"]
    path = f"/v1/aggregation-requests/{ident}/"
    assert (await client.get(path, headers=org.staff)).status_code == 200
    assert (await client.get(path, headers=other_org.admin)).status_code == 404
    assert (await client.get(path, headers=org.readonly)).status_code == 403
    assert (await client.get(path, headers=token)).status_code == 403
