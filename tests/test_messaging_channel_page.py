"""The channel page of an individual (issue 17: ``GET /v1/messaging-channels/?individual-id=…``
of an individual in 5,000 channels): a fixed number of statements whatever the page holds,
each channel shown exactly as getting it shows it.

A page costs (besides SQLite's ``BEGIN``; the key lookup is cached), in statements built once:

1. the list's total (the caller's memberships), and 2. the page;
3. the channels' subscribers;
4. their groups with their members and leaders (none without groups);
5. the people they show (subscribers, owners, groups' members), with their logins;
6. the channels' last messages;
7. the caller's bookmarks;
8. the organization's ``group-provider-ack`` and ``default-channel-title``, together.

An empty page renders nothing: the total and the page alone.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Org, doc
from tests.support import count_queries
from tests.test_messaging import (
    CHANNELS,
    action,
    make_channel,
    make_group,
    make_individual,
    make_token,
    patch_message,
    posted,
)

PAGE_STATEMENTS = 8


async def _statements(
    client: httpx.AsyncClient, app: Any, headers: dict[str, str], **params: str
) -> tuple[dict[str, Any], list[str]]:
    with count_queries(app) as statements:
        response = await client.get(CHANNELS, headers=headers, params=params)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document, [s for s in statements if not s.startswith("BEGIN")]


async def test_a_channel_page_costs_a_fixed_number_of_statements(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    provider = await make_individual(client, org, "Pro", "Vider", **{"account-type": "provider"})
    patients = [await make_individual(client, org, f"P{i}", "Patient") for i in range(4)]
    group = await make_group(client, org, "G", [provider, *patients[:2]], [provider])
    made = []
    for patient in patients:
        channel = await make_channel(client, org, {"individual-ids": [provider, patient]})
        await posted(client, org.staff, channel["id"], "hello", **{"individual-id": patient})
        made.append(channel["id"])
    made.append((await make_channel(client, org, {"individual-group-id": group}))["id"])
    await posted(client, org.staff, made[4], "welcome", **{"individual-id": provider})

    for limit in ("2", "5"):
        document, statements = await _statements(
            client, app, org.staff, **{"individual-id": provider, "page[limit]": limit}
        )
        assert len(document["data"]) == int(limit)
        assert document["meta"]["page[total]"] == 5
        assert len(statements) == PAGE_STATEMENTS, "\n".join(statements)
    # Newest activity first: the group's channel (its post the last), then the others.
    assert [item["id"] for item in document["data"]] == [made[4], *made[3::-1]]

    # An individual token sees the same page, in as many statements.
    as_provider = await make_token(client, org, provider)
    mine, statements = await _statements(client, app, as_provider)
    assert [item["id"] for item in mine["data"]] == [item["id"] for item in document["data"]]
    assert len(statements) == PAGE_STATEMENTS, "\n".join(statements)

    # A member of the group who left its channel is shown in the group, as its people are.
    left = await action(
        client, org.staff, f"{CHANNELS}{made[4]}/unsubscribe/", {"individual-ids": [patients[0]]}
    )
    assert left.status_code == 201, left.text
    document, statements = await _statements(
        client, app, org.staff, **{"individual-id": provider, "page[limit]": "1"}
    )
    group_shown = document["data"][0]["attributes"]["individual-group"]
    assert patients[0] in [i["id"] for i in group_shown["individuals"]]
    assert patients[0] not in [s["id"] for s in document["data"][0]["attributes"]["subscribers"]]
    assert len(statements) == PAGE_STATEMENTS, "\n".join(statements)

    # Past the end: no rows to render.
    past, statements = await _statements(
        client, app, org.staff, **{"individual-id": provider, "page[offset]": "10"}
    )
    assert past["data"] == [] and past["meta"]["page[total]"] == 5
    assert past["meta"]["pagination"]["hasMore"] is False
    assert len(statements) == 2, "\n".join(statements)


def _without_links(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(item["id"], item["attributes"]) for item in document["data"]]


async def test_a_page_shows_each_channel_as_getting_it_does(
    client: httpx.AsyncClient, org: Org
) -> None:
    """The page (Core rows; on PostgreSQL its times formatted by the database) shows every
    channel exactly as getting it does (a loaded channel): same keys in the same order, same
    values; for a key acting as an individual, an individual token and a key acting for
    nobody, with a group (one of its members not in its channel), a removed last message, no
    message, preferences, a bookmark and an unnamed channel."""
    provider = await make_individual(client, org, "Grace", "Hopper", **{"account-type": "provider"})
    alice = await make_individual(client, org, "Alice", "Patient", **{"birth-date": "1980-02-03"})
    bob = await make_individual(client, org, "Bob", "Patient")
    group = await make_group(client, org, "Knee clinic", [provider, alice, bob], [provider])
    in_group = await make_channel(client, org, {"individual-group-id": group, "name": "Knees"})
    pair = await make_channel(client, org, {"individual-ids": [provider, alice], "label": "x"})
    await make_channel(client, org, {"individual-ids": [alice, bob]})  # unnamed, no message
    as_alice = await make_token(client, org, alice)
    as_provider = await make_token(client, org, provider)
    # Bob stays in the group, not in its channel: the group shows him all the same.
    left = await action(
        client, org.staff, f"{CHANNELS}{in_group['id']}/unsubscribe/", {"individual-ids": [bob]}
    )
    assert left.status_code == 201, left.text
    said = await posted(client, as_provider, in_group["id"], "Monday at nine.")
    await posted(client, as_alice, in_group["id"], "Thanks!")
    gone = await posted(client, as_provider, pair["id"], "A mistake.")
    removed = await patch_message(client, as_provider, gone["id"], {"removed": True})
    assert removed.status_code == 200, removed.text
    preferences = await action(
        client,
        as_alice,
        f"{CHANNELS}{in_group['id']}/set-preferences/",
        {"values": [{"name": "pinned", "value": True}, {"name": "sound", "value": "chime"}]},
    )
    assert preferences.status_code == 201, preferences.text
    bookmarked = await client.post(
        "/v1/messaging-bookmarks/",
        json=doc("messaging-bookmarks", {"channel-id": in_group["id"], "message-id": said["id"]}),
        headers=as_alice,
    )
    assert bookmarked.status_code == 201, bookmarked.text

    for headers, params in (
        (org.staff, {"individual-id": alice}),
        (org.staff, {"individual-id": alice, "use-group-name": "false"}),
        (as_alice, {}),
        (as_provider, {"sort": "-last-activity"}),
        (org.staff, {}),
    ):
        response = await client.get(CHANNELS, headers=headers, params=params)
        assert response.status_code == 200, response.text
        listed = _without_links(response.json())
        assert listed, params
        for ident, attributes in listed:
            shown = {k: v for k, v in params.items() if k != "sort"}
            got = await client.get(f"{CHANNELS}{ident}/", headers=headers, params=shown)
            assert got.status_code == 200, got.text
            assert list(attributes.items()) == list(got.json()["data"]["attributes"].items())
        by_id = dict(listed)
        pair_view = by_id.get(pair["id"])
        if pair_view is not None:
            assert pair_view["last-message"]["removed"] is True
            assert pair_view["last-message"]["message"] == ""
        # Another order takes the generic path: the same channels, shown the same way.
        other = await client.get(CHANNELS, headers=headers, params={**params, "sort": "created-at"})
        assert other.status_code == 200, other.text
        assert sorted(_without_links(other.json()), key=lambda item: item[0]) == sorted(
            listed, key=lambda item: item[0]
        )

    alice_view = {
        item["id"]: item["attributes"]
        for item in (await client.get(CHANNELS, headers=as_alice)).json()["data"]
    }
    assert alice_view[in_group["id"]]["caller-preferences"] == {
        "notify": "all",
        "pinned": True,
        "values": {"sound": "chime"},
    }
    assert alice_view[in_group["id"]]["bookmark"]["message-id"] == said["id"]
    assert alice_view[in_group["id"]]["last-message"]["message"] == "Thanks!"
    # Nobody else's preferences are shown, in any channel.
    provider_view = (
        await client.get(CHANNELS, headers=org.staff, params={"individual-id": provider})
    ).json()["data"]
    assert all(item["attributes"]["caller-preferences"]["values"] == {} for item in provider_view)
