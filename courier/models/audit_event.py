from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin


class AuditEvent(IdMixin, TenantMixin, Base):
    """Who changed what, when. Never the values of patient fields: only their names."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_time", "organization_id", "occurred_at"),)

    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(64), index=True)
    resource_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    changed_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
