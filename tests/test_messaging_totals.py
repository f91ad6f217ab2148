"""The total of a channel's message list comes from its seq counter: the same number as
counting the rows, for every point of view, with drafts and removed messages."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Org, doc
from tests.test_messaging import MESSAGES, make_channel, make_individual, make_token, post


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> tuple[int, list[str]]:
    """(meta total, ids of every page) of a message list."""
    ids: list[str] = []
    total = -1
    offset = 0
    while True:
        response = await client.get(
            MESSAGES,
            headers=headers,
            params={**params, "page[limit]": "2", "page[offset]": str(offset)},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        total = body["meta"]["page[total]"]
        ids += [item["id"] for item in body["data"]]
        offset += 2
        if not body["meta"]["pagination"]["hasMore"]:
            return total, ids


async def test_totals_match_the_rows(client: httpx.AsyncClient, org: Org) -> None:
    alice = await make_individual(client, org, "Alice", "Total")
    bob = await make_individual(client, org, "Bob", "Total")
    carol = await make_individual(client, org, "Carol", "Outside")
    channel = (await make_channel(client, org, {"individual-ids": [alice, bob]}))["id"]
    other = (await make_channel(client, org, {"individual-ids": [alice]}))["id"]

    posted = []
    for n in range(5):
        author = alice if n % 2 else bob
        response = await post(client, org.staff, channel, f"hello {n}", **{"individual-id": author})
        assert response.status_code == 201, response.text
        posted.append(response.json()["data"]["id"])
    await post(client, org.staff, other, "elsewhere", **{"individual-id": alice})
    drafts = []
    for author in (alice, alice, bob):
        response = await post(
            client, org.staff, channel, "draft", **{"individual-id": author, "draft": True}
        )
        assert response.status_code == 201, response.text
        drafts.append(response.json()["data"]["id"])
    removed = await client.patch(
        f"{MESSAGES}{posted[1]}/",
        json=doc("messaging-messages", {"individual-id": alice, "removed": True}, posted[1]),
        headers=org.staff,
    )
    assert removed.status_code == 200, removed.text

    # A key without a point of view: every posted message, no drafts.
    total, ids = await listed(client, org.staff, **{"channel-id": channel})
    assert total == len(ids) == 5
    # A subscriber: the posted messages and its own drafts (drafts first: the newest).
    total, ids = await listed(client, org.staff, **{"channel-id": channel, "individual-id": alice})
    assert total == len(ids) == 7
    assert ids[:2] == sorted(drafts[:2], reverse=True)
    total, ids = await listed(client, org.staff, **{"channel-id": channel, "individual-id": bob})
    assert total == len(ids) == 6
    # Parameters that only shape the rendering keep the counter; filters count rows.
    total, ids = await listed(
        client,
        org.staff,
        **{"channel-id": channel, "individual-id": bob, "include-phrases": "true"},
    )
    assert total == len(ids) == 6
    total, ids = await listed(
        client, org.staff, **{"channel-id": channel, "individual-id": bob, "acknowledged": "true"}
    )
    assert total == len(ids)
    # Not a subscriber, or another organization's view: nothing.
    total, ids = await listed(client, org.staff, **{"channel-id": channel, "individual-id": carol})
    assert total == len(ids) == 0
    # An individual token sees what its individual sees.
    token = await make_token(client, org, bob)
    total, ids = await listed(client, token, **{"channel-id": channel})
    assert total == len(ids) == 6
    # Posting a draft moves it from the drafts to the posted messages: the total stays.
    published = await client.patch(
        f"{MESSAGES}{drafts[2]}/",
        json=doc("messaging-messages", {"individual-id": bob, "draft": False}, drafts[2]),
        headers=org.staff,
    )
    assert published.status_code == 200, published.text
    total, ids = await listed(client, org.staff, **{"channel-id": channel, "individual-id": bob})
    assert total == len(ids) == 6
    total, ids = await listed(client, org.staff, **{"channel-id": channel})
    assert total == len(ids) == 6


async def test_totals_of_another_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    alice = await make_individual(client, org, "Alice", "Mine")
    channel = (await make_channel(client, org, {"individual-ids": [alice]}))["id"]
    assert (await post(client, org.staff, channel, "hi", **{"individual-id": alice})).is_success
    total, ids = await listed(client, other_org.staff, **{"channel-id": channel})
    assert total == len(ids) == 0


async def test_channel_totals_match_the_rows(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    alice = await make_individual(client, org, "Alice", "Channels")
    bob = await make_individual(client, org, "Bob", "Channels")
    elsewhere = await make_individual(client, other_org, "Eve", "Elsewhere")
    for members in ([alice], [alice, bob], [bob], [alice, bob]):
        await make_channel(client, org, {"individual-ids": members})
    await make_channel(client, other_org, {"individual-ids": [elsewhere]})

    async def total(headers: dict[str, str], **params: str) -> tuple[int, int]:
        response = await client.get(
            "/v1/messaging-channels/", headers=headers, params={**params, "page[limit]": "50"}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body["meta"]["page[total]"], len(body["data"])

    # The caller's memberships (counted from them) and the rows listed agree.
    assert await total(org.staff, **{"individual-id": alice}) == (3, 3)
    assert await total(org.staff, **{"individual-id": bob, "use-group-name": "false"}) == (3, 3)
    assert await total(await make_token(client, org, alice)) == (3, 3)
    # Filters count rows.
    assert await total(org.staff, **{"individual-id": alice, "participant-id": bob}) == (2, 2)
    assert await total(org.staff, **{"individual-id": alice, "filter[archived]": "true"}) == (0, 0)
    # Someone of another organization subscribes to nothing here.
    assert await total(org.staff, **{"individual-id": elsewhere}) == (0, 0)
