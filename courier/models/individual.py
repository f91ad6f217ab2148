from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.models.base import Base, IdMixin, TenantMixin, TimestampMixin


class Individual(IdMixin, TenantMixin, TimestampMixin, Base):
    """A person the organization communicates with: a patient (participant) or a provider."""

    __tablename__ = "individuals"
    __table_args__ = (Index("ix_individuals_org_last_name", "organization_id", "last_name"),)

    first_name: Mapped[str] = mapped_column(String(255))
    last_name: Mapped[str] = mapped_column(String(255))
    preferred_name: Mapped[str | None] = mapped_column(String(255))
    birth_date: Mapped[date | None]
    account_type: Mapped[str] = mapped_column(String(16), default="participant")
    # The user account that manages this individual (e.g. a parent for a child). The foreign key
    # is added after the users table exists: users and individuals refer to each other.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", use_alter=True), index=True
    )
    photo: Mapped[str | None] = mapped_column(String(2048))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(16))
    locale: Mapped[str | None] = mapped_column(String(35))
    tz: Mapped[str | None] = mapped_column(String(64))
    extended: Mapped[dict[str, Any]] = mapped_column(default=dict)
