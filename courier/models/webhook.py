"""Outbound webhooks: endpoints an organization registers, and the log of delivery attempts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin, TimestampMixin


class Webhook(IdMixin, TenantMixin, TimestampMixin, Base):
    """An HTTPS endpoint that receives the organization's events, signed with ``secret``.

    The secret is kept as given: signing (HMAC) needs it, and it is shown only at creation.
    """

    __tablename__ = "webhooks"

    url: Mapped[str] = mapped_column(String(2048))
    # Event types or prefixes ("messaging-messages.created", "messaging-messages.*"); "*": all.
    event_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    secret: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    created_by: Mapped[str] = mapped_column(String(80))


class WebhookDelivery(IdMixin, TenantMixin, Base):
    """One attempt to deliver one event to one webhook (succeeded or not)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_webhook_attempted", "webhook_id", "attempted_at"),
    )

    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    # Not a foreign key: the delivery log outlives the events table's retention.
    event_id: Mapped[uuid.UUID] = mapped_column(index=True)
    event_type: Mapped[str] = mapped_column(String(96))
    attempt: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]
