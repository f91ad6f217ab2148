"""Fan-outs: one piece of work done for many targets, chunk by chunk, by jobs.

A fan-out is planned once (its targets written to ``fanout_targets``, one row each, split into
chunks) and carried out chunk by chunk. A target's row leaves ``pending`` (``delivered``, with
what the domain recorded, or ``skipped``, with the reason) in the same transaction as the
domain's effect for it, so a chunk taken up again after a crash skips whoever is done: no
target is delivered twice. See :mod:`courier.jobs.fanout`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin


class FanoutState(enum.StrEnum):
    QUEUED = "queued"  # accepted: the plan job expands the targets
    RUNNING = "running"  # chunks being delivered
    SETTLED = "settled"  # every chunk done
    CANCELLED = "cancelled"  # stopped: targets not reached are skipped ("cancelled")


class TargetState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    SKIPPED = "skipped"


class Fanout(IdMixin, TenantMixin, Base):
    """One fan-out of one domain object (its ``subject``), e.g. a bulk message."""

    __tablename__ = "fanouts"
    __table_args__ = (
        UniqueConstraint("organization_id", "kind", "subject_id", name="uq_fanouts_subject"),
    )

    kind: Mapped[str] = mapped_column(String(100))  # the declaration's name
    subject_id: Mapped[uuid.UUID]
    state: Mapped[str] = mapped_column(String(16), default=FanoutState.QUEUED.value)
    target_count: Mapped[int] = mapped_column(Integer, default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    delivered_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    planned_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class FanoutTarget(TenantMixin, Base):
    """One target of a fan-out: planned, then delivered or skipped exactly once."""

    __tablename__ = "fanout_targets"
    # Read by fan-out or by target only: no index by organization (the fan-out's rows go with
    # it; deleting an organization scans the table once).
    __tenant_index__ = False
    __table_args__ = (Index("ix_fanout_targets_chunk", "fanout_id", "chunk", "state"),)

    fanout_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("fanouts.id", ondelete="CASCADE"), primary_key=True
    )
    # Whatever the domain fans out to (an individual, a device ...): no foreign key, so the
    # domain removes its targets' rows when it removes them (purge hooks).
    target_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    chunk: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any] | None]  # what the plan chose for it (ids, keys; no content)
    state: Mapped[str] = mapped_column(String(16), default=TargetState.PENDING.value)
    reason: Mapped[str | None] = mapped_column(String(64))  # why it was skipped
    outcome: Mapped[dict[str, Any] | None]  # what delivering made (ids only)
    done_at: Mapped[datetime | None]

    @property
    def id(self) -> uuid.UUID:
        """A target is listed under its target's id (a fan-out's recipients as a resource)."""
        return self.target_id
