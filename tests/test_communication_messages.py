"""The inbox view, ``GET /v1/communication-messages/``: one individual's channels, filtered,
sorted and paged, rendered exactly as ``messaging-channels`` objects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import update

from courier.core.db import CUSTOM_PLANS, DEFAULT_PLANS
from courier.core.tenancy import scoped
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from tests.conftest import Org, create_org, doc
from tests.test_messaging import (
    CHANNELS,
    MESSAGES,
    action,
    count_queries,
    error,
    listed_ids,
    make_channel,
    make_group,
    make_individual,
    make_token,
    patch_message,
    posted,
)

INBOX = "/v1/communication-messages/"


def at(month: int, day: int = 1) -> datetime:
    return datetime(2024, month, day, 12, 0, tzinfo=UTC)


@dataclass
class Inbox:
    """Alice's channels, one of each kind, with known unread counts and pinned times.

    ========== ================== ========== ============== ============ =======
    channel    subscribers        group      last message   alice's ack  unread
    ========== ================== ========== ============== ============ =======
    single     alice              -          none           none         0
    direct     alice, bob         -          Mar 1          Jan 1        2
    trio       alice, bob, carol  -          May 1          none         3
    team       alice, bob         Knee team  Jan 1          Apr 1        0
    archived   alice, dave        -          Feb 1          Feb 1        1
    ========== ================== ========== ============== ============ =======

    ``elsewhere`` (bob and carol) is not alice's. Every channel was last modified on Jan 1,
    except ``direct`` (Jun 1).
    """

    org: Org
    alice: str
    bob: str
    carol: str
    dave: str
    group: str
    single: str
    direct: str
    trio: str
    team: str
    archived: str
    elsewhere: str
    as_alice: dict[str, str]
    as_bob: dict[str, str]

    @property
    def mine(self) -> set[str]:
        return {self.single, self.direct, self.trio, self.team, self.archived}


async def say(client: httpx.AsyncClient, org: Org, channel: str, author: str, text: str) -> str:
    message = await posted(client, org.staff, channel, text, **{"individual-id": author})
    ident: str = message["id"]
    return ident


async def ack(client: httpx.AsyncClient, org: Org, message: str, reader: str) -> None:
    response = await action(
        client, org.staff, f"{MESSAGES}{message}/ack/", {"individual-id": reader}
    )
    assert response.status_code == 201, response.text


async def pin_times(
    app: Any,
    org: Org,
    alice: str,
    channels: dict[str, tuple[datetime | None, datetime | None, datetime]],
) -> None:
    """Set each channel's last message time and last-modified time, and alice's ack time, so
    the orders under test are exact (posts in one millisecond would otherwise tie)."""
    organization = uuid.UUID(org.id)
    async with app.state.database.sessionmaker() as session:
        for channel_id, (last, acked, modified) in channels.items():
            ident = uuid.UUID(channel_id)
            await session.execute(
                scoped(update(MessagingChannel), MessagingChannel, organization)
                .where(MessagingChannel.id == ident)
                .values(last_message_at=last, last_modified_at=modified)
            )
            await session.execute(
                scoped(update(MessagingSubscriber), MessagingSubscriber, organization)
                .where(
                    MessagingSubscriber.channel_id == ident,
                    MessagingSubscriber.individual_id == uuid.UUID(alice),
                )
                .values(ack_time=acked)
            )
        await session.commit()


async def inbox(client: httpx.AsyncClient, org: Org, app: Any) -> Inbox:
    alice = await make_individual(client, org, "Alice", "Patient")
    bob = await make_individual(client, org, "Bob", "Patient")
    carol = await make_individual(client, org, "Carol", "Provider", **{"account-type": "provider"})
    dave = await make_individual(client, org, "Dave", "Provider", **{"account-type": "provider"})
    group = await make_group(client, org, "Knee team", [alice, bob], [])

    single = (await make_channel(client, org, {"individual-ids": [alice], "name": "My notes"}))[
        "id"
    ]
    direct = (
        await make_channel(
            client, org, {"individual-ids": [alice, bob], "name": "Chat", "label": "Billing"}
        )
    )["id"]
    trio = (
        await make_channel(
            client, org, {"individual-ids": [alice, bob, carol], "name": "Physio follow-up"}
        )
    )["id"]
    team = (
        await make_channel(client, org, {"individual-group-id": group, "name": "Own team name"})
    )["id"]
    archived = (await make_channel(client, org, {"individual-ids": [alice, dave]}))["id"]
    elsewhere = (
        await make_channel(client, org, {"individual-ids": [bob, carol], "name": "Physio"})
    )["id"]

    # direct: alice read her own message, then bob wrote twice (2 unread). A removed message
    # and a draft carry words that filter[text] must never find.
    await say(client, org, direct, alice, "Question about my invoice")
    which = await say(client, org, direct, bob, "Which one?")
    removed = await say(client, org, direct, bob, "the zebra password")
    gone = await patch_message(client, org.staff, removed, {"individual-id": bob, "removed": True})
    assert gone.status_code == 200, gone.text
    draft = await posted(
        client,
        org.staff,
        direct,
        "unsent giraffe",
        **{"individual-id": bob, "draft": True},
    )
    assert draft["attributes"]["draft"] is True
    # trio: three unread.
    trio_messages = [await say(client, org, trio, carol, text) for text in ("1", "2", "3")]
    # team: alice read bob's message.
    await ack(client, org, await say(client, org, team, bob, "Team hello"), alice)
    # archived: dave wrote twice; alice read the first.
    first = await say(client, org, archived, dave, "Your X-ray results are ready")
    await say(client, org, archived, dave, "Please call")
    await ack(client, org, first, alice)
    assert (await action(client, org.staff, f"{CHANNELS}{archived}/archive/", {})).status_code == (
        201
    )
    # Not alice's: words that would match if it leaked into her inbox.
    await say(client, org, elsewhere, bob, "x-ray of the knee team invoice")

    # Bookmarks (which read nothing): alice's in direct; bob's in trio, which is not one for
    # alice.
    as_alice = await make_token(client, org, alice)
    as_bob = await make_token(client, org, bob)
    for headers, channel_id, message in (
        (as_alice, direct, which),
        (as_bob, trio, trio_messages[0]),
    ):
        made = await client.post(
            "/v1/messaging-bookmarks/",
            json=doc("messaging-bookmarks", {"channel-id": channel_id, "message-id": message}),
            headers=headers,
        )
        assert made.status_code == 201, made.text

    await pin_times(
        app,
        org,
        alice,
        {
            single: (None, None, at(1)),
            direct: (at(3), at(1), at(6)),
            trio: (at(5), None, at(1)),
            team: (at(1), at(4), at(1)),
            archived: (at(2), at(2), at(1)),
        },
    )
    return Inbox(
        org,
        alice,
        bob,
        carol,
        dave,
        group,
        single,
        direct,
        trio,
        team,
        archived,
        elsewhere,
        as_alice,
        as_bob,
    )


async def ids(client: httpx.AsyncClient, headers: dict[str, str], params: Any = None) -> list[str]:
    return listed_ids(await client.get(INBOX, headers=headers, params=params))


def by_id(*idents: str, descending: bool = False) -> list[str]:
    return sorted(idents, reverse=descending)


# --- the view --------------------------------------------------------------------------------


async def test_inbox_lists_the_individuals_channels_as_channel_objects(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    s = await inbox(client, org, app)
    response = await client.get(INBOX, headers=s.as_alice)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {item["id"] for item in body["data"]} == s.mine
    assert {item["type"] for item in body["data"]} == {"messaging-channels"}
    assert body["meta"]["page[limit]"] == 100
    assert body["meta"]["page[total]"] == 5
    assert body["meta"]["pagination"]["hasMore"] is False
    assert set(body["links"]) == {"self", "first", "prev", "next", "last"}
    # Exactly the channel object of /v1/messaging-channels/{id}/ from alice's point of view.
    for item in body["data"]:
        single = await client.get(f"{CHANNELS}{item['id']}/", headers=s.as_alice)
        assert single.status_code == 200
        assert single.json()["data"] == item
    unread = {item["id"]: item["attributes"]["caller-new-message-count"] for item in body["data"]}
    assert unread == {s.single: 0, s.direct: 2, s.trio: 3, s.team: 0, s.archived: 1}
    marks = {item["id"]: item["attributes"]["bookmark"] for item in body["data"]}
    assert marks[s.direct] is not None and marks[s.trio] is None
    # A key names the individual: the same inbox; readonly keys read it too.
    assert set(await ids(client, org.staff, {"individual-id": s.alice})) == s.mine
    assert set(await ids(client, org.readonly, {"individual-id": s.alice})) == s.mine
    assert set(await ids(client, s.as_alice, {"individual-id": s.alice})) == s.mine
    # Bob's inbox is his own.
    assert set(await ids(client, s.as_bob)) == {s.direct, s.trio, s.team, s.elsewhere}


async def test_use_group_name(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    s = await inbox(client, org, app)

    async def team_name(**params: str) -> str:
        response = await client.get(
            INBOX, headers=s.as_alice, params={"filter[type]": "group-message", **params}
        )
        names: dict[str, str] = {i["id"]: i["attributes"]["name"] for i in response.json()["data"]}
        return names[s.team]

    assert await team_name() == "Knee team"
    assert await team_name(**{"use-group-name": "true"}) == "Knee team"
    assert await team_name(**{"use-group-name": "false"}) == "Own team name"


# --- sorts -----------------------------------------------------------------------------------


async def test_every_sort_orders_exactly(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    s = await inbox(client, org, app)

    async def order(sort: str | None) -> list[str]:
        return await ids(client, s.as_alice, {"sort": sort} if sort else None)

    # Without sort: newest activity first (a channel without messages by its creation, today).
    assert await order(None) == [s.single, s.trio, s.direct, s.archived, s.team]
    assert await order("last-timestamp") == [s.team, s.archived, s.direct, s.trio, s.single]
    assert await order("-last-timestamp") == [s.trio, s.direct, s.archived, s.team, s.single]
    assert await order("ack-timestamp") == [
        s.direct,
        s.archived,
        s.team,
        *by_id(s.single, s.trio),
    ]
    assert await order("-ack-timestamp") == [
        s.team,
        s.archived,
        s.direct,
        *by_id(s.single, s.trio, descending=True),
    ]
    assert await order("unread-count") == [*by_id(s.single, s.team), s.archived, s.direct, s.trio]
    assert await order("-unread-count") == [
        s.trio,
        s.direct,
        s.archived,
        *by_id(s.single, s.team, descending=True),
    ]
    # Several keys: the later ones order the ties of the earlier ones.
    assert await order("-unread-count,last-timestamp") == [
        s.trio,
        s.direct,
        s.archived,
        s.team,
        s.single,
    ]
    repeated = await ids(client, s.as_alice, [("sort", "unread-count"), ("sort", "-ack-timestamp")])
    assert repeated == [s.team, s.single, s.archived, s.direct, s.trio]


async def test_paging_is_stable(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    s = await inbox(client, org, app)
    for sort in ("unread-count", "-unread-count", "ack-timestamp", "-last-timestamp", None):
        base: dict[str, str] = {"sort": sort} if sort else {}
        whole = await ids(client, s.as_alice, base)
        pages: list[str] = []
        for offset in range(0, 6, 2):
            response = await client.get(
                INBOX,
                headers=s.as_alice,
                params={**base, "page[limit]": "2", "page[offset]": str(offset)},
            )
            body = response.json()
            assert body["meta"]["page[total]"] == 5
            assert body["meta"]["pagination"]["hasMore"] is (offset + 2 < 5)
            pages += listed_ids(response)
        assert pages == whole, sort
        assert len(set(pages)) == 5
    # The 1-based aliases reach the same rows.
    aliased = await ids(client, s.as_alice, {"sort": "unread-count", "size": "2", "start": "3"})
    assert aliased == (await ids(client, s.as_alice, {"sort": "unread-count"}))[2:4]
    # links.next walks the same pages.
    response = await client.get(
        INBOX, headers=s.as_alice, params={"sort": "-unread-count", "page[limit]": "3"}
    )
    following = await client.get(response.json()["links"]["next"], headers=s.as_alice)
    assert listed_ids(response) + listed_ids(following) == await ids(
        client, s.as_alice, {"sort": "-unread-count"}
    )
    assert following.json()["links"]["next"] is None


async def test_queries_do_not_grow_with_the_page(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    s = await inbox(client, org, app)

    async def queries(limit: int) -> int:
        with count_queries(app) as statements:
            response = await client.get(
                INBOX,
                headers=s.as_alice,
                params={"page[limit]": str(limit), "sort": "last-timestamp"},
            )
        assert len(listed_ids(response)) == limit
        return len(statements)

    # The first two (team, archived) already need everything: a group, a last message, the
    # organization's default title (archived has no name); the rest add more of the same.
    # Each measured twice, the fewer kept: a statement of some background task of the session's
    # app (a sandbox callback, a sniffer reload) can fall inside one window; a query per row
    # would show in both.
    assert min([await queries(2), await queries(2)]) == min([await queries(5), await queries(5)])


async def test_the_count_and_the_page_are_planned_for_the_individual(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """On PostgreSQL the list's count and page run with ``plan_cache_mode`` set to
    ``force_custom_plan`` (planned for this individual: a generic plan, made without the
    values, probed every channel of a person in 5,000), and back to the default before the
    page's channels are rendered; SQLite plans no differently and sends nothing of it."""
    s = await inbox(client, org, app)
    with count_queries(app) as statements:
        response = await client.get(INBOX, headers=s.as_alice, params={"page[limit]": "3"})
    assert len(listed_ids(response)) == 3
    ran = [st for st in statements if not st.startswith("BEGIN")]
    settings = [n for n, st in enumerate(ran) if "plan_cache_mode" in st]
    if app.state.database.engine.dialect.name != "postgresql":
        assert settings == []
        return
    assert [ran[n] for n in settings] == [CUSTOM_PLANS, DEFAULT_PLANS]
    inside = ran[settings[0] + 1 : settings[1]]
    assert [st.split()[:2] for st in inside] == [
        ["SELECT", "count(*)"],
        ["SELECT", "messaging_channels.name,"],
    ]


