"""A multicast to a 1,000-member group delivers exactly once per device although the real
``courier worker`` carrying it is SIGKILLed twice mid-way; and the push sandbox's ``fetch``
that lets a push caught mid-send be settled (sent once, never twice, never lost)."""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from courier.config import Settings
from courier.core.db import Database
from courier.core.tenancy import unscoped
from courier.models.delivery import Delivery, SandboxRecord
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroup, IndividualGroupMember
from courier.models.push_device import UserDevice
from courier.models.user_notification import UserNotification
from courier.providers.common import DeliveryStatus, NotSent
from courier.providers.push.base import PushDevice, PushMessage
from courier.providers.push.sandbox import SandboxPush
from tests.conftest import Org, doc
from tests.support import WorkerProcesses
from tests.test_bulk_messages import until

REPO = Path(__file__).resolve().parent.parent
REASON = "tests read across the rows they made"
MEMBERS = 1000


@pytest.fixture
def workers(database_url: str, data_dir: Path, tmp_path: Path) -> Iterator[WorkerProcesses]:
    started = WorkerProcesses(database_url, data_dir, tmp_path, concurrency=3)
    yield started
    started.cleanup()


async def seed_group_with_devices(database: Database, org: Org) -> tuple[str, dict[str, str]]:
    """A group of ``MEMBERS`` participants; every member has an apn device and every third a
    second one (fcm): written straight to the database (fast). Returns (group, token -> member)."""
    organization = uuid.UUID(org.id)
    people = [uuid.uuid4() for _ in range(MEMBERS)]
    group = uuid.uuid4()
    now = datetime.now(UTC)
    devices = []
    for n, person in enumerate(people):
        for kind in ("apn", "fcm") if n % 3 == 0 else ("apn",):
            devices.append(
                {
                    "id": uuid.uuid4(),
                    "organization_id": organization,
                    "individual_id": person,
                    "type": kind,
                    "token": f"{kind}-{uuid.uuid4().hex}",
                    "app_name": "",
                    "sandbox": False,
                    "allow_notification": True,
                    "keys": {},
                    "active": True,
                    "created_at": now,
                    "last_modified_at": now,
                }
            )
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(Individual.__table__),
            [
                {
                    "id": person,
                    "organization_id": organization,
                    "first_name": "Pat",
                    "last_name": f"Member {n}",
                    "account_type": "participant",
                    "extended": {},
                }
                for n, person in enumerate(people)
            ],
        )
        await connection.execute(
            insert(IndividualGroup.__table__),
            [{"id": group, "organization_id": organization, "name": "Cohort"}],
        )
        await connection.execute(
            insert(IndividualGroupMember.__table__),
            [
                {"organization_id": organization, "group_id": group, "individual_id": person}
                for person in people
            ],
        )
        for start in range(0, len(devices), 500):
            await connection.execute(insert(UserDevice.__table__), devices[start : start + 500])
    return str(group), {d["token"]: str(d["individual_id"]) for d in devices}


