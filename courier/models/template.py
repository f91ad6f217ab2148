"""Notification templates: per-channel Jinja2 bodies, the data they require, locale variants."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin


class Template(IdMixin, TenantMixin, Base):
    """A notification template of an organization (docs/TEMPLATES.md).

    ``channels`` holds the default bodies by channel (``apn``, ``fcm``, ``web``, ``sms``,
    ``email``), ``locales`` the per-locale variants (locale tag -> channels and
    ``neutral-text``), ``required_data`` the data keys each rendering needs, with their types.
    """

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(255))
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    channels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    required_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    locales: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    neutral_text: Mapped[str] = mapped_column(String(255))
    deep_link: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None]  # the API key that created it
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_by: Mapped[uuid.UUID | None]

    # The channels' bodies as the API shows them (``apn``, ``fcm``, ``web``, ``sms``, ``email``).
    @property
    def apn(self) -> dict[str, Any] | None:
        return self.channels.get("apn")

    @property
    def fcm(self) -> dict[str, Any] | None:
        return self.channels.get("fcm")

    @property
    def web(self) -> dict[str, Any] | None:
        return self.channels.get("web")

    @property
    def sms(self) -> dict[str, Any] | None:
        return self.channels.get("sms")

    @property
    def email(self) -> dict[str, Any] | None:
        return self.channels.get("email")
