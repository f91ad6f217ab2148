"""Messaging operations: asynchronous bulk changes of channels (``move-group``), with logs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin


class MessagingOperation(IdMixin, TenantMixin, Base):
    """One operation, carried out by a job: ``status`` queued → running → completed | failed.

    ``args`` and ``logs`` hold ids and counts only, never patient data.
    """

    __tablename__ = "messaging_operations"
    __table_args__ = (
        Index("ix_messaging_operations_org_created", "organization_id", "created_at"),
    )

    type: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    logs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The channels the job works through, fixed when it first runs (so a resumed job finishes
    # the same list); null until then.
    channel_ids: Mapped[list[str] | None] = mapped_column(JSONType)
    job_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None]  # the API key that started it
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)
