"""A number's send rate and an account's quiet hours, over HTTP: however many texts are
accepted at once, each leaves in a slot of its own (``1 / rate-per-second`` apart); a text that
is not urgent and falls due in quiet hours waits until they end. Jobs run in-process."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

import courier.domains.text_accounts.jobs
import courier.domains.texts.jobs
import courier.providers.delivery  # noqa: F401
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.jobs import run_until_idle
from courier.models.job import Job
from courier.models.text import OutboundText
from tests.conftest import Org, doc
from tests.support import jobs_fall_due

SEND_JOB = "deliveries.send"
EPSILON = timedelta(microseconds=1)  # timestamps are stored to the microsecond


def new_phone() -> str:
    """A valid US number no other test texts (the sandbox's phones are shared)."""
    import random

    import phonenumbers

    while True:
        phone = f"+1415{random.randint(2, 9)}{random.randint(0, 999999):06d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(phone)):
            return phone


async def make_number(
    client: httpx.AsyncClient, app: Any, org: Org, rate: float, **account: Any
) -> dict[str, Any]:
    created = await client.post(
        "/v1/text-accounts/", json=doc("text-accounts", account), headers=org.admin
    )
    assert created.status_code == 201, created.text
    made = await client.post(
        "/v1/text-account-numbers/",
        json=doc("text-account-numbers", {"area-code": "415", "rate-per-second": rate}),
        headers=org.admin,
    )
    assert made.status_code == 201, made.text
    await run_until_idle(
        app.state.database, app.state.settings, kinds=["texts.provision-number"], horizon=0.5
    )
    got = await client.get(
        f"/v1/text-account-numbers/{made.json()['data']['id']}/", headers=org.admin
    )
    number: dict[str, Any] = got.json()["data"]
    assert number["attributes"]["status"] == "active", number
    return number


async def send(
    client: httpx.AsyncClient, org: Org, number: dict[str, Any], target: str, **attributes: Any
) -> str:
    answer = await client.post(
        "/v1/texts/",
        json=doc(
            "texts",
            {
                "target": target,
                "message": "See you Monday",
                "number-id": number["id"],
                **attributes,
            },
        ),
        headers=org.staff,
    )
    assert answer.status_code == 201, answer.text
    ident: str = answer.json()["data"]["id"]
    return ident


async def send_times(app: Any, org: Org, texts: list[str]) -> list[datetime]:
    """When each text's send job may run (its slot), in the order of ``texts``."""
    org_id = uuid.UUID(org.id)
    async with app.state.database.sessionmaker() as session:
        texts_stmt = scoped(
            select(OutboundText.id, OutboundText.delivery_id).where(
                OutboundText.id.in_([uuid.UUID(t) for t in texts])
            ),
            OutboundText,
            org_id,
        )
        deliveries = {row.id: row.delivery_id for row in await session.execute(texts_stmt)}
        jobs_stmt = scoped(
            select(Job.dedupe_key, Job.run_at).where(Job.kind == SEND_JOB), Job, org_id
        )
        jobs = {row.dedupe_key: row.run_at for row in await session.execute(jobs_stmt)}
    return [jobs[f"{SEND_JOB}:{deliveries[uuid.UUID(t)]}:0"] for t in texts]


async def release_times(app: Any, org: Org) -> list[datetime]:
    """When the organization's held texts fall due (their release jobs), earliest first."""
    async with app.state.database.sessionmaker() as session:
        stmt = scoped(
            select(Job.run_at).where(Job.kind == "texts.release", Job.state == "queued"),
            Job,
            uuid.UUID(org.id),
        )
        return sorted((await session.execute(stmt)).scalars())


async def carrier_times(client: httpx.AsyncClient, org: Org, phone: str) -> list[datetime]:
    got = await client.get("/sandbox/sms/messages", params={"number": phone}, headers=org.admin)
    assert got.status_code == 200, got.text
    return sorted(datetime.fromisoformat(m["date-created"]) for m in got.json()["data"])


async def test_texts_accepted_at_once_leave_one_slot_apart(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    rate = 5.0  # texts per second: a slot every 0.2 s
    interval = timedelta(seconds=1 / rate)
    number = await make_number(client, app, org, rate)
    phone = new_phone()
    before = utcnow()
    # Twelve clients at once: on PostgreSQL their transactions overlap.
    texts = await asyncio.gather(*(send(client, org, number, phone) for _ in range(12)))
    slots = sorted(await send_times(app, org, list(texts)))
    assert slots[0] >= before - EPSILON
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert all(gap >= interval - EPSILON for gap in gaps), gaps
    # The queue was empty: the slots follow on from the first, none is left unused.
    assert slots[-1] - slots[0] <= interval * 11 + timedelta(seconds=1), slots

    # The carrier gets them no faster: the k-th leaves no earlier than k slots after the first
    # was accepted.
    await run_until_idle(app.state.database, app.state.settings, horizon=3.0)
    sent = await carrier_times(client, org, phone)
    assert len(sent) == 12
    for k, at in enumerate(sent):
        assert at >= before + interval * k - timedelta(milliseconds=2), (k, at, before)

    # A later text takes the next free slot, after the last one taken.
    later = await send(client, org, number, phone)
    assert (await send_times(app, org, [later]))[0] >= max(slots[-1] + interval, before)


async def test_each_number_keeps_its_own_slots(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    slow = await make_number(client, app, org, 1.0)
    fast_made = await client.post(
        "/v1/text-account-numbers/",
        json=doc("text-account-numbers", {"area-code": "415", "rate-per-second": 1000}),
        headers=org.admin,
    )
    assert fast_made.status_code == 201, fast_made.text
    await run_until_idle(
        app.state.database, app.state.settings, kinds=["texts.provision-number"], horizon=0.5
    )
    fast = fast_made.json()["data"]
    phone = new_phone()
    before = utcnow()
    on_slow = [await send(client, org, slow, phone) for _ in range(3)]
    on_fast = [await send(client, org, fast, phone) for _ in range(3)]
    slow_slots = await send_times(app, org, on_slow)
    fast_slots = await send_times(app, org, on_fast)
    # One per second from the slow number; the fast one is not held up behind it.
    assert [b - a for a, b in itertools.pairwise(slow_slots)] == [timedelta(seconds=1)] * 2
    assert all(slot < before + timedelta(seconds=1) for slot in fast_slots), fast_slots


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M")


async def test_quiet_hours_hold_texts_that_are_not_urgent(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    # Quiet hours from an hour ago to an hour from now, on the organization's clock.
    local = utcnow().astimezone(ZoneInfo("America/New_York"))
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    number = await make_number(
        client, app, org, 1.0, **{"quiet-hours": {"start": _clock(start), "end": _clock(end)}}
    )
    phone = new_phone()
    before = utcnow()
    waiting = [await send(client, org, number, phone) for _ in range(2)]
    # An urgent text sent after them leaves at once: the held ones take no slot yet.
    urgent = await send(client, org, number, phone, urgent=True)
    (now,) = await send_times(app, org, [urgent])
    assert now < before + timedelta(seconds=5), (now, before)
    ends = end.replace(second=0, microsecond=0)
    assert await release_times(app, org) == [ends, ends]

    # The clock reaches the end of the quiet hours: the held texts take their slots then,
    # one after the other (1 per second).
    await jobs_fall_due(app.state.database, org.id, kinds=["texts.release"])
    await run_until_idle(app.state.database, app.state.settings, kinds=["texts.release"])
    held = await send_times(app, org, waiting)
    assert sorted(held) == [ends, ends + timedelta(seconds=1)], (held, ends)

    await run_until_idle(app.state.database, app.state.settings, horizon=1.0)
    sent = await carrier_times(client, org, phone)
    assert len(sent) == 1  # only the urgent one left; the other waits for the morning
    for text in waiting:
        status = await client.get(f"/v1/texts/{text}/", headers=org.staff)
        assert status.json()["data"]["attributes"]["status"] == "accepted"
