from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from courier.models.base import Base, IdMixin, TenantMixin, TimestampMixin


class User(IdMixin, TenantMixin, TimestampMixin, Base):
    """A login account of an organization, optionally tied to its primary individual.

    ``username_key`` and ``email_key`` hold the case-folded username and email: the unique
    constraints on them make uniqueness per organization case-insensitive on every database.
    """

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("organization_id", "username_key"),
        UniqueConstraint("organization_id", "email_key"),
    )

    username: Mapped[str] = mapped_column(String(255))
    username_key: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(16))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(35))
    tz: Mapped[str | None] = mapped_column(String(64))
    notifications: Mapped[list[str]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=list
    )
    sms_mode: Mapped[str] = mapped_column(String(16), default="disabled")
    primary_individual_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="active")
    email_verified: Mapped[bool] = mapped_column(default=False)
    phone_verified: Mapped[bool] = mapped_column(default=False)
    phone_unsubscribed: Mapped[bool] = mapped_column(default=False)
    auto_sign_up: Mapped[bool] = mapped_column(default=False)
    communication_preferences: Mapped[dict[str, Any]] = mapped_column(default=dict)
    locale_explicit: Mapped[bool] = mapped_column(default=False)
    tz_explicit: Mapped[bool] = mapped_column(default=False)
    last_sync_time: Mapped[datetime | None]
