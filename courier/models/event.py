from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, JSONType, TenantMixin


class Event(TenantMixin, Base):
    """A domain event, written in the transaction of the change it describes (an outbox).

    ``seq`` orders events for stream cursors (``Last-Event-ID``); ``id`` is the public event id
    that webhook receivers use to deduplicate. ``data`` holds ids only, never patient data.
    """

    __tablename__ = "events"
    # Read by organization and seq, or by id: no index by organization, type or time alone
    # (migration 0028_mc_event_indexes; each event pays for every index).
    __tenant_index__ = False
    __table_args__ = (Index("ix_events_org_seq", "organization_id", "seq"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(96))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[uuid.UUID | None]
    individual_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
