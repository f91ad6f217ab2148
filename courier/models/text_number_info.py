"""Carrier, line type and country of a phone number, looked up once and cached."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.models.base import Base, IdMixin, TenantMixin, TimestampMixin


class TextNumberInfo(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "text_number_info"
    __table_args__ = (UniqueConstraint("organization_id", "number"),)

    number: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # resolved | failed
    line_type: Mapped[str] = mapped_column(String(32), default="")
    carrier_name: Mapped[str | None] = mapped_column(String(128))
    country: Mapped[str | None] = mapped_column(String(2))
    mobile_country_code: Mapped[str | None] = mapped_column(String(8))
    mobile_network_code: Mapped[str | None] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[datetime | None]
