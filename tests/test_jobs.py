"""The jobs engine in one process: outbox, handlers, retries, steps, leases, the HTTP API."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from courier.app import create_app
from courier.config import Settings
from courier.core.auth import Permission
from courier.core.db import Database, commit
from courier.core.errors import conflict
from courier.core.handlers import JsonResponse
from courier.core.tenancy import scoped, unscoped
from courier.core.time import utcnow
from courier.jobs import (
    InvalidJobPayloadError,
    Job,
    JobContext,
    JobStep,
    PermanentJobError,
    cancel,
    check_payload,
    enqueue,
    job_handler,
    run_until_idle,
)
from courier.jobs.worker import LOST_LEASE_ERROR, backoff_seconds
from courier.jsonapi.context import Context, context_dependency
from tests.conftest import Org, make_settings
from tests.jobs_fixture import create_test_tables, record_effect

EFFECT = "test.effect"
FLAKY = "test.flaky"
BROKEN = "test.broken"
PERMANENT = "test.permanent"
STEPS = "test.steps"
FENCED = "test.fenced"
ORDER = "test.order"

step_calls: dict[str, int] = {}
order_seen: list[str] = []


@job_handler(EFFECT)
async def effect(job: JobContext) -> dict[str, Any] | None:
    await record_effect(job)
    return {"organization": job.organization_id, "attempt": job.attempt}


@job_handler(FLAKY)
async def flaky(job: JobContext) -> dict[str, Any] | None:
    await record_effect(job)  # rolled back with each failed attempt
    if job.attempt < 3:
        raise RuntimeError(f"flaky attempt {job.attempt}")
    return {"attempt": job.attempt}


@job_handler(BROKEN, max_attempts=3)
async def broken(job: JobContext) -> dict[str, Any] | None:
    await record_effect(job)
    raise ValueError("the provider refused: " + "x" * 5000)


@job_handler(PERMANENT)
async def permanent(job: JobContext) -> dict[str, Any] | None:
    raise PermanentJobError("the recipient no longer exists")


@job_handler(STEPS)
async def steps(job: JobContext) -> dict[str, Any] | None:
    key = str(job.job_id)

    async def send() -> dict[str, Any]:
        step_calls[key] = step_calls.get(key, 0) + 1
        return {"provider-id": f"msg-{step_calls[key]}", "key": job.idempotency_key("send")}

    sent = await job.step("send", send)
    await record_effect(job)
    if job.attempt == 1:
        raise ConnectionError("lost the connection after sending")
    return {"sent": sent}


@job_handler(FENCED)
async def fenced(job: JobContext) -> dict[str, Any] | None:
    # Another worker takes the job over (as if this one had stalled past its lease). Done
    # before the handler's own session writes: on SQLite that session holds the write lock.
    database = Database(job.settings)
    try:
        async with database.sessionmaker() as other:
            stmt = scoped(update(Job).where(Job.id == job.job_id), Job, job.organization_id)
            await other.execute(stmt.values(lease_owner="another-worker"))
            await other.commit()
    finally:
        await database.dispose()
    await record_effect(job)
    return {"should": "not land"}


@job_handler(ORDER)
async def order(job: JobContext) -> dict[str, Any] | None:
    order_seen.append(str(job.payload["name"]))
    return None


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def database(app: Any) -> AsyncIterator[Database]:
    db: Database = app.state.database
    await create_test_tables(db.engine)
    yield db


@pytest.fixture
def fast(database_url: str, data_dir: Path) -> Settings:
    """Settings with retries a few milliseconds apart."""
    return make_settings(
        database_url, data_dir, job_backoff_base_seconds=0.01, job_backoff_max_seconds=0.05
    )


async def add_job(
    database: Database, org: Org, kind: str, payload: dict[str, Any] | None = None, **kw: Any
) -> uuid.UUID:
    async with database.sessionmaker() as session:
        job = await enqueue(session, kind, payload or {}, organization_id=uuid.UUID(org.id), **kw)
        await commit(session)
        return job.id


async def load(database: Database, job_id: uuid.UUID) -> Job:
    async with database.sessionmaker() as session:
        stmt = unscoped(select(Job).where(Job.id == job_id), "tests read any job")
        job: Job = (await session.execute(stmt)).scalar_one()
        return job


async def effects(database: Database, job_id: uuid.UUID) -> int:
    async with database.engine.connect() as connection:
        result = await connection.execute(
            text("SELECT count(*) FROM job_test_effects WHERE job_id = :job"), {"job": str(job_id)}
        )
        return int(result.scalar_one())


# --- the outbox ------------------------------------------------------------------------------


async def test_a_failed_request_leaves_no_job(
    settings: Settings, database: Database, org: Org
) -> None:
    marker = uuid.uuid4().hex
    router = APIRouter()

    @router.post("/v1/test-enqueue/")
    async def enqueue_then(
        fail: bool = False, ctx: Context = Depends(context_dependency(Permission.MANAGE))
    ) -> JsonResponse:
        job = await enqueue(
            ctx.session, EFFECT, {"marker": marker}, organization_id=ctx.organization_id
        )
        if fail:
            raise conflict("refused after enqueueing")
        return JsonResponse({"id": str(job.id)}, status_code=201)

    application = create_app(settings)
    application.include_router(router)
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            failed = await http.post("/v1/test-enqueue/?fail=true", headers=org.admin)
            assert failed.status_code == 409, failed.text
            accepted = await http.post("/v1/test-enqueue/", headers=org.admin)
            assert accepted.status_code == 201, accepted.text
    finally:
        await application.state.database.dispose()

    async with database.sessionmaker() as session:
        stmt = scoped(select(Job), Job, uuid.UUID(org.id))
        jobs = [
            j for j in (await session.execute(stmt)).scalars() if j.payload == {"marker": marker}
        ]
    assert [str(j.id) for j in jobs] == [accepted.json()["id"]]
    assert jobs[0].state == "queued"


async def test_payloads_carry_ids_only() -> None:
    ident = uuid.uuid4()
    assert check_payload({"individual_id": ident, "n": 3, "flag": True, "none": None}) == {
        "individual_id": str(ident),
        "n": 3,
        "flag": True,
        "none": None,
    }
    for bad in (
        {"individual": {"first-name": "Ann"}},
        {"ids": ["a", "b"]},
        {"body": "x" * 300},
        {f"k{i}": "y" * 200 for i in range(30)},
        {"ratio": float("nan")},
    ):
        with pytest.raises(InvalidJobPayloadError):
            check_payload(bad)


async def test_enqueue_refuses_bad_arguments(database: Database, org: Org) -> None:
    async with database.sessionmaker() as session:
        org_id = uuid.UUID(org.id)
        with pytest.raises(InvalidJobPayloadError):
            await enqueue(session, EFFECT, {"nested": {"a": 1}}, organization_id=org_id)
        with pytest.raises(ValueError, match="aware"):
            await enqueue(
                session, EFFECT, {}, organization_id=org_id, run_at=utcnow().replace(tzinfo=None)
            )
        with pytest.raises(ValueError, match="max_attempts"):
            await enqueue(session, EFFECT, {}, organization_id=org_id, max_attempts=0)
        with pytest.raises(ValueError, match="kind"):
            await enqueue(session, "", {}, organization_id=org_id)


async def test_dedupe_key_returns_the_existing_job(
    client: httpx.AsyncClient, settings: Settings, database: Database, org: Org, other_org: Org
) -> None:
    first = await add_job(database, org, EFFECT, {"n": 1}, dedupe_key="reminder:42")
    async with database.sessionmaker() as session:
        again = await enqueue(
            session, EFFECT, {"n": 2}, organization_id=uuid.UUID(org.id), dedupe_key="reminder:42"
        )
        twice = await enqueue(
            session, EFFECT, {"n": 3}, organization_id=uuid.UUID(org.id), dedupe_key="reminder:42"
        )
        await commit(session)
    assert again.id == twice.id == first
    assert again.payload == {"n": 1}
    elsewhere = await add_job(database, other_org, EFFECT, {"n": 1}, dedupe_key="reminder:42")
    assert elsewhere != first
    # Two keys enqueued in one transaction, neither committed before: both land.
    async with database.sessionmaker() as session:
        a = await enqueue(session, EFFECT, {}, organization_id=uuid.UUID(org.id), dedupe_key="a")
        b = await enqueue(session, EFFECT, {}, organization_id=uuid.UUID(org.id), dedupe_key="b")
        await commit(session)
    assert a.id != b.id
    listing = await client.get("/v1/jobs/?page[limit]=1000", headers=org.admin)
    keys = [j["attributes"]["dedupe-key"] for j in listing.json()["data"]]
    assert sorted(k for k in keys if k) == ["a", "b", "reminder:42"]
    await run_until_idle(database, settings, kinds=[EFFECT])


async def test_a_new_dedupe_key_is_added_without_looking_and_still_deduplicates(
    database: Database, org: Org
) -> None:
    org_id = uuid.UUID(org.id)
    key = f"fresh:{uuid.uuid4()}"
    async with database.sessionmaker() as session:
        made = await enqueue(
            session, EFFECT, {"n": 1}, organization_id=org_id, dedupe_key=key, new_key=True
        )
        await commit(session)
    # Later enqueues of that key find it, as for any key.
    async with database.sessionmaker() as session:
        again = await enqueue(session, EFFECT, {"n": 2}, organization_id=org_id, dedupe_key=key)
        await commit(session)
    assert again.id == made.id and again.payload == {"n": 1}
    # A key wrongly declared new is refused by the unique key, never a second job.
    async with database.sessionmaker() as session:
        await enqueue(
            session, EFFECT, {"n": 3}, organization_id=org_id, dedupe_key=key, new_key=True
        )
        with pytest.raises(IntegrityError):
            await commit(session)
    async with database.sessionmaker() as session:
        stmt = scoped(select(Job.payload).where(Job.dedupe_key == key), Job, org_id)
        assert list((await session.execute(stmt)).scalars()) == [{"n": 1}]


async def test_notify_is_sent_on_commit_only(
    database_url: str, settings: Settings, database: Database, org: Org
) -> None:
    if database.is_sqlite:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    received: list[str] = []
    arrived = asyncio.Event()

    def on_notify(*args: Any) -> None:
        received.append(args[2])
        arrived.set()

    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.add_listener("courier_jobs", on_notify)
        async with database.sessionmaker() as session:
            await enqueue(
                session, ORDER, {"name": "rolled-back"}, organization_id=uuid.UUID(org.id)
            )
            await session.flush()
            await session.rollback()
        async with database.sessionmaker() as session:
            for n in range(3):
                await enqueue(session, ORDER, {"name": f"n{n}"}, organization_id=uuid.UUID(org.id))
            await commit(session)
        await asyncio.wait_for(arrived.wait(), timeout=20)
        # Delivered in commit order: a notification of the rolled-back transaction would have
        # come first. One per transaction, however many jobs it enqueued.
        assert received == ["courier_jobs"]
    finally:
        await connection.close()
    await run_until_idle(database, settings, kinds=[ORDER])


# --- running jobs ----------------------------------------------------------------------------


async def test_worker_runs_a_job_with_its_effect(
    client: httpx.AsyncClient, settings: Settings, database: Database, org: Org
) -> None:
    job_id = await add_job(database, org, EFFECT, {"individual_id": uuid.uuid4()})
    assert await run_until_idle(database, settings, kinds=[EFFECT]) >= 1
    job = await load(database, job_id)
    assert job.state == "succeeded"
    assert job.attempts == 1
    assert job.result == {"organization": org.id, "attempt": 1}
    assert job.finished_at is not None and job.started_at is not None
    assert job.lease_owner is None and job.lease_expires_at is None
    assert await effects(database, job_id) == 1

    response = await client.get(f"/v1/jobs/{job_id}/", headers=org.admin)
    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    assert attributes["state"] == "succeeded"
    assert attributes["kind"] == EFFECT
    assert attributes["max-attempts"] == 8
    assert attributes["result"] == {"organization": org.id, "attempt": 1}
    assert set(attributes) >= {
        "kind", "state", "priority", "attempts", "max-attempts", "last-error", "run-at",
        "created-at", "started-at", "finished-at", "result", "payload",
    }  # fmt: skip
    assert attributes["finished-at"].endswith("Z")


async def test_a_flaky_job_is_retried_until_it_succeeds(
    fast: Settings, database: Database, org: Org
) -> None:
    job_id = await add_job(database, org, FLAKY, max_attempts=5)
    assert await run_until_idle(database, fast, kinds=[FLAKY], horizon=5) == 3
    job = await load(database, job_id)
    assert (job.state, job.attempts) == ("succeeded", 3)
    assert job.last_error == "RuntimeError: flaky attempt 2"
    assert job.result == {"attempt": 3}
    assert await effects(database, job_id) == 1  # the failed attempts' effects rolled back


async def test_a_broken_job_fails_after_max_attempts_and_can_be_retried(
    client: httpx.AsyncClient, fast: Settings, database: Database, org: Org, other_org: Org
) -> None:
    job_id = await add_job(database, org, BROKEN)
    await run_until_idle(database, fast, kinds=[BROKEN], horizon=5)
    job = await load(database, job_id)
    assert (job.state, job.attempts, job.max_attempts) == ("failed", 3, 3)
    assert job.last_error is not None
    assert job.last_error.startswith("ValueError: the provider refused: xxx")
    assert len(job.last_error) <= 2000
    assert job.finished_at is not None
    assert await effects(database, job_id) == 0

    failed = await client.get("/v1/jobs/?filter[state]=failed", headers=org.admin)
    assert str(job_id) in {j["id"] for j in failed.json()["data"]}
    assert all(j["attributes"]["state"] == "failed" for j in failed.json()["data"])

    assert (
        await client.post(f"/v1/jobs/{job_id}/retry/", headers=other_org.admin)
    ).status_code == 404
    retried = await client.post(f"/v1/jobs/{job_id}/retry/", headers=org.admin)
    assert retried.status_code == 201, retried.text
    attributes = retried.json()["data"]["attributes"]
    assert (attributes["state"], attributes["attempts"], attributes["finished-at"]) == (
        "queued", 0, None,
    )  # fmt: skip
    again = await client.post(f"/v1/jobs/{job_id}/retry/", headers=org.admin)
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "job-not-failed"

    await run_until_idle(database, fast, kinds=[BROKEN], horizon=5)
    assert (await load(database, job_id)).state == "failed"
    audit = await client.get(f"/v1/audit-events/?filter[resource-id]={job_id}", headers=org.admin)
    assert [e["attributes"]["action"] for e in audit.json()["data"]] == ["retried"]


async def test_a_permanent_error_fails_at_once(
    fast: Settings, database: Database, org: Org
) -> None:
    job_id = await add_job(database, org, PERMANENT, max_attempts=5)
    await run_until_idle(database, fast, kinds=[PERMANENT], horizon=5)
    job = await load(database, job_id)
    assert (job.state, job.attempts) == ("failed", 1)
    assert job.last_error == "PermanentJobError: the recipient no longer exists"


async def test_a_recorded_step_is_not_repeated(
    fast: Settings, database: Database, org: Org
) -> None:
    job_id = await add_job(database, org, STEPS)
    await run_until_idle(database, fast, kinds=[STEPS], horizon=5)
    job = await load(database, job_id)
    assert (job.state, job.attempts) == ("succeeded", 2)
    assert step_calls[str(job_id)] == 1
    assert job.result == {"sent": {"provider-id": "msg-1", "key": f"{job_id}:send"}}
    assert await effects(database, job_id) == 1
    async with database.sessionmaker() as session:
        stmt = scoped(select(JobStep).where(JobStep.job_id == job_id), JobStep, job.organization_id)
        recorded = list((await session.execute(stmt)).scalars())
    assert [(s.name, s.result) for s in recorded] == [
        ("send", {"provider-id": "msg-1", "key": f"{job_id}:send"})
    ]


async def test_a_worker_that_lost_its_lease_commits_nothing(
    settings: Settings, database: Database, org: Org
) -> None:
    job_id = await add_job(database, org, FENCED)
    await run_until_idle(database, settings, kinds=[FENCED])
    job = await load(database, job_id)
    assert (job.state, job.lease_owner, job.result) == ("running", "another-worker", None)
    assert await effects(database, job_id) == 0
    async with database.sessionmaker() as session:
        stmt = scoped(update(Job).where(Job.id == job_id), Job, job.organization_id)
        await session.execute(stmt.values(state="cancelled", lease_owner=None))
        await session.commit()


async def test_jobs_of_a_dead_worker_are_taken_up_again(
    settings: Settings, database: Database, org: Org
) -> None:
    async def orphan(attempts: int) -> uuid.UUID:
        job_id = await add_job(database, org, EFFECT, max_attempts=3)
        async with database.sessionmaker() as session:
            stmt = scoped(update(Job).where(Job.id == job_id), Job, uuid.UUID(org.id))
            await session.execute(
                stmt.values(
                    state="running",
                    attempts=attempts,
                    lease_owner="a-worker-that-was-killed",
                    lease_expires_at=utcnow() - timedelta(seconds=1),
                )
            )
            await session.commit()
        return job_id

    again, exhausted = await orphan(1), await orphan(3)
    await run_until_idle(database, settings, kinds=[EFFECT])
    job = await load(database, again)
    assert (job.state, job.attempts, job.last_error) == ("succeeded", 2, LOST_LEASE_ERROR)
    job = await load(database, exhausted)
    assert (job.state, job.attempts, job.last_error) == ("failed", 3, LOST_LEASE_ERROR)
    assert await effects(database, exhausted) == 0


async def test_priority_run_at_and_cancel(settings: Settings, database: Database, org: Org) -> None:
    order_seen.clear()
    later = await add_job(
        database, org, ORDER, {"name": "later"}, run_at=utcnow() + timedelta(hours=1)
    )
    await add_job(database, org, ORDER, {"name": "low"}, priority=-5)
    await add_job(database, org, ORDER, {"name": "normal"})
    await add_job(database, org, ORDER, {"name": "high"}, priority=10)
    dropped = await add_job(database, org, ORDER, {"name": "dropped"})
    async with database.sessionmaker() as session:
        assert await cancel(session, dropped, organization_id=uuid.UUID(org.id))
        await commit(session)
    await run_until_idle(database, settings, kinds=[ORDER])
    assert order_seen == ["high", "normal", "low"]
    assert (await load(database, later)).state == "queued"
    assert (await load(database, dropped)).state == "cancelled"
    async with database.sessionmaker() as session:
        assert await cancel(session, later, organization_id=uuid.UUID(org.id))
        assert not await cancel(session, dropped, organization_id=uuid.UUID(org.id))
        await commit(session)


async def test_finished_jobs_are_pruned_after_retention(
    settings: Settings, database: Database, org: Org
) -> None:
    old = utcnow() - timedelta(days=30)
    ids = {}
    for state in ("succeeded", "failed", "cancelled"):
        job_id = await add_job(database, org, "test.retention")
        async with database.sessionmaker() as session:
            stmt = scoped(update(Job).where(Job.id == job_id), Job, uuid.UUID(org.id))
            await session.execute(stmt.values(state=state, finished_at=old))
            await session.commit()
        ids[state] = job_id
    recent = await add_job(database, org, EFFECT)
    await run_until_idle(database, settings, kinds=[EFFECT])
    async with database.sessionmaker() as session:
        stmt = scoped(select(Job.id), Job, uuid.UUID(org.id))
        remaining = set((await session.execute(stmt)).scalars())
    assert ids["failed"] in remaining and recent in remaining
    assert ids["succeeded"] not in remaining and ids["cancelled"] not in remaining


def test_backoff_is_full_jitter_and_capped() -> None:
    samples = [backoff_seconds(3, 2.0, 3600) for _ in range(500)]
    assert all(0 <= s <= 16 for s in samples)
    assert max(samples) > 8  # spread over the whole window, not clustered at the ceiling
    assert min(samples) < 8
    assert all(backoff_seconds(40, 2.0, 60) <= 60 for _ in range(100))


# --- the HTTP API ----------------------------------------------------------------------------


async def test_jobs_api_filters_and_tenancy(
    client: httpx.AsyncClient, database: Database, org: Org, other_org: Org
) -> None:
    before = utcnow()
    await asyncio.sleep(0.01)
    mine = await add_job(database, org, "test.listed", {"n": 1})
    await asyncio.sleep(0.01)
    other_kind = await add_job(database, org, "test.other-kind", {"n": 2})
    theirs = await add_job(database, other_org, "test.listed", {"n": 3})

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    listed = ids(await client.get("/v1/jobs/?filter[kind]=test.listed", headers=org.admin))
    assert listed == [str(mine)]
    assert ids(await client.get("/v1/jobs/?filter[kind]=test.listed", headers=other_org.admin)) == [
        str(theirs)
    ]
    stamp = before.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    window = ids(await client.get(f"/v1/jobs/?filter[cmp-created-at]=>{stamp}", headers=org.admin))
    assert set(window) >= {str(mine)} and str(theirs) not in window
    none = ids(
        await client.get(
            f"/v1/jobs/?filter[cmp-created-at]=<{stamp}&filter[kind]=test.listed", headers=org.admin
        )
    )
    assert none == []
    oldest_first = ids(
        await client.get("/v1/jobs/?filter[state]=queued&sort=created-at", headers=org.admin)
    )
    assert oldest_first.index(str(mine)) < oldest_first.index(str(other_kind))
    newest_first = ids(await client.get("/v1/jobs/?filter[state]=queued", headers=org.admin))
    assert newest_first.index(str(other_kind)) < newest_first.index(str(mine))
    bad = await client.get("/v1/jobs/?filter[state]=exploded", headers=org.admin)
    assert bad.status_code == 400
    assert (await client.get(f"/v1/jobs/{theirs}/", headers=org.admin)).status_code == 404
    assert (await client.get(f"/v1/jobs/{mine}/", headers=org.staff)).status_code == 403
    payload = (await client.get(f"/v1/jobs/{mine}/", headers=org.admin)).json()["data"]
    assert payload["type"] == "jobs" and payload["attributes"]["payload"] == {"n": 1}
    for job_id, owner in ((mine, org), (other_kind, org), (theirs, other_org)):
        async with database.sessionmaker() as session:
            assert await cancel(session, job_id, organization_id=uuid.UUID(owner.id))
            await commit(session)


async def test_embedded_worker_runs_jobs_and_registers(
    database_url: str, data_dir: Path, database: Database, org: Org, other_org: Org
) -> None:
    settings = make_settings(database_url, data_dir, run_worker=True, job_concurrency=2)
    application = create_app(settings)
    transport = httpx.ASGITransport(app=application)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        job_id = await add_job(database, org, EFFECT)
        deadline = time.monotonic() + 30
        while (await load(database, job_id)).state != "succeeded":
            assert time.monotonic() < deadline, "the embedded worker did not run the job"
            await asyncio.sleep(0.05)
        listing = await http.get("/v1/replicators/", headers=org.admin)
        assert listing.status_code == 200, listing.text
        mine = [
            r
            for r in listing.json()["data"]
            if r["attributes"]["pid"] == os.getpid() and r["attributes"]["concurrency"] == 2
        ]
        assert len(mine) == 1
        attributes = mine[0]["attributes"]
        assert attributes["classpath"] == "courier.jobs.worker.Worker"
        assert attributes["stale"] is False
        assert set(attributes) >= {"created-time", "last-poll-time", "hostname"}
        # Process registrations are not an organization's rows: any admin sees them.
        one = await http.get(f"/v1/replicators/{mine[0]['id']}/", headers=other_org.admin)
        assert one.status_code == 200
        assert (await http.get("/v1/replicators/", headers=org.staff)).status_code == 403
        replicator_id = mine[0]["id"]
    async with database.sessionmaker() as session:
        from courier.models.replicator import Replicator

        gone = await session.get(Replicator, uuid.UUID(replicator_id))
    assert gone is None  # a worker that stops cleanly removes its registration
