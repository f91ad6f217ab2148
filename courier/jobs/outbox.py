"""Enqueueing jobs: the jobs table is a transactional outbox.

:func:`enqueue` adds the job to the caller's session, so the job exists exactly when the
change that asked for it commits: a request that fails leaves no job behind, and an accepted
request never loses its job. On PostgreSQL the same transaction sends ``NOTIFY courier_jobs``
(notifications are transactional: delivered on commit, dropped on rollback), which wakes every
listening worker at once; a worker in the same process is woken directly after the commit.

Payloads hold ids only: patient data is read by the handler from the database, never copied
into the queue (ARCHITECTURE.md). :func:`check_payload` enforces it: a flat object of scalars
(strings up to 256 characters, numbers, booleans, null; UUIDs are stored as strings), at most
4 KiB of JSON.
"""

from __future__ import annotations

import math
import uuid
import weakref
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from courier.config import Settings
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.jobs.registry import HANDLERS, MAX_KIND_LENGTH
from courier.models.job import Job, JobState

if TYPE_CHECKING:
    from collections.abc import Iterator

CHANNEL = "courier_jobs"
MAX_PAYLOAD_BYTES = 4096
MAX_PAYLOAD_STRING = 256
MAX_DEDUPE_KEY = 255

Scalar = str | int | float | bool | None

_NOTIFY = "courier_jobs_notify"  # session.info flag: NOTIFY before this transaction commits
_WAKE = "courier_jobs_wake"  # session.info flag: wake this process's workers after commit

_max_attempts_default: int = int(Settings.model_fields["job_max_attempts"].default)


class InvalidJobPayloadError(ValueError):
    """The payload is not a small flat object of ids and scalars."""


class Wakeable(Protocol):
    def wake(self) -> None: ...


# Workers running in this process (the embedded worker, tests): woken after an enqueue commits.
_LOCAL_WORKERS: weakref.WeakSet[Any] = weakref.WeakSet()


def add_local_worker(worker: Wakeable) -> None:
    _LOCAL_WORKERS.add(worker)


def remove_local_worker(worker: Wakeable) -> None:
    _LOCAL_WORKERS.discard(worker)


def local_workers() -> Iterator[Wakeable]:
    return iter(list(_LOCAL_WORKERS))


def configure(settings: Settings) -> None:
    """Take this process's defaults from its settings (the app and the worker call this)."""
    global _max_attempts_default
    _max_attempts_default = settings.job_max_attempts


def default_max_attempts(kind: str) -> int:
    registration = HANDLERS.get(kind)
    if registration is not None and registration.max_attempts is not None:
        return registration.max_attempts
    return _max_attempts_default


def check_payload(payload: Mapping[str, Any]) -> dict[str, Scalar]:
    """The payload as stored, or :class:`InvalidJobPayloadError` saying what is wrong with it."""
    if not isinstance(payload, Mapping):
        raise InvalidJobPayloadError("a job payload must be an object of ids and scalars")
    checked: dict[str, Scalar] = {}
    for key, value in payload.items():
        if not isinstance(key, str) or not key:
            raise InvalidJobPayloadError("job payload keys must be non-empty strings")
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidJobPayloadError(f"payload[{key!r}] must be a finite number")
        elif not (value is None or isinstance(value, str | int | float | bool)):
            raise InvalidJobPayloadError(
                f"payload[{key!r}] must be an id or a scalar, not {type(value).__name__}: "
                "jobs carry ids only and read everything else from the database"
            )
        if isinstance(value, str) and len(value) > MAX_PAYLOAD_STRING:
            raise InvalidJobPayloadError(
                f"payload[{key!r}] is longer than {MAX_PAYLOAD_STRING} characters: "
                "jobs carry ids, not contents"
            )
        checked[key] = value
    if len(orjson.dumps(checked)) > MAX_PAYLOAD_BYTES:
        raise InvalidJobPayloadError(f"a job payload is at most {MAX_PAYLOAD_BYTES} bytes of JSON")
    return checked


