"""A purge of all data of one entity (first: an individual), carried out by a job.

The row is the receipt: which steps ran, how many rows each removed, where the archive is.
It names the entity by id only and holds no patient data.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin


class SystemPurge(IdMixin, TenantMixin, Base):
    __tablename__ = "system_purges"
    __table_args__ = (Index("ix_system_purges_entity", "organization_id", "entity_id"),)

    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    archive: Mapped[bool] = mapped_column(Boolean, default=False)
    reference_id: Mapped[str | None] = mapped_column(String(255))
    client_request_id: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # The hooks in the order they run, the ones done, and the rows each counted.
    steps: Mapped[list[str]] = mapped_column(JSONType, default=list)
    steps_done: Mapped[list[str]] = mapped_column(JSONType, default=list)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    archive_location: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[uuid.UUID | None]
    requested_by_type: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
