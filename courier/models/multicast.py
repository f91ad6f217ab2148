"""Multicasts: one template sent as a notification to many people (docs/MULTICASTS.md).

A multicast names its recipients by a filter (every participant, a group, a list of
individuals or users ...) and is carried out by a fan-out (:mod:`courier.jobs.fanout`): its
recipients become ``fanout_targets`` rows (kind ``multicasts``), each notified exactly once.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin


class MulticastStatus(enum.StrEnum):
    QUEUED = "queued"  # accepted: the plan job expands the recipients
    SENDING = "sending"  # recipients planned, chunks being notified
    COMPLETED = "completed"  # every recipient notified or skipped
    CANCELLED = "cancelled"  # stopped: recipients not reached yet are skipped


class Multicast(IdMixin, TenantMixin, Base):
    """One multicast: its filter, template and data; status and counts come from its fan-out.

    ``origin`` says which route made it: ``multicasts`` (a filter), ``user-multicasts``
    (individual-ids and groups), ``individual`` or ``user`` (one recipient).
    """

    __tablename__ = "multicasts"

    origin: Mapped[str] = mapped_column(String(32))
    filter_type: Mapped[str] = mapped_column(String(32))
    filter_value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    template_ref: Mapped[str] = mapped_column(String(255))  # template-id as the client gave it
    template_id: Mapped[uuid.UUID] = mapped_column(index=True)  # the template it resolved to
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the filter names (kept as given; the recipients are what the plan found then).
    individual_group_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    individual_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    individual_group_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    user_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    individual_id: Mapped[uuid.UUID | None] = mapped_column(index=True)  # one recipient
    user_id: Mapped[uuid.UUID | None]  # the user addressed (users/{id}/multicast)
    status: Mapped[str] = mapped_column(String(16), default=MulticastStatus.QUEUED.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[uuid.UUID | None]  # the API key that sent it
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
