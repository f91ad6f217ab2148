"""Background jobs: the transactional outbox, and the recorded results of their steps."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(IdMixin, TenantMixin, Base):
    """One unit of background work, written in the transaction that asked for it.

    The payload holds ids only (never patient data); the handler reads the rows it needs.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_org_created", "organization_id", "created_at"),
        # NULL dedupe keys never collide, on SQLite and PostgreSQL alike.
        UniqueConstraint("organization_id", "dedupe_key", name="uq_jobs_organization_dedupe"),
    )

    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED.value)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    run_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None]
    dedupe_key: Mapped[str | None] = mapped_column(String(255))


class JobStep(TenantMixin, Base):
    """The recorded outcome of one step of a job (e.g. the provider's message id).

    A retried job finds it and skips the step instead of repeating its side effect.
    """

    __tablename__ = "job_steps"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    result: Mapped[dict[str, Any] | None]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


# The claim query walks this index in order (highest priority first, then earliest run_at) and
# stops after a few rows, however long the queue.
Index("ix_jobs_claim", Job.state, Job.priority.desc(), Job.run_at)
