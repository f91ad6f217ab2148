"""What a handler gets: the job, a fresh session, the settings, and idempotent steps.

The worker commits the handler's session together with marking the job succeeded, so the
handler's database changes and "done" land atomically: a job that dies half-way leaves none of
its changes, and is run again. Everything a handler does must therefore be safe to repeat.

For side effects outside the database (send an SMS, an email, a push) use :meth:`step`::

    @job_handler("sms.send")
    async def send_sms(job: JobContext) -> dict[str, Any] | None:
        text = await load_text(job.session, job.organization_id, job.payload["text_id"])
        sent = await job.step("provider-send", lambda: provider.send(
            text, idempotency_key=job.idempotency_key("provider-send")))
        text.provider_id = sent["sid"]      # commits with "done"
        return {"sid": sent["sid"]}

``step`` looks for the result recorded by an earlier attempt and returns it without running the
action again; otherwise it runs the action and records its result in a transaction of its own
before going on, so a retried job never sends twice. The only window left is a crash between
the provider accepting and the record committing: pass :meth:`idempotency_key` to providers
that deduplicate, to close it where they can.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.models.job import Job, JobState, JobStep
from courier.providers.common import Providers, providers_for

MAX_RESULT_BYTES = 16 * 1024
MAX_STEP_NAME = 100

StepAction = Callable[[], Awaitable[dict[str, Any] | None]]


class PermanentJobError(Exception):
    """Raise from a handler when retrying cannot help (e.g. the recipient no longer exists):
    the job is marked failed at once, with this message as its last error."""


class LeaseLostError(Exception):
    """This worker's claim on the job ended (it ran past its lease and another worker took
    it): nothing of this attempt is committed."""


def _json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):  # e.g. asyncpg's own UUID class, which orjson skips
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def normalise_result(value: Any, what: str = "a job result") -> dict[str, Any] | None:
    """A handler's or a step's result as stored: a small JSON object, or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict or None, not {type(value).__name__}")
    encoded = orjson.dumps(value, default=_json_default)  # TypeError for what JSON cannot hold
    if len(encoded) > MAX_RESULT_BYTES:
        raise ValueError(f"{what} is larger than {MAX_RESULT_BYTES} bytes of JSON")
    normalised: dict[str, Any] = orjson.loads(encoded)  # UUIDs and datetimes become strings
    return normalised


@dataclass
class JobContext:
    """The job being run, as its handler sees it."""

    job_id: uuid.UUID
    organization_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempt: int  # 1 on the first run
    max_attempts: int
    settings: Settings
    _owner: str = field(repr=False, default="")
    _sessions: Callable[[], AsyncSession] | None = field(repr=False, default=None)
    _session: AsyncSession | None = field(repr=False, default=None)

    @property
    def session(self) -> AsyncSession:
        """The job's own session, opened on first use; committed by the worker with
        "succeeded" (never commit it yourself)."""
        if self._session is None:
            if self._sessions is None:
                raise RuntimeError("this job context has no database")
            self._session = self._sessions()
        return self._session

    async def close(self) -> None:
        """Close the session if the handler opened one (the worker, once the job ended)."""
        if self._session is not None:
            await self._session.close()

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    @property
    def providers(self) -> Providers:
        """This process's provider adapters: ``job.providers.get(SMS).send(...)``."""
        return providers_for(self.settings)

    def idempotency_key(self, step: str) -> str:
        """A key that is the same on every attempt of this job's ``step`` (for providers)."""
        return f"{self.job_id}:{step}"

    async def recorded(self, name: str) -> JobStep | None:
        """The record of ``name`` if an attempt of this job completed that step."""
        stmt = scoped(
            select(JobStep).where(JobStep.job_id == self.job_id, JobStep.name == name),
            JobStep,
            self.organization_id,
        )
        found: JobStep | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def step(self, name: str, action: StepAction) -> dict[str, Any] | None:
        """Run ``action`` once across all attempts of this job; return its (recorded) result.

        A step is a checkpoint: the handler's changes made before it commit with it (so no
        database lock is held while the action calls a provider), and the action's result is
        committed before ``step`` returns. Changes made after the last step commit with "done".
        """
        if not name or len(name) > MAX_STEP_NAME:
            raise ValueError(f"a step name is 1 to {MAX_STEP_NAME} characters")
        fresh = not self.session.in_transaction()
        done = await self.recorded(name)
        if done is not None:
            if fresh:  # end the read, so no lock outlives it (SQLite: the write lock)
                await self.session.commit()
            return done.result
        await self.checkpoint()
        result = normalise_result(await action(), f"the result of step {name!r}")
        self.session.add(
            JobStep(
                organization_id=self.organization_id,
                job_id=self.job_id,
                name=name,
                result=result,
                recorded_at=utcnow(),
            )
        )
        await self.checkpoint()
        return result

    async def checkpoint(self) -> None:
        """Commit the session so far, if this worker still holds the job (else LeaseLostError)."""
        await self._hold(
            {"lease_expires_at": utcnow() + timedelta(seconds=self.settings.job_lease_seconds)}
        )
        await commit(self.session)

    def has_pending_work(self) -> bool:
        """Whether the handler's session holds something to commit with "succeeded".

        False when the handler never touched its session, or when everything it did was
        committed by its steps: then "succeeded" carries no effect of its own, and the worker
        marks it together with other such jobs in one statement (see the worker's batched
        completion). True (a transaction open, objects added, changed or deleted, commit hooks
        waiting): :meth:`finish` marks it in the handler's own transaction, as ever.
        """
        session = self._session
        if session is None:
            return False  # the handler never used its session
        return bool(
            session.in_transaction()
            or session.new
            or session.dirty
            or session.deleted
            or session.info.get("before_commit")
            or session.info.get("after_commit")
        )

    async def finish(self, result: dict[str, Any] | None) -> None:
        """Mark the job succeeded in the handler's transaction and commit both (the worker)."""
        await self._hold(
            {
                "state": JobState.SUCCEEDED.value,
                "finished_at": utcnow(),
                "result": result,
                "lease_owner": None,
                "lease_expires_at": None,
            }
        )
        await commit(self.session)

    async def _hold(self, values: dict[str, Any]) -> None:
        # Fencing: the write happens only while the job is still this worker's, and it locks
        # the row until the commit, so a worker that lost its lease can never commit effects.
        stmt = scoped(
            update(Job).where(
                Job.id == self.job_id,
                Job.lease_owner == self._owner,
                Job.state == JobState.RUNNING.value,
            ),
            Job,
            self.organization_id,
        ).values(**values)
        held = await self.session.execute(stmt.execution_options(synchronize_session=False))
        if not held.rowcount:  # type: ignore[attr-defined]
            await self.session.rollback()
            raise LeaseLostError(f"job {self.job_id} is no longer held by this worker")