async def test_a_thousand_members_exactly_once_per_device_though_the_worker_is_killed_twice(
    client: httpx.AsyncClient, org: Org, app: Any, workers: WorkerProcesses
) -> None:
    database: Database = app.state.database
    group, tokens = await seed_group_with_devices(database, org)
    created = await client.post(
        "/v1/templates/",
        headers=org.admin,
        json=doc(
            "templates",
            {
                "name": "closure",
                "apn": {"title": "Clinic", "body": "{{ news }}"},
                "fcm": {"title": "Clinic", "body": "{{ news }}"},
                "required-data": {"news": "string"},
            },
        ),
    )
    assert created.status_code == 201, created.text
    response = await client.post(
        "/v1/multicasts/",
        headers=org.staff,
        json=doc(
            "multicasts",
            {
                "filter-type": "group",
                "filter-value": {"individual-group-id": group},
                "template-id": "closure",
                "data": {"news": "The clinic is closed on Friday."},
            },
        ),
    )
    assert response.status_code == 201, response.text
    multicast = response.json()["data"]["id"]

    async def view() -> dict[str, Any]:
        got = await client.get(f"/v1/multicasts/{multicast}/", headers=org.readonly)
        assert got.status_code == 200, got.text
        attributes: dict[str, Any] = got.json()["data"]["attributes"]
        return attributes

    async def all_shown() -> int:
        stmt = select(func.count()).where(
            SandboxRecord.kind == "push", SandboxRecord.collection == "shown"
        )
        async with database.sessionmaker() as session:
            return int((await session.execute(stmt)).scalar_one())

    before = await all_shown()  # other tests' pushes on the session's database

    async def pushes_shown() -> int:
        return await all_shown() - before

    settings = {
        "multicast_chunk_size": "20",
        "job_lease_seconds": "2",
        "delivery_grace_seconds": "4",
        "database_pool_size": "3",
        "database_max_overflow": "2",
    }

    # The first kill lands mid fan-out (notifications being made chunk by chunk), the second
    # mid push sending (the deliveries those chunks enqueued).
    async def notified() -> int:
        return int((await view())["notified-count"])

    kills = []
    for measure, threshold, what in ((notified, 150, "notified"), (pushes_shown, 300, "pushed")):
        worker = workers.start(**settings)

        async def far_enough(
            worker: Any = worker, measure: Any = measure, at: int = threshold
        ) -> bool:
            assert worker.poll() is None, "worker died:\n" + workers.log_of(worker)
            return bool(await measure() >= at)

        await until(far_enough, f"{threshold} {what}")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        kills.append((await notified(), await pushes_shown()))
    assert kills[0][0] < MEMBERS, "the fan-out finished before the first kill"
    assert kills[1][1] < len(tokens), "every push was sent before the second kill"

    last = workers.start(**settings)

    async def all_settled() -> bool:
        assert last.poll() is None, "worker died:\n" + workers.log_of(last)
        if (await view())["status"] != "completed":
            return False
        stmt = select(func.count()).where(
            Delivery.state.in_(
                [
                    DeliveryStatus.ACCEPTED.value,
                    DeliveryStatus.QUEUED.value,
                    DeliveryStatus.SENDING.value,
                ]
            )
        )
        async with database.sessionmaker() as session:
            unsettled = (await session.execute(unscoped(stmt, REASON))).scalar_one()
        return bool(unsettled == 0)

    await until(all_settled, "every push to be settled", deadline=300.0)
    last.send_signal(signal.SIGTERM)
    last.wait(timeout=60)

    shown = await view()
    assert (shown["recipient-count"], shown["notified-count"], shown["skipped-count"]) == (
        MEMBERS,
        MEMBERS,
        0,
    )
    async with database.sessionmaker() as session:
        notified = Counter(
            (
                await session.execute(
                    unscoped(
                        select(UserNotification.individual_id).where(
                            UserNotification.source == f"multicast:{multicast}"
                        ),
                        REASON,
                    )
                )
            ).scalars()
        )
        phones = Counter(
            (
                await session.execute(
                    select(SandboxRecord.key).where(
                        SandboxRecord.kind == "push", SandboxRecord.collection == "shown"
                    )
                )
            ).scalars()
        )
    assert len(notified) == MEMBERS and set(notified.values()) == {1}
    phones = Counter({token: n for token, n in phones.items() if token in tokens})  # this test's
    assert set(phones) == set(tokens), "a device got nothing"
    assert set(phones.values()) == {1}, [t for t, n in phones.items() if n > 1][:5]


async def test_push_sandbox_fetch_tells_a_taken_push_from_one_never_taken(
    settings: Settings, app: Any
) -> None:
    sandbox = SandboxPush(settings)
    device = PushDevice(platform="apn", token=f"apn-{uuid.uuid4().hex}")
    taken, never = uuid.uuid4(), uuid.uuid4()
    sent = await sandbox.send(device, PushMessage(title="t", body="b"), delivery_id=taken)
    found = await sandbox.fetch(delivery_id=taken, vendor_id=None, recipient="device")
    assert found is not None
    assert (found.vendor_id, found.status) == (sent.vendor_id, DeliveryStatus.SENT)
    with pytest.raises(NotSent):
        await sandbox.fetch(delivery_id=never, vendor_id=None, recipient="device")
