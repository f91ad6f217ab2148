"""Unread counts as a second client sees them, through every change that moves them.

The communication summary (``GET /v1/communication-summaries/``) and the channel list's
``caller-new-message-count`` are both read from the seq counters (a channel's ``last_seq``, a
membership's ``ack_seq``); the providers' part of the summary from the messages of each unread
range. These tests pin what each change does to them, whatever computes them: a post (by
someone else, by the reader), an ack, a removal, archiving, unsubscribing and an author's
account type; and how many statements each read takes.

The providers' part comes from prefix counters too (a channel's ``provider_count``, a message's
``provider_count_at``, a membership's ``ack_provider_count``): a message counts as a provider's
when its author was a provider *when it was posted*; a later change of account type does not
reclassify it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select, text, update

from courier.core.tenancy import unscoped
from courier.domains.inbox import repository as inbox_repository
from courier.domains.messaging import repository as messaging_repository
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from tests.conftest import Org, doc
from tests.support import count_queries
from tests.test_bulk_messages import fan_out
from tests.test_inbox_support import (
    ack,
    channel,
    channel_row,
    group_channel,
    individual,
    post,
    subscriber_row,
    token,
)
from tests.test_messaging_operations import run_jobs, scene, start
from tests.test_purge import purge

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


async def become(client: httpx.AsyncClient, org: Org, ident: str, account_type: str) -> None:
    response = await client.patch(
        f"/v1/individuals/{ident}/",
        json=doc("individuals", {"account-type": account_type}, ident),
        headers=org.admin,
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

    # An author who becomes a provider: what they posted before keeps its classification (a
    # message is a provider's when its author was one as it was posted).
    await become(client, org, neighbour, "provider")
    assert await counts(client, reader) == {"messages": 2, "group": 2, "direct": 0, "providers": 1}

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


async def ack_back(client: httpx.AsyncClient, org: Org, message_id: str, reader: str) -> None:
    """An ack that moves the horizon back (``allow-past``)."""
    response = await client.post(
        f"/v1/messaging-messages/{message_id}/ack/",
        json={"individual-id": reader, "allow-past": True},
        headers=org.staff,
    )
    assert response.status_code == 201, response.text


async def post_draft(client: httpx.AsyncClient, org: Org, channel_id: str, author: str) -> str:
    """A draft written, then posted (``PATCH draft: false``): it takes its seq then."""
    written = await client.post(
        "/v1/messaging-messages/",
        json=doc(
            "messaging-messages",
            {"channel-id": channel_id, "individual-id": author, "message": "d", "draft": True},
        ),
        headers=org.staff,
    )
    assert written.status_code == 201, written.text
    ident = str(written.json()["data"]["id"])
    posted = await client.patch(
        f"/v1/messaging-messages/{ident}/",
        json=doc("messaging-messages", {"individual-id": author, "draft": False}, ident),
        headers=org.staff,
    )
    assert posted.status_code == 200, posted.text
    return ident


async def test_providers_part_from_counters(client: httpx.AsyncClient, org: Org, app: Any) -> None:
    """The providers' part of the summary through posts by a provider and by a patient, acks
    of part of a range (forward and back), reading everything, a posted draft, a newcomer, an
    account type changed after posting, and a repair after the counters were tampered with."""
    patient = await individual(client, org, name="Pat")
    reader = Reader(patient, await token(client, org, patient))
    doctor = await individual(client, org, "provider", name="Doc")
    sister = await individual(client, org, name="Sis")
    direct = await channel(client, org, [patient, doctor])
    group = await channel(client, org, [patient, doctor, sister])

    d1 = await post(client, org, direct, doctor)
    d2 = await post(client, org, direct, doctor)
    s1 = await post(client, org, group, sister)
    g1 = await post(client, org, group, doctor)
    await post(client, org, group, sister)
    assert await counts(client, reader) == {"messages": 5, "group": 3, "direct": 2, "providers": 3}

    # Part of a range read: the doctor's g1 and the sister's s1; s2 (a patient's) is left.
    await ack(client, org, g1, patient)
    assert await counts(client, reader) == {"messages": 3, "group": 1, "direct": 2, "providers": 2}
    # Back to s1 (allow-past): g1 is unread again, and a provider's.
    await ack_back(client, org, s1, patient)
    assert await counts(client, reader) == {"messages": 4, "group": 2, "direct": 2, "providers": 3}
    # Part of the direct channel, then all of it.
    await ack(client, org, d1, patient)
    assert await counts(client, reader) == {"messages": 3, "group": 2, "direct": 1, "providers": 2}
    await ack(client, org, d2, patient)
    assert await counts(client, reader) == {"messages": 2, "group": 2, "direct": 0, "providers": 1}

    # A draft counts once posted, as its author's at that moment.
    await post_draft(client, org, direct, doctor)
    assert await counts(client, reader) == {"messages": 3, "group": 2, "direct": 1, "providers": 2}

    # The patient's own post reads the group for them: nothing of it is unread.
    await post(client, org, group, patient)
    assert await counts(client, reader) == {"messages": 1, "group": 0, "direct": 1, "providers": 1}

    # A newcomer finds the whole history unread, providers' part included.
    cousin = await individual(client, org, name="Cousin")
    newcomer = Reader(cousin, await token(client, org, cousin))
    await channel_action(client, org, group, "subscribe", {"individual-ids": [cousin]})
    assert await counts(client, newcomer) == {
        "messages": 4,
        "group": 4,
        "direct": 0,
        "providers": 1,
    }

    # The doctor stops being a provider: what they posted stays a provider's; what they post
    # now is not. The sister becomes one: her old messages stay a patient's.
    await become(client, org, doctor, "participant")
    await become(client, org, sister, "provider")
    assert await counts(client, reader) == {"messages": 1, "group": 0, "direct": 1, "providers": 1}
    await post(client, org, direct, doctor)
    await post(client, org, group, sister)
    assert await counts(client, reader) == {"messages": 3, "group": 1, "direct": 2, "providers": 2}
    assert await counts(client, newcomer) == {
        "messages": 5,
        "group": 5,
        "direct": 0,
        "providers": 2,
    }

    # Counters tampered with (a lost update, a bad import): the repair recounts them from the
    # messages' own record of the providers' messages before each.
    before_direct = (await channel_row(app, direct)).provider_count
    before_horizon = (await subscriber_row(app, group, patient)).ack_provider_count
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            unscoped(
                update(MessagingChannel)
                .where(MessagingChannel.id == uuid.UUID(direct))
                .values(provider_count=40),
                "test corrupts a channel's provider count",
            )
        )
        await session.execute(
            unscoped(
                update(MessagingSubscriber)
                .where(
                    MessagingSubscriber.channel_id == uuid.UUID(group),
                    MessagingSubscriber.individual_id.in_([uuid.UUID(patient), uuid.UUID(cousin)]),
                )
                .values(ack_provider_count=7),
                "test corrupts read horizons' provider counts",
            )
        )
        await session.commit()
    assert (await counts(client, reader))["providers"] != 2
    url = f"/v1/individuals/{patient}/recalculate-communication-summary/"
    repaired = await client.post(url, json={}, headers=org.staff)
    assert repaired.status_code == 201, repaired.text
    assert repaired.json()["meta"] == {
        "channels": 2,
        "repaired-channels": 1,
        "clamped-subscribers": 0,
        "recounted-subscribers": 2,
        "recounted-channels": 0,
    }
    assert (await channel_row(app, direct)).provider_count == before_direct
    assert (await subscriber_row(app, group, patient)).ack_provider_count == before_horizon
    assert await counts(client, reader) == {"messages": 3, "group": 1, "direct": 2, "providers": 2}
    assert (await counts(client, newcomer))["providers"] == 2
    again = await client.post(url, json={}, headers=org.staff)
    assert again.json()["meta"]["recounted-subscribers"] == 0
    assert again.json()["meta"]["repaired-channels"] == 0


async def test_a_fan_out_counts_its_sender_as_it_was_then(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """A bulk message posts many channels' messages together (one seq statement for all of
    them): each copy counts as a provider's, and keeps counting so after its sender stops being
    one; the sender's own horizons move past it."""
    sender = await individual(client, org, "provider", name="Doc")
    patients = [await individual(client, org, name=f"P{n}") for n in range(3)]
    for patient in patients:
        await channel(client, org, [sender, patient])
    readers = [Reader(p, await token(client, org, p)) for p in patients]
    me = Reader(sender, await token(client, org, sender))

    async def bulk(text: str) -> None:
        response = await client.post(
            "/v1/messaging-bulk-messages/",
            json=doc(
                "messaging-bulk-messages",
                {"sender-individual-id": sender, "individual-ids": patients, "message": text},
            ),
            headers=org.staff,
        )
        assert response.status_code == 201, response.text
        assert await fan_out(app) >= 2

    await bulk("The clinic is closed today")
    one = {"messages": 1, "group": 0, "direct": 1, "providers": 1}
    assert [await counts(client, r) for r in readers] == [one, one, one]
    assert (await counts(client, me))["messages"] == 0

    await bulk("And tomorrow")
    two = {"messages": 2, "group": 0, "direct": 2, "providers": 2}
    assert [await counts(client, r) for r in readers] == [two, two, two]
    # (A bulk message's sender must be a provider: a change afterwards reclassifies nothing.)
    await become(client, org, sender, "participant")
    assert [await counts(client, r) for r in readers] == [two, two, two]


