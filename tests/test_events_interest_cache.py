"""Whether an organization has webhooks or announcers is kept per process (courier.events.
interest), yet a webhook or announcer added, deactivated or deleted by one Courier process acts
on the very next write of another: the changing transaction tells every process as it commits
(PostgreSQL). SQLite keeps nothing and asks every time. And what a write's commit adds for its
events, audit rows and notifications is a bounded number of statements on both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from courier.app import create_app
from courier.config import Settings
from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.domains.announcers.service import EVALUATE_KIND
from courier.events import NewEvent, publish_many, write_events
from courier.events.interest import interest_cache
from courier.events.webhooks import FANOUT_KIND
from courier.models.event import Event
from courier.models.job import Job
from tests.conftest import Org, doc
from tests.factories import make_individual_id
from tests.sms_support import another_process
from tests.support import count_queries
from tests.test_announcers import make_template
from tests.test_webhooks import cause_event, create_webhook

HOOK_URL = "http://127.0.0.1:9/hooks"


async def queued(app: Any, org: Org, kind: str) -> int:
    """How many jobs of ``kind`` the organization has (whatever their state)."""
    async with app.state.database.sessionmaker() as session:
        stmt = scoped(select(func.count()).select_from(Job), Job, uuid.UUID(org.id))
        found = int((await session.execute(stmt.where(Job.kind == kind))).scalar_one())
        await commit(session)
    return found


async def listening(app: Any) -> bool:
    """Wait until the app hears of every change (what makes it keep anything: on PostgreSQL
    once its listener holds LISTEN, on SQLite from the start, through the file beside the
    database); whether it is PostgreSQL."""
    cache = interest_cache(app.state.database.engine.sync_engine)
    if app.state.database.is_sqlite:
        assert cache.listening
        return False
    for _ in range(200):
        if cache.listening:
            return True
        await asyncio.sleep(0.05)
    raise AssertionError("the event listener never started")


@pytest.fixture
async def second(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another Courier application (its own engine, cache and listener) on the database."""
    other = create_app(settings)
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="http://courier.test"
        ) as http,
    ):
        await listening(other)
        yield http


async def stored_types(app: Any, org: Org) -> list[str]:
    """The organization's batch-checks events, in seq order."""
    async with app.state.database.sessionmaker() as session:
        stmt = scoped(select(Event.type), Event, uuid.UUID(org.id)).where(
            Event.resource_type == "batch-checks"
        )
        found = list((await session.execute(stmt.order_by(Event.seq))).scalars())
        await commit(session)
    return found


def app_of(client: httpx.AsyncClient) -> Any:
    return client._transport.app  # type: ignore[attr-defined]


async def test_a_webhook_changed_by_one_application_acts_on_the_next_write_of_another(
    client: httpx.AsyncClient, org: Org, second: httpx.AsyncClient
) -> None:
    other = app_of(second)
    for _ in range(2):  # none: known (and kept where it is kept) by the other application
        await cause_event(second, org)
    assert await queued(other, org, FANOUT_KIND) == 0
    cache = interest_cache(other.state.database.engine.sync_engine)
    assert cache.get(uuid.UUID(org.id)) is not None

    hook = await create_webhook(client, org, url=HOOK_URL, **{"event-types": ["api-keys.created"]})
    await cause_event(second, org)
    assert await queued(other, org, FANOUT_KIND) == 1
    await cause_event(second, org)  # kept again, with the webhook
    assert await queued(other, org, FANOUT_KIND) == 2

    path = f"/v1/webhooks/{hook['id']}/"
    off = await client.patch(
        path, headers=org.admin, json=doc("webhooks", {"active": False}, hook["id"])
    )
    assert off.status_code == 200, off.text
    await cause_event(second, org)
    assert await queued(other, org, FANOUT_KIND) == 2

    on = await client.patch(
        path, headers=org.admin, json=doc("webhooks", {"active": True}, hook["id"])
    )
    assert on.status_code == 200, on.text
    await cause_event(second, org)
    assert await queued(other, org, FANOUT_KIND) == 3

    other_types = doc("webhooks", {"event-types": ["individuals.created"]}, hook["id"])
    changed = await client.patch(path, headers=org.admin, json=other_types)
    assert changed.status_code == 200, changed.text
    await cause_event(second, org)
    assert await queued(other, org, FANOUT_KIND) == 3

    assert (await client.delete(path, headers=org.admin)).status_code in (200, 204)
    await make_individual_id(second, org)
    assert await queued(other, org, FANOUT_KIND) == 3