def job_row(
    kind: str,
    payload: Mapping[str, Any],
    *,
    organization_id: uuid.UUID,
    run_at: datetime | None = None,
    priority: int = 0,
    max_attempts: int | None = None,
    dedupe_key: str | None = None,
) -> dict[str, Any]:
    """The ``jobs`` row of a new job (its arguments checked as :func:`enqueue` checks them),
    for a caller that writes it in a statement of its own making (e.g. with the rows the job
    is about, in one statement), then calls :func:`mark_enqueued`."""
    if not kind or len(kind) > MAX_KIND_LENGTH:
        raise ValueError(f"a job kind is 1 to {MAX_KIND_LENGTH} characters")
    body = check_payload(payload)
    if run_at is not None and run_at.tzinfo is None:
        raise ValueError("run_at must be an aware datetime")
    attempts = max_attempts if max_attempts is not None else default_max_attempts(kind)
    if not 1 <= attempts <= 100:
        raise ValueError("max_attempts must be between 1 and 100")
    if dedupe_key is not None and not 1 <= len(dedupe_key) <= MAX_DEDUPE_KEY:
        raise ValueError(f"a dedupe key is 1 to {MAX_DEDUPE_KEY} characters")
    now = utcnow()
    return {
        "id": uuid.uuid4(),
        "organization_id": organization_id,
        "kind": kind,
        "payload": body,
        "state": JobState.QUEUED.value,
        "priority": priority,
        "run_at": run_at or now,
        "attempts": 0,
        "max_attempts": attempts,
        "created_at": now,
        "dedupe_key": dedupe_key,
    }


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: Mapping[str, Any],
    *,
    organization_id: uuid.UUID,
    run_at: datetime | None = None,
    priority: int = 0,
    max_attempts: int | None = None,
    dedupe_key: str | None = None,
    new_key: bool = False,
) -> Job:
    """Add a job to ``session``'s transaction; it runs once that transaction commits.

    ``run_at`` delays it (aware datetime); a higher ``priority`` runs first among due jobs.
    ``max_attempts`` defaults to the handler's, else the ``job_max_attempts`` setting. With a
    ``dedupe_key``, enqueueing again in the same organization returns the existing job
    (whatever its state) instead of adding one. ``new_key``: the key names something this
    transaction has just created (a fresh id), so no job can hold it yet and the job is added
    without looking (two statements fewer; a duplicate would still fail the unique key).
    Never commits.
    """
    values = job_row(
        kind,
        payload,
        organization_id=organization_id,
        run_at=run_at,
        priority=priority,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
    )
    if dedupe_key is None or new_key:
        job = Job(**values)
        session.add(job)
    else:
        existing = await _find_by_dedupe_key(session, organization_id, dedupe_key)
        if existing is not None:
            return existing
        # INSERT ... ON CONFLICT DO NOTHING: a concurrent enqueue of the same key (in another
        # transaction) makes this one wait for it, then find its job instead of failing.
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table: Any = Job.__table__
        stmt = (
            insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["organization_id", "dedupe_key"])
        )
        # Through the connection: a Core insert names its organization explicitly, so it
        # cannot leak across tenants, and it is not a query the tenancy guard reasons about.
        connection = await session.connection()
        await connection.execute(stmt)
        found = await _find_by_dedupe_key(session, organization_id, dedupe_key)
        if found is None:  # pragma: no cover - the row was just written or found
            raise RuntimeError("the deduplicated job vanished")
        job = found
    mark_enqueued(session)
    return job


async def _find_by_dedupe_key(
    session: AsyncSession, organization_id: uuid.UUID, dedupe_key: str
) -> Job | None:
    stmt = scoped(select(Job).where(Job.dedupe_key == dedupe_key), Job, organization_id)
    found: Job | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def jobs_by_id(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Job]:
    """The organization's jobs among ``ids`` (e.g. to show a request whose job failed as
    failed), by id; no query when ``ids`` is empty."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    stmt = scoped(select(Job).where(Job.id.in_(wanted)), Job, organization_id)
    return {job.id: job for job in (await session.execute(stmt)).scalars()}


async def cancel(session: AsyncSession, job_id: uuid.UUID, *, organization_id: uuid.UUID) -> bool:
    """Cancel a job that has not started (e.g. a reminder no longer wanted).

    Returns False when the job is unknown, already running or finished. Never commits.
    """
    stmt = scoped(select(Job).where(Job.id == job_id), Job, organization_id)
    # FOR UPDATE (PostgreSQL): a claim in progress finishes first, and none starts meanwhile.
    stmt = stmt.with_for_update().execution_options(populate_existing=True)
    job = (await session.execute(stmt)).scalar_one_or_none()
    if job is None or job.state != JobState.QUEUED.value:
        return False
    job.state = JobState.CANCELLED.value
    job.finished_at = utcnow()
    return True


def requeue(session: AsyncSession, job: Job) -> None:
    """Give a failed job a fresh set of attempts, due now. Never commits."""
    if job.state != JobState.FAILED.value:
        raise ValueError("only a failed job can be retried")
    job.state = JobState.QUEUED.value
    job.attempts = 0
    job.run_at = utcnow()
    job.finished_at = None
    job.lease_owner = None
    job.lease_expires_at = None
    job.result = None
    mark_enqueued(session)


def mark_enqueued(session: AsyncSession) -> None:
    """Have workers woken once ``session`` commits (NOTIFY on PostgreSQL, local workers)."""
    session.info[_NOTIFY] = True
    session.info[_WAKE] = True


def take_notice(session: AsyncSession | Session) -> bool:
    """Whether ``session``'s transaction must notify the workers (it enqueued jobs); the caller
    then sends that notification itself, in a statement it sends anyway (the events' own
    notification), so a transaction that publishes and enqueues notifies in one statement."""
    return bool(session.info.pop(_NOTIFY, False))


@event.listens_for(Session, "before_commit")
def _notify_before_commit(session: Session) -> None:
    if not session.info.pop(_NOTIFY, False):
        return
    if session.get_bind().dialect.name == "postgresql":
        # One notification per transaction, however many jobs it enqueued; PostgreSQL
        # delivers it when the transaction commits and never if it rolls back.
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop(_WAKE, False):
        for worker in local_workers():
            worker.wake()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_NOTIFY, None)
    session.info.pop(_WAKE, None)