# --- filters ---------------------------------------------------------------------------------


async def test_each_filter_narrows(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    s = await inbox(client, org, app)

    async def found(**params: str) -> set[str]:
        return set(await ids(client, s.as_alice, params))

    everything = s.mine
    assert await found(**{"filter[archived]": "true"}) == {s.archived}
    assert await found(**{"filter[archived]": "0"}) == everything - {s.archived}
    assert await found(**{"filter[bookmarked]": "true"}) == {s.direct}
    assert await found(**{"filter[bookmarked]": "false"}) == everything - {s.direct}
    # Bob's bookmark is in trio, not in direct.
    bob_marked = await ids(client, s.as_bob, {"filter[bookmarked]": "1"})
    assert bob_marked == [s.trio]
    assert await found(**{"filter[individual-group-id]": s.group}) == {s.team}
    assert await found(**{"filter[individual-group-id]": str(uuid.uuid4())}) == set()
    assert await found(**{"organization-id": s.org.id}) == everything
    assert await found(**{"organization-id": str(uuid.uuid4())}) == set()

    # Types: a group's channel is a group message even with two subscribers.
    assert await found(**{"filter[type]": "direct-message"}) == {s.direct, s.archived}
    assert await found(**{"filter[type]": "group-message"}) == {s.trio, s.team}
    assert await found(**{"filter[type]": "single"}) == {s.single}
    for kind in ("multicast", "none", "open"):
        assert await found(**{"filter[type]": kind}) == set(), kind

    # Last-modified time: direct was modified in June, the others in January.
    assert await found(**{"filter[cmp-last-modified-time]": ">=2024-06-01T12:00:00Z"}) == {s.direct}
    assert await found(**{"filter[cmp-last-modified-time]": ">2024-06-01T12:00:00.000Z"}) == set()
    window = await ids(
        client,
        s.as_alice,
        [
            ("filter[cmp-last-modified-time]", ">2023-12-31T00:00:00+01:00"),
            ("filter[cmp-last-modified-time]", "<2024-02-01T00:00:00Z"),
        ],
    )
    assert set(window) == everything - {s.direct}

    # Combined filters narrow together.
    assert await found(**{"filter[type]": "direct-message", "filter[archived]": "false"}) == {
        s.direct
    }


async def test_text_filter(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    s = await inbox(client, org, app)

    async def found(text: str, **params: str) -> set[str]:
        return set(await ids(client, s.as_alice, {"filter[text]": text, **params}))

    assert await found("PHYSIO") == {s.trio}  # channel name (elsewhere is not alice's)
    assert await found("bill") == {s.direct}  # label
    assert await found("knee") == {s.team}  # the group's name
    assert await found("Own team") == {s.team}  # the channel's own name, behind the group's
    assert await found("x-ray") == {s.archived}  # a message, in an archived channel too
    assert await found("invoice") == {s.direct}  # alice's own message
    assert await found("zebra") == set()  # a removed message's text is never searched
    assert await found("giraffe") == set()  # nor a draft's
    assert await found("%") == set()  # LIKE wildcards are taken literally
    assert await found("x_ray") == set()
    assert await found("x-ray", **{"filter[archived]": "false"}) == set()
    assert await found("a" * 512) == set()
    assert await found("") == s.mine  # even the unnamed channel with no match anywhere


# --- refusals and isolation ------------------------------------------------------------------


async def test_bad_values_are_400_naming_the_parameter(client: httpx.AsyncClient, org: Org) -> None:
    alice = await make_individual(client, org, "Alice", "Patient")
    bad: list[tuple[str, str]] = [
        ("page[limit]", "0"),
        ("page[limit]", "101"),
        ("page[limit]", "ten"),
        ("page[offset]", "-1"),
        ("filter[archived]", "maybe"),
        ("filter[bookmarked]", "yes"),
        ("filter[individual-group-id]", "nope"),
        ("filter[cmp-last-modified-time]", "2024-01-01T00:00:00Z"),
        ("filter[cmp-last-modified-time]", ">2024-01-01T00:00:00"),
        ("filter[cmp-last-modified-time]", ">=2024-01-01T00:00:00.000000000000000+00:00"),
        ("filter[text]", "a" * 513),
        ("filter[type]", "dm"),
        ("organization-id", "nope"),
        ("use-group-name", "2"),
        ("sort", "name"),
        ("sort", "-created-at"),
        ("sort", "unread-count,bogus"),
        ("filter[floating]", "true"),
        ("participant-id", alice),
        ("filter[no-such-field]", "1"),
    ]
    for name, value in bad:
        response = await client.get(
            INBOX, headers=org.staff, params={"individual-id": alice, name: value}
        )
        assert error(response, 400)["source"] == {"parameter": name}, (name, value)
    thrice: list[tuple[str, str | int | float | bool | None]] = [("individual-id", alice)]
    thrice += [("filter[cmp-last-modified-time]", ">2024-01-01T00:00:00Z")] * 3
    three = await client.get(INBOX, headers=org.staff, params=thrice)
    assert error(three, 400)["source"] == {"parameter": "filter[cmp-last-modified-time]"}
    twice = await client.get(
        INBOX,
        headers=org.staff,
        params=[("individual-id", alice), ("filter[type]", "single"), ("filter[type]", "open")],
    )
    assert error(twice, 400)["source"] == {"parameter": "filter[type]"}
    # An API key must say whose inbox.
    missing = await client.get(INBOX, headers=org.staff)
    assert error(missing, 400)["source"] == {"parameter": "individual-id"}
    malformed = await client.get(INBOX, headers=org.staff, params={"individual-id": "nope"})
    assert error(malformed, 400)["source"] == {"parameter": "individual-id"}
    unknown = await client.get(
        INBOX, headers=org.staff, params={"individual-id": str(uuid.uuid4())}
    )
    assert error(unknown, 404)
    assert (await client.get(INBOX, params={"individual-id": alice})).status_code == 401


async def test_isolation_between_organizations_and_tokens(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    s = await inbox(client, org, app)
    other = await create_org(client)
    # Another organization's key cannot name alice (she is not one of its individuals).
    foreign = await client.get(INBOX, headers=other.staff, params={"individual-id": s.alice})
    assert error(foreign, 404)
    # Its own individual's inbox holds none of this organization's channels.
    stranger = await make_individual(client, other, "Stan", "Ger")
    await make_channel(client, other, {"individual-ids": [stranger], "name": "Physio"})
    theirs = await ids(client, other.staff, {"individual-id": stranger})
    assert len(theirs) == 1 and not set(theirs) & (s.mine | {s.elsewhere})
    # And this organization's id, given to it, finds nothing there.
    mismatched = {"individual-id": stranger, "organization-id": s.org.id}
    assert await ids(client, other.staff, mismatched) == []
    # An individual token reads only its own inbox.
    refused = await client.get(INBOX, headers=s.as_bob, params={"individual-id": s.alice})
    assert error(refused, 403)
    assert set(await ids(client, s.as_bob, {"individual-id": s.bob})) == {
        s.direct,
        s.trio,
        s.team,
        s.elsewhere,
    }
    # Filters read the caller's own horizons and bookmarks, never another's.
    bob_unread = {
        item["id"]: item["attributes"]["caller-new-message-count"]
        for item in (await client.get(INBOX, headers=s.as_bob)).json()["data"]
    }
    alice_unread = {
        item["id"]: item["attributes"]["caller-new-message-count"]
        for item in (await client.get(INBOX, headers=s.as_alice)).json()["data"]
    }
    assert (alice_unread[s.direct], bob_unread[s.direct]) == (2, 0)
