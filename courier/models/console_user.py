"""Personal console logins of care-team members (``courier.domains.console_users``; migration
``0024_console_users``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.models.base import Base, IdMixin, TenantMixin, TimestampMixin


class ConsoleUser(IdMixin, TenantMixin, TimestampMixin, Base):
    """A care-team member's own sign-in to the console: a user name and a password (only its
    scrypt hash is kept), linked to a provider individual of the organization, with a role.

    ``username_key`` is the case-folded user name, unique across the installation: the sign-in
    form names no organization. Revoking keeps the row (the audit trail names its person)."""

    __tablename__ = "console_users"

    username: Mapped[str] = mapped_column(String(64))
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(80))
    revoked_at: Mapped[datetime | None]
    last_sign_in_at: Mapped[datetime | None]
