"""How many SQL statements one message post costs, and that its 201 is built without reading
anything back (issue 17, point 1).

A post runs, besides BEGIN/COMMIT (SQLite's ``BEGIN IMMEDIATE`` is left out of the counts):

1. one SELECT of what it needs: the author (404 when none), the channel (404, archived), its
   subscribers (the author among them; the event's audience) and the author's login;
2. ``UPDATE messaging_channels ... RETURNING`` (the seq, the last message);
3. ``INSERT`` the message;
4. ``UPDATE messaging_subscribers`` (the author's horizon);
5. ``INSERT`` the audit row;
6. ``INSERT`` the event (``messaging-messages.created``).

The organization's event consumers (webhooks and announcers: courier/events) and the API key
(or token) are known from the process's caches (courier.core.notified: on PostgreSQL kept while
its listener is up, told of changes by NOTIFY; on SQLite told through the file beside the
database).

That is 6 on SQLite (and the analysis job's ``INSERT INTO jobs``: bookkeeping, not counted by
``count_queries``), 2 to 4 and the job run together in one call to the connection's thread
(courier.core.sqlite, courier.core.direct.run_together): a post is 5 calls to that thread,
``BEGIN IMMEDIATE`` going with the post's look-up (it was 37: four for a statement that returns
rows, three for one that does not; and the key and the consumers were read on every request).
On PostgreSQL, 2 to 6 are one statement (the seq's ``UPDATE ... RETURNING``, the message and
its analysis job, the author's horizon, and, riding with them, the audit row and the event with
the ``pg_notify`` of the live streams and the workers: data-modifying CTEs,
courier.events.Riding), so a post costs 2: against the hand-written reference's 8
(bench/reference.py: membership, login, seq, message, horizon, audit, event, notify).
Nothing re-reads the message, its reactions, its attachments or its author for the response.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Org
from tests.support import caches_listening, count_queries
from tests.test_messaging import MESSAGES, make_channel, make_individual, make_token, post

READ_BACK = ("messaging_reactions", "messaging_attachments", "FROM messaging_messages")


def counted(statements: list[str]) -> list[str]:
    return [s for s in statements if not s.startswith("BEGIN")]


# What each of the statements is, in order (a fragment of each).
EXPECTED = [
    "FROM individuals LEFT OUTER JOIN messaging_channels",
    "UPDATE messaging_channels",
    "INSERT INTO messaging_messages",
    "UPDATE messaging_subscribers",
]
SQLITE_EVENTS = ["INSERT INTO audit_events", "INSERT INTO events"]


# PostgreSQL: 2 to 6 (and the analysis job, and the notifications) are one statement, its
# writes as CTEs.
POSTGRES_POST = [
    "UPDATE messaging_channels",
    "INSERT INTO messaging_messages",
    "INSERT INTO jobs",
    "UPDATE messaging_subscribers",
    "INSERT INTO events",
    "INSERT INTO audit_events",
    "pg_notify('courier_events'",
    "pg_notify('courier_jobs'",
]


def assert_one_post(app: Any, statements: list[str]) -> None:
    ran = counted(statements)
    listing = "\n".join(ran)
    postgres = app.state.database.engine.dialect.name == "postgresql"
    if postgres:
        assert len(ran) == 2, listing
        assert EXPECTED[0] in " ".join(ran[0].split()), listing
        assert all(fragment in ran[1] for fragment in POSTGRES_POST), listing
    else:
        expected = [*EXPECTED, *SQLITE_EVENTS]
        assert len(ran) == len(expected) == 6, listing
        for statement, fragment in zip(ran, expected, strict=True):
            assert fragment in " ".join(statement.split()), listing
    assert not [s for s in ran if s.startswith("SELECT") and any(t in s for t in READ_BACK)]


async def test_a_key_posting_for_a_subscriber_costs_the_references_statements(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    alice = await make_individual(client, org, "Alice", "Patient")
    bob = await make_individual(client, org, "Bob", "Patient")
    channel = await make_channel(client, org, {"individual-ids": [alice, bob]})
    await caches_listening(app)
    first = await post(client, org.staff, channel["id"], "warm-up", **{"individual-id": alice})
    assert first.status_code == 201, first.text
    with count_queries(app) as statements:
        response = await post(
            client, org.staff, channel["id"], "How is my knee?", **{"individual-id": alice}
        )
    assert response.status_code == 201, response.text
    assert_one_post(app, statements)


async def test_an_individual_token_post_costs_the_same(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    alice = await make_individual(client, org, "Alice", "Patient")
    bob = await make_individual(client, org, "Bob", "Patient")
    channel = await make_channel(client, org, {"individual-ids": [alice, bob]})
    as_alice = await make_token(client, org, alice)
    await caches_listening(app)
    first = await post(client, as_alice, channel["id"], "warm-up")
    assert first.status_code == 201, first.text
    with count_queries(app) as statements:
        response = await post(client, as_alice, channel["id"], "How is my knee?")
    assert response.status_code == 201, response.text
    assert_one_post(app, statements)


async def test_the_201_is_what_reading_the_message_back_shows(
    client: httpx.AsyncClient, org: Org
) -> None:
    """The response is built from what the post holds; it is exactly the message as its
    author then reads it: acked or not (auto-ack), a draft, destinations, the author's login."""
    alice = await make_individual(client, org, "Alice", "Patient", **{"preferred-name": "Al"})
    bob = await make_individual(client, org, "Bob", "Patient")
    channel = await make_channel(client, org, {"individual-ids": [alice, bob]})
    as_alice = await make_token(client, org, alice)
    as_bob = await make_token(client, org, bob)
    unread = await post(client, as_bob, channel["id"], "Are you there?")
    assert unread.status_code == 201, unread.text
    cases: list[tuple[dict[str, Any], bool]] = [
        ({"auto-ack": False}, False),  # Bob's message stays unread: so does Alice's own
        ({}, True),  # acknowledges everything before it
        ({"include-destinations": ["email"]}, True),
        ({"draft": True}, False),
    ]
    for attributes, acked in cases:
        created = await post(client, as_alice, channel["id"], "Yes, here.", **attributes)
        assert created.status_code == 201, created.text
        data = created.json()["data"]
        read = await client.get(f"{MESSAGES}{data['id']}/", headers=as_alice)
        assert read.status_code == 200, read.text
        assert data == read.json()["data"], attributes
        shown = data["attributes"]
        assert shown["ack"] is acked, attributes
        assert shown["reactions"] == shown["attachments"] == shown["read-receipts"] == []
        assert shown["preferred-name"] == "Al" and shown["first-name"] == "Alice"


