"""Sniffers: record the API requests of one user (or one API key) for a while, for debugging.

A sniffer's logs hold request and response bodies (redacted of secrets, truncated), so they may
hold patient data: they are tenant rows, readable by administrators only, and purged with the
individual they concern.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin


class Sniffer(IdMixin, TenantMixin, Base):
    __tablename__ = "sniffers"
    __table_args__ = (Index("ix_sniffers_valid_until", "valid_until"),)

    # The user whose primary individual's access tokens are recorded.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # An API key whose own requests are recorded.
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    valid_until: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80))


class SnifferLog(IdMixin, TenantMixin, Base):
    """One recorded request and its response."""

    __tablename__ = "sniffer_logs"
    __table_args__ = (Index("ix_sniffer_logs_sniffer_created", "sniffer_id", "created_at"),)

    sniffer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sniffers.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(2048))
    query_string: Mapped[str] = mapped_column(Text, default="")
    status_code: Mapped[int] = mapped_column(Integer)
    request_body: Mapped[str] = mapped_column(Text, default="")
    response_body: Mapped[str] = mapped_column(Text, default="")
    content_type: Mapped[str | None] = mapped_column(String(255))
    response_content_type: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(64))
    trace_id: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(String(512), default="")
    # Who made the request: the individual of an access token, or the API key. Not foreign
    # keys: a log outlives neither (purges and sniffer deletion remove it), but must never
    # block deleting them.
    individual_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    api_key_id: Mapped[uuid.UUID | None]
