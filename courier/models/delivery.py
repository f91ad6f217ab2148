"""Deliveries (one send of one thing to one recipient through one provider) and their history,
the provider webhooks received, and the sandbox providers' own state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin


class Delivery(IdMixin, TenantMixin, Base):
    """The state machine of one send (``courier.providers.delivery``).

    ``resource_type``/``resource_id`` name what is delivered (a text, an email ...);
    ``recipient`` is the address the provider is given (a number, an address, a device
    token's id), never content.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_provider_vendor", "provider", "vendor_id"),
        Index("ix_deliveries_resource", "resource_type", "resource_id"),
    )

    channel: Mapped[str] = mapped_column(String(16))  # the provider kind: sms, email ...
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[uuid.UUID]
    recipient: Mapped[str] = mapped_column(String(320))
    provider: Mapped[str] = mapped_column(String(64))  # "<kind>:<adapter>", e.g. sms:sandbox
    vendor_id: Mapped[str | None] = mapped_column(String(128))
    attempt_id: Mapped[uuid.UUID | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(500))
    conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class DeliveryEvent(IdMixin, TenantMixin, Base):
    """One transition or report of a delivery; ``applied`` says whether it moved the state
    (a late or conflicting report is kept with ``applied`` false)."""

    __tablename__ = "delivery_events"
    # Read by delivery only (and deleted with it): three rows per delivery, no index by
    # organization (deleting an organization scans the table once).
    __tenant_index__ = False
    __table_args__ = (Index("ix_delivery_events_delivery", "delivery_id", "recorded_at"),)

    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    state: Mapped[str | None] = mapped_column(String(16))
    vendor_status: Mapped[str | None] = mapped_column(String(32))
    code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(16))  # send, callback, reconcile, expiry
    applied: Mapped[bool] = mapped_column(Boolean)
    occurred_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderInbound(IdMixin, Base):
    """A verified provider webhook event, stored once per ``(provider, dedupe_key)``.

    Not a tenant table: it arrives before we know whose it is. ``organization_id`` is filled
    when it is matched; an unmatched one (an orphan) waits for its vendor id to be bound.
    """

    __tablename__ = "provider_inbound"
    __table_args__ = (
        UniqueConstraint("provider", "dedupe_key", name="uq_provider_inbound_provider_dedupe"),
        Index("ix_provider_inbound_vendor", "provider", "vendor_id"),
        # What is still to be applied, in arrival order (texts received wait for earlier ones).
        Index(
            "ix_provider_inbound_unapplied",
            "organization_id",
            "received_at",
            postgresql_where=text("applied_at IS NULL"),
            sqlite_where=text("applied_at IS NULL"),
        ),
    )

    provider: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(32))
    vendor_id: Mapped[str] = mapped_column(String(128))
    delivery_id: Mapped[uuid.UUID | None]
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str | None] = mapped_column(String(16))
    vendor_status: Mapped[str | None] = mapped_column(String(32))
    vendor_code: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class SandboxRecord(IdMixin, Base):
    """The state of a sandbox provider (numbers, messages sent, failures armed ...), kept in
    the database so the server and worker processes see the same outside world."""

    __tablename__ = "sandbox_records"
    __table_args__ = (Index("ix_sandbox_records_lookup", "kind", "collection", "key"),)

    kind: Mapped[str] = mapped_column(String(16))
    collection: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["Delivery", "DeliveryEvent", "ProviderInbound", "SandboxRecord"]