async def test_a_channel_deleted_before_the_write_is_404_and_nothing_is_written(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """The write finds no channel (a delete committed after the post's look-up): 404 naming
    the channel, and the transaction writes nothing (no message, no analysis job, no audit
    row, no event)."""
    import uuid

    from sqlalchemy import select

    from courier.core.errors import ApiError
    from courier.core.tenancy import scoped
    from courier.domains.messaging.posting import AuditActor, NewPost, post_messages
    from courier.models.audit_event import AuditEvent
    from courier.models.event import Event
    from courier.models.job import Job
    from courier.models.messaging import MessagingMessage

    alice = await make_individual(client, org, "Alice", "Patient")
    gone, message_id = uuid.uuid4(), uuid.uuid4()
    organization = uuid.UUID(org.id)
    database = app.state.database
    async with database.sessionmaker() as session:
        with pytest.raises(ApiError) as raised:
            await post_messages(
                session,
                organization,
                [NewPost(gone, uuid.UUID(alice), "Hello?", message_id=message_id)],
                actor=AuditActor("system", "test"),
            )
        await session.rollback()
    assert raised.value.status == 404
    assert str(gone) in raised.value.items[0].detail
    async with database.sessionmaker() as session:
        messages = select(MessagingMessage.id).where(MessagingMessage.id == message_id)
        found = await session.execute(scoped(messages, MessagingMessage, organization))
        jobs = (await session.execute(scoped(select(Job.payload), Job, organization))).scalars()
        payloads = list(jobs)
        events = select(Event.id).where(Event.resource_id == message_id)
        audited = select(AuditEvent.id).where(AuditEvent.resource_id == message_id)
        event = (await session.execute(scoped(events, Event, organization))).first()
        audit = (await session.execute(scoped(audited, AuditEvent, organization))).first()
    assert event is None and audit is None
    assert found.first() is None
    assert not [p for p in payloads if p.get("message_id") == str(message_id)]


async def test_a_post_is_announced_once_with_its_event_and_audit_row(
    client: httpx.AsyncClient, org: Org, app: Any, database_url: str
) -> None:
    """What the post's one statement writes besides the message, as others see it: the
    ``messaging-messages.created`` event (on the events API, with its seq), its audit row, and
    on PostgreSQL one ``courier_events`` notification naming that seq and one to the workers
    (the analysis job), delivered when it commits; a post refused tells nobody."""
    import asyncio
    import uuid

    from sqlalchemy import select
    from sqlalchemy.engine import make_url

    from courier.core.tenancy import scoped
    from courier.models.audit_event import AuditEvent
    from courier.models.event import Event

    alice = await make_individual(client, org, "Alice", "Patient")
    bob = await make_individual(client, org, "Bob", "Patient")
    channel = await make_channel(client, org, {"individual-ids": [alice, bob]})
    await caches_listening(app)
    postgres = app.state.database.engine.dialect.name == "postgresql"
    received: list[tuple[str, str]] = []
    listener: Any = None
    if postgres:
        import asyncpg  # type: ignore[import-untyped]

        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        listener = await asyncpg.connect(dsn)
        for name in ("courier_events", "courier_jobs"):
            await listener.add_listener(name, lambda *a: received.append((a[2], a[3])))
    try:
        refused = await post(client, org.staff, channel["id"], "   ", **{"individual-id": alice})
        assert refused.status_code == 400, refused.text
        response = await post(client, org.staff, channel["id"], "Hi", **{"individual-id": alice})
        assert response.status_code == 201, response.text
        message_id = response.json()["data"]["id"]
        async with app.state.database.sessionmaker() as session:
            audited = select(AuditEvent.action).where(
                AuditEvent.resource_id == uuid.UUID(message_id)
            )
            actions = list(
                (await session.execute(scoped(audited, AuditEvent, uuid.UUID(org.id)))).scalars()
            )
            published = select(Event.seq, Event.type).where(
                Event.resource_id == uuid.UUID(message_id)
            )
            ((seq, kind),) = await session.execute(scoped(published, Event, uuid.UUID(org.id)))
        assert actions == ["created"]
        assert kind == "messaging-messages.created" and seq > 0
        if postgres:
            for _ in range(100):
                if len(received) >= 2:
                    break
                await asyncio.sleep(0.05)
            assert sorted(received) == [
                ("courier_events", f"{org.id}:{seq}"),
                ("courier_jobs", ""),
            ]
    finally:
        if listener is not None:
            await listener.close()


async def test_a_post_on_sqlite_is_three_calls_to_the_connections_thread(
    client: httpx.AsyncClient, org: Org, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN IMMEDIATE with the post's look-up, its writes together with its audit row and
    event, COMMIT; nothing when it returns to the pool (the key and the consumers' interest
    kept)."""
    if app.state.database.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's connection thread")
    from courier.core import sqlite

    alice = await make_individual(client, org, "Alice", "Patient")
    bob = await make_individual(client, org, "Bob", "Patient")
    channel = await make_channel(client, org, {"individual-ids": [alice, bob]})
    first = await post(client, org.staff, channel["id"], "warm-up", **{"individual-id": alice})
    assert first.status_code == 201, first.text
    by_connection: dict[int, list[str]] = {}  # (a background job's claim has its own)
    run = sqlite.Connection._execute

    async def counted(self: sqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        by_connection.setdefault(id(self), []).append(getattr(fn, "__qualname__", repr(fn)))
        return await run(self, fn, *args, **kwargs)

    monkeypatch.setattr(sqlite.Connection, "_execute", counted)
    response = await post(
        client, org.staff, channel["id"], "How is my knee?", **{"individual-id": alice}
    )
    assert response.status_code == 201, response.text
    (calls,) = [c for c in by_connection.values() if any("run_together" in n for n in c)]
    assert len(calls) == 3, calls
    assert "run_together" in calls[1], calls