async def test_an_announcer_changed_by_one_application_acts_on_the_next_write_of_another(
    client: httpx.AsyncClient, org: Org, second: httpx.AsyncClient
) -> None:
    other = app_of(second)
    await make_individual_id(second, org)
    await make_individual_id(second, org)
    assert await queued(other, org, EVALUATE_KIND) == 0

    template = await make_template(client, org)
    args = {"template-id": template["id"], "recipients": ["subject"]}
    made = await client.post(
        "/v1/announcers/",
        headers=org.admin,
        json=doc("announcers", {"name": "w", "event": "individual-created", "args": args}),
    )
    assert made.status_code == 201, made.text
    announcer = made.json()["data"]
    await make_individual_id(second, org)
    assert await queued(other, org, EVALUATE_KIND) == 1
    await cause_event(second, org)  # not an event announcers listen for
    assert await queued(other, org, EVALUATE_KIND) == 1

    off = await client.patch(
        f"/v1/announcers/{announcer['id']}/",
        headers=org.admin,
        json=doc("announcers", {"active": False}, announcer["id"]),
    )
    assert off.status_code == 200, off.text
    await make_individual_id(second, org)
    assert await queued(other, org, EVALUATE_KIND) == 1


def webhook(organization: uuid.UUID) -> Any:
    from courier.models.webhook import Webhook

    return Webhook(
        id=uuid.uuid4(),
        organization_id=organization,
        url=HOOK_URL,
        secret="whsec_c2VjcmV0",
        event_types=["api-keys.created"],
        active=True,
        created_by="test",
    )


async def test_a_transaction_that_adds_a_webhook_acts_on_it_without_keeping_it(
    app: Any, client: httpx.AsyncClient, org: Org
) -> None:
    """The transaction that changes an organization's consumers sees the change before others
    do: it neither trusts what is kept (the webhook acts on its own events) nor keeps what it
    read (a rollback leaves nothing behind)."""
    await listening(app)
    organization = uuid.UUID(org.id)
    cache = interest_cache(app.state.database.engine.sync_engine)
    await cause_event(client, org)  # kept: no webhook
    assert cache.get(organization) is not None
    event = NewEvent(organization, "api-keys", "created", uuid.uuid4())

    async with app.state.database.sessionmaker() as session:
        session.add(webhook(organization))
        publish_many(session, [event])
        await session.flush()
        await write_events(session)
        await session.rollback()
    await cause_event(client, org)
    assert await queued(app, org, FANOUT_KIND) == 0

    async with app.state.database.sessionmaker() as session:
        session.add(webhook(organization))
        publish_many(session, [event])
        await commit(session)
    assert await queued(app, org, FANOUT_KIND) == 1
    await cause_event(client, org)
    assert await queued(app, org, FANOUT_KIND) == 2


async def test_a_webhook_added_acts_at_once_in_another_process(
    client: httpx.AsyncClient,
    org: Org,
    app: Any,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    async with another_process(database_url, data_dir, tmp_path) as process:
        await asyncio.sleep(0.5)  # its listener connects (it keeps nothing until then)
        for _ in range(3):
            await cause_event(process, org)
        assert await queued(app, org, FANOUT_KIND) == 0
        await create_webhook(client, org, url=HOOK_URL, **{"event-types": ["api-keys.*"]})
        await cause_event(process, org)
        assert await queued(app, org, FANOUT_KIND) == 1


def kinds(statements: list[str]) -> dict[str, int]:
    """The statements of a commit's events machinery, by what they do (one statement may do
    several), and how many statements that is."""
    found = {"audit": 0, "events": 0, "interest": 0, "notify": 0, "statements": 0}
    for s in statements:
        does = {
            "audit": "INSERT INTO audit_events" in s,
            "events": "INSERT INTO events" in s,
            "interest": "FROM webhooks" in s or "FROM announcers" in s,
            "notify": "pg_notify" in s,
        }
        for what, done in does.items():
            found[what] += done
        found["statements"] += any(does.values())
    return found


async def test_a_writes_events_audit_and_notifications_cost_a_bounded_number_of_statements(
    app: Any, client: httpx.AsyncClient, org: Org
) -> None:
    postgres = await listening(app)
    await cause_event(client, org)  # the organization's interest is kept from here on
    with count_queries(app) as statements:
        await cause_event(client, org)
    found = kinds(statements)
    # PostgreSQL: the audit rows, the events and their notification in one statement, the
    # interest kept (no statement). SQLite: one INSERT each, the interest kept, no
    # notification.
    assert found == (
        {"audit": 1, "events": 1, "interest": 0, "notify": 1, "statements": 1}
        if postgres
        else {"audit": 1, "events": 1, "interest": 0, "notify": 0, "statements": 2}
    ), statements

    # A transaction that publishes many events still writes them once and notifies once.
    with count_queries(app) as many:
        async with app.state.database.sessionmaker() as session:
            publish_many(
                session,
                [
                    NewEvent(uuid.UUID(org.id), "batch-checks", f"n{i}", uuid.uuid4())
                    for i in range(40)
                ],
            )
            await commit(session)
    found = kinds(many)
    assert (found["events"], found["notify"]) == (1, 1 if postgres else 0), many
    assert all(s.count("pg_notify") <= 1 for s in many), many
    assert await stored_types(app, org) == [f"batch-checks.n{i}" for i in range(40)]
