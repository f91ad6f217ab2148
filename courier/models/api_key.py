from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from courier.models.base import Base, IdMixin, TenantMixin, TimestampMixin


class ApiKey(IdMixin, TenantMixin, TimestampMixin, Base):
    """A credential of one organization. Only the SHA-256 of its secret is stored."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    secret_prefix: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(80))
