"""An asynchronous request for per-individual aggregates (message counts, unread counts ...)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin


class AggregationRequest(IdMixin, TenantMixin, Base):
    __tablename__ = "aggregation_requests"

    # [{"column": ..., "individual-id": ...}], as requested (ids and column names only).
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # [{"individual-id": ..., "column": ..., "value": ...}] once completed.
    results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[uuid.UUID | None]
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
