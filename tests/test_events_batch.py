"""A transaction's events and audit rows are written in batches (courier.events): one
multi-row INSERT each, the events' seqs ascending in publish order, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select

from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.events import NewEvent, on_committed, publish_many, write_events
from courier.events.published import Published
from courier.jsonapi.changes import SYSTEM, change, write_changes
from courier.models.audit_event import AuditEvent
from courier.models.event import Event
from tests.conftest import Org
from tests.support import count_queries


def events_of(org: Org, resource_id: uuid.UUID, n: int) -> list[NewEvent]:
    return [
        NewEvent(uuid.UUID(org.id), "batch-checks", f"step-{i}", resource_id, data={"n": i})
        for i in range(n)
    ]


async def stored(app: Any, org: Org, resource_id: uuid.UUID) -> list[tuple[int, str]]:
    async with app.state.database.sessionmaker() as session:
        stmt = scoped(select(Event.seq, Event.type), Event, uuid.UUID(org.id)).where(
            Event.resource_id == resource_id
        )
        rows = [(int(seq), kind) for seq, kind in await session.execute(stmt.order_by(Event.seq))]
        await commit(session)
    return rows


async def test_a_transactions_events_are_one_insert_in_publish_order(app: Any, org: Org) -> None:
    resource = uuid.uuid4()
    heard: list[Published] = []

    async def listener(events: list[Published]) -> None:
        heard.extend(e for e in events if e.resource_id == resource)

    on_committed(listener)
    with count_queries(app, "INSERT INTO events") as inserts:
        async with app.state.database.sessionmaker() as session:
            made = publish_many(session, events_of(org, resource, 120))
            assert all(e.seq == 0 for e in made)  # not written yet
            await commit(session)
    assert len(inserts) == 1
    rows = await stored(app, org, resource)
    assert [kind for _seq, kind in rows] == [f"batch-checks.step-{i}" for i in range(120)]
    assert [e.seq for e in made] == [seq for seq, _kind in rows]
    assert [e.seq for e in heard] == [seq for seq, _kind in rows]  # listeners see every one


async def test_concurrent_transactions_each_keep_their_order(app: Any, org: Org) -> None:
    resources = [uuid.uuid4() for _ in range(4)]

    async def one(resource: uuid.UUID) -> list[Published]:
        async with app.state.database.sessionmaker() as session:
            made = publish_many(session, events_of(org, resource, 50))
            await write_events(session)  # seqs taken now, committed a moment later
            await asyncio.sleep(0.01)
            await commit(session)
        return made

    batches = await asyncio.gather(*(one(resource) for resource in resources))
    seen: set[int] = set()
    for resource, made in zip(resources, batches, strict=True):
        seqs = [e.seq for e in made]
        assert seqs == sorted(seqs) and len(set(seqs)) == 50
        assert not seen & set(seqs)
        seen |= set(seqs)
        rows = await stored(app, org, resource)
        assert rows == [(e.seq, e.type) for e in made]


async def test_write_changes_writes_one_audit_insert_and_one_event_insert(
    app: Any, org: Org
) -> None:
    ids = [uuid.uuid4() for _ in range(30)]
    with count_queries(app, "INSERT INTO") as inserts:
        async with app.state.database.sessionmaker() as session:
            write_changes(
                session,
                [
                    change(
                        "batch-checks",
                        ident,
                        "created",
                        fields=["b", "a"],
                        details={"count": 2},
                    )
                    for ident in ids
                ],
                actor=SYSTEM,
                request_id="req-batch",
                organization_id=uuid.UUID(org.id),
            )
            await commit(session)
    assert len([s for s in inserts if "audit_events" in s]) == 1
    assert len([s for s in inserts if "INSERT INTO events" in s]) == 1
    async with app.state.database.sessionmaker() as session:
        stmt = scoped(select(AuditEvent), AuditEvent, uuid.UUID(org.id)).where(
            AuditEvent.resource_id.in_(ids)
        )
        audit = list((await session.execute(stmt)).scalars())
        await commit(session)
    assert len(audit) == 30
    assert {row.resource_id for row in audit} == set(ids)
    row = audit[0]
    assert (row.actor_type, row.actor_id, row.action, row.request_id) == (
        "system",
        "courier",
        "created",
        "req-batch",
    )
    assert row.changed_fields == {"fields": ["a", "b"], "count": 2}


async def test_a_plain_commit_still_writes_and_a_rollback_forgets(app: Any, org: Org) -> None:
    kept, dropped = uuid.uuid4(), uuid.uuid4()
    async with app.state.database.sessionmaker() as session:
        publish_many(session, events_of(org, dropped, 2))
        write_changes(
            session,
            [change("batch-checks", dropped, "created")],
            actor=SYSTEM,
            request_id=None,
            organization_id=uuid.UUID(org.id),
        )
        await session.rollback()
        publish_many(session, events_of(org, kept, 2))
        write_changes(
            session,
            [change("batch-checks", kept, "created", published=False)],
            actor=SYSTEM,
            request_id=None,
            organization_id=uuid.UUID(org.id),
        )
        await session.commit()  # not courier.core.db.commit (as the CLI does)
    assert [kind for _seq, kind in await stored(app, org, kept)] == [
        "batch-checks.step-0",
        "batch-checks.step-1",
    ]
    assert await stored(app, org, dropped) == []
    async with app.state.database.sessionmaker() as session:
        stmt = scoped(
            select(AuditEvent.resource_id, func.count()), AuditEvent, uuid.UUID(org.id)
        ).where(AuditEvent.resource_id.in_([kept, dropped]))
        counts = dict((await session.execute(stmt.group_by(AuditEvent.resource_id))).all())
        await commit(session)
    assert counts == {kept: 1}


async def test_savepoints_and_a_closed_session(app: Any, org: Org) -> None:
    kept, dropped, after = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    heard: list[uuid.UUID | None] = []

    async def listener(events: list[Published]) -> None:
        heard.extend(e.resource_id for e in events if e.resource_id in (kept, dropped, after))

    on_committed(listener)
    async with app.state.database.sessionmaker() as session:
        publish_many(session, events_of(org, kept, 1))
        async with session.begin_nested():  # released: the transaction goes on
            publish_many(session, events_of(org, kept, 1)[:1])
        await commit(session)
        publish_many(session, events_of(org, dropped, 1))
        await session.close()  # never committed: forgotten
        publish_many(session, events_of(org, after, 1))
        await commit(session)
    assert [kind for _seq, kind in await stored(app, org, kept)] == ["batch-checks.step-0"] * 2
    assert await stored(app, org, dropped) == []
    assert len(await stored(app, org, after)) == 1
    assert heard == [kept, kept, after]