async def test_reads_take_a_fixed_number_of_statements(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """The summary without senders is one statement (two on the messaging tables with
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

    with count_queries(app) as plain:
        assert (await summary(client, reader))["messages"] == 4
    with count_queries(app, only="messaging_") as detailed:
        assert (await summary(client, reader, senders=True))["messages"] == 4
    # The whole summary, the check that the individual is the organization's included.
    assert [s for s in plain if not s.startswith("BEGIN")] == [
        s for s in plain if "messaging_" in s
    ]
    assert (len([s for s in plain if not s.startswith("BEGIN")]), len(detailed)) == (1, 2)

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


async def test_reads_that_depend_on_a_persons_channels_are_planned_for_the_person(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """On PostgreSQL the summary and a person's channel page are planned for the person they
    run for, every time: never kept prepared on the connection, where after five runs
    PostgreSQL may settle on one plan for everybody (for someone in 5,000 channels: 5,000
    index probes instead of a hash join, a sort of every channel instead of a walk of the
    activity index). The page's total, planned alike for everybody, stays prepared."""
    patient = await individual(client, org)
    doctor = await individual(client, org, "provider")
    for _ in range(2):
        await post(client, org, await channel(client, org, [patient, doctor]), doctor)
    org_id, person = uuid.UUID(org.id), uuid.UUID(patient)
    async with app.state.database.sessionmaker() as session:
        for _ in range(7):
            assert await inbox_repository.unread_summary(session, org_id, person) == (2, 0, 2)
            page = await messaging_repository.channel_page(
                session, org_id, person, limit=50, offset=0
            )
            assert (len(page.rows), page.total) == (2, 2)
        dialect = session.bind.dialect
        if dialect.name != "postgresql":
            return
        kept = await session.execute(text("SELECT statement FROM pg_prepared_statements"))
        statements = set(kept.scalars())

    def sql_of(statement: Any) -> str:
        # (exactly these statements: other reads of channels, the inbox view's, look alike)
        compiled = statement._compile(dialect)
        assert compiled is not None
        return str(compiled.sql)

    assert sql_of(inbox_repository._SUMMARY) not in statements
    assert sql_of(messaging_repository._channel_page(True, True)) not in statements
    assert sql_of(messaging_repository._CHANNELS_TOTAL[True]) in statements  # the total


async def members(app: Any, channel_id: str) -> tuple[int, int]:
    """(the channel's ``subscriber_count``, its memberships as they are)."""
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(
            select(func.count())
            .select_from(MessagingSubscriber)
            .where(MessagingSubscriber.channel_id == uuid.UUID(channel_id)),
            "test counts a channel's memberships",
        )
        truth = int((await session.execute(stmt)).scalar_one())
    return (await channel_row(app, channel_id)).subscriber_count, truth


async def test_the_group_split_follows_who_subscribes(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """A channel of two is direct; a third subscriber makes it a group channel, and it is
    direct again when one leaves; subscribing someone already there changes nothing."""
    patient = await individual(client, org, name="Pat")
    reader = Reader(patient, await token(client, org, patient))
    doctor = await individual(client, org, "provider", name="Doc")
    nurse = await individual(client, org, "provider", name="Nurse")
    chat = await channel(client, org, [patient, doctor])
    await post(client, org, chat, doctor, "how are you?")
    await post(client, org, chat, doctor, "any pain?")
    assert await members(app, chat) == (2, 2)
    assert await counts(client, reader) == {"messages": 2, "group": 0, "direct": 2, "providers": 2}

    await channel_action(client, org, chat, "subscribe", {"individual-ids": [nurse]})
    assert await members(app, chat) == (3, 3)
    assert await counts(client, reader) == {"messages": 2, "group": 2, "direct": 0, "providers": 2}

    # Already subscribed (twice in one body, and again): nobody is added, nothing counted.
    await channel_action(client, org, chat, "subscribe", {"individual-ids": [nurse, doctor, nurse]})
    assert await members(app, chat) == (3, 3)

    await channel_action(client, org, chat, "unsubscribe", {"individual-ids": [nurse]})
    assert await members(app, chat) == (2, 2)
    assert await counts(client, reader) == {"messages": 2, "group": 0, "direct": 2, "providers": 2}

    # Not subscribed any more: unsubscribing again takes nobody off.
    await channel_action(client, org, chat, "unsubscribe", {"individual-ids": [nurse]})
    assert await members(app, chat) == (2, 2)

    # Two join in one request, one leaves with someone who never was there.
    neighbour = await individual(client, org, name="Quinn")
    await channel_action(client, org, chat, "subscribe", {"individual-ids": [nurse, neighbour]})
    assert await members(app, chat) == (4, 4)
    await channel_action(client, org, chat, "unsubscribe", {"individual-ids": [neighbour, doctor]})
    assert await members(app, chat) == (2, 2)
    assert await counts(client, reader) == {"messages": 2, "group": 0, "direct": 2, "providers": 2}

    # A channel of one individual group is a group channel whatever its size.
    team = await group_channel(client, org, [patient, doctor])
    await post(client, org, team, doctor, "team news")
    assert await members(app, team) == (2, 2)
    assert await counts(client, reader) == {"messages": 3, "group": 1, "direct": 2, "providers": 3}


async def test_the_repair_recounts_subscribers(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    patient = await individual(client, org, name="Pat")
    reader = Reader(patient, await token(client, org, patient))
    doctor = await individual(client, org, "provider", name="Doc")
    nurse = await individual(client, org, "provider", name="Nurse")
    chat = await channel(client, org, [patient, doctor])
    crowd = await channel(client, org, [patient, doctor, nurse])
    await post(client, org, chat, doctor, "hello")
    await post(client, org, crowd, nurse, "hello all")
    right = {"messages": 2, "group": 1, "direct": 1, "providers": 2}
    assert await counts(client, reader) == right
    async with app.state.database.sessionmaker() as session:
        for channel_id, wrong in ((chat, 7), (crowd, 4)):
            await session.execute(
                unscoped(
                    update(MessagingChannel)
                    .where(MessagingChannel.id == uuid.UUID(channel_id))
                    .values(subscriber_count=wrong),
                    "test corrupts channels' subscriber counts",
                )
            )
        await session.commit()
    # Tampered: the direct channel counts as a group channel.
    assert await counts(client, reader) == {**right, "group": 2, "direct": 0}
    url = f"/v1/individuals/{patient}/recalculate-communication-summary/"
    repaired = await client.post(url, json={}, headers=org.staff)
    assert repaired.status_code == 201, repaired.text
    assert repaired.json()["meta"]["recounted-channels"] == 2
    assert await members(app, chat) == (2, 2)
    assert await members(app, crowd) == (3, 3)
    assert await counts(client, reader) == right
    again = await client.post(url, json={}, headers=org.staff)
    assert again.json()["meta"]["recounted-channels"] == 0


async def test_created_channels_count_their_subscribers(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """A channel made with its subscribers (one named twice) starts with their count; so do
    the channels a bulk message makes for recipients without one: direct channels."""
    patient = await individual(client, org, name="Pat")
    doctor = await individual(client, org, "provider", name="Doc")
    chat = await channel(client, org, [patient, doctor, patient])
    assert await members(app, chat) == (2, 2)
    newcomers = [await individual(client, org, name=f"P{n}") for n in range(2)]
    response = await client.post(
        "/v1/messaging-bulk-messages/",
        json=doc(
            "messaging-bulk-messages",
            {
                "sender-individual-id": doctor,
                "individual-ids": newcomers,
                "message": "Welcome",
                "auto-create-channel": True,
            },
        ),
        headers=org.staff,
    )
    assert response.status_code == 201, response.text
    assert await fan_out(app) >= 1
    for newcomer in newcomers:
        reader = Reader(newcomer, await token(client, org, newcomer))
        assert await counts(client, reader) == {
            "messages": 1,
            "group": 0,
            "direct": 1,
            "providers": 1,
        }
        listed_channels = await listed(client, reader)
        assert len(listed_channels) == 1
        assert await members(app, next(iter(listed_channels))) == (2, 2)


async def test_group_moves_and_the_purge_keep_the_count(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """A move to another group subscribes its members and unsubscribes the old group's; a
    purged individual leaves every channel: the counts follow, and a channel of three that
    loses one to the purge is direct again."""
    s = await scene(client, org)
    assert await members(app, s.X) == (4, 4)  # a1, a2, both, e1
    assert await members(app, s.Y) == (3, 3)
    await start(client, org, {"from-individual-group-id": s.A, "to-individual-group-id": s.B})
    await run_jobs(app)
    assert await members(app, s.X) == (3, 3)  # e1, b1, both
    assert await members(app, s.Y) == (2, 2)  # b1, both
    assert await members(app, s.Z) == (1, 1)

    patient = await individual(client, org, name="Pat")
    reader = Reader(patient, await token(client, org, patient))
    doctor = await individual(client, org, "provider", name="Doc")
    visitor = await individual(client, org, name="Vic")
    chat = await channel(client, org, [patient, doctor, visitor])
    other = await channel(client, org, [doctor, visitor])
    await post(client, org, chat, doctor, "see you all")
    assert await counts(client, reader) == {"messages": 1, "group": 1, "direct": 0, "providers": 1}
    await purge(client, app, org, visitor)
    assert await members(app, chat) == (2, 2)
    assert await members(app, other) == (1, 1)
    assert await counts(client, reader) == {"messages": 1, "group": 0, "direct": 1, "providers": 1}
