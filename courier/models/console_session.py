"""Server-side sessions of the web console (``courier.console``; migration
``0023_console_sessions``, ``0024_console_users``,
``0025_console_drafts``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin


class ConsoleSession(IdMixin, Base):
    """What an API key or a personal login becomes when it signs in to the console; the
    browser holds only a random cookie whose SHA-256 is ``token_hash``. Read by that hash (no
    tenant scope: the cookie names the organization), so the model is not a tenant table."""

    __tablename__ = "console_sessions"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    # Signed in with an API key, or with a personal login (exactly one of the two).
    key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    console_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    acting_individual_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]
    # The page this session locked on (the page asks, just before it locks) and its unsent
    # reply, sealed (courier.core.sealed); carried to the next sign-in of the same signer on
    # the same browser, and cleared once restored, sent, or signed out.
    locked_path: Mapped[str | None] = mapped_column(String(500))
    draft_sealed: Mapped[str | None] = mapped_column(Text)
