"""Messaging plugins: named snippets (a template, a link) that expand into message text."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin


class MessagingPlugin(IdMixin, TenantMixin, Base):
    """A plugin of one registered type (``template``, ``link``) with that type's ``args``."""

    __tablename__ = "messaging_plugins"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(15))
    type: Mapped[str] = mapped_column(String(64), index=True)
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None]  # the API key that created it
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_by: Mapped[uuid.UUID | None]
