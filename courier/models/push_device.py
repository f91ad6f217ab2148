"""Push devices (``user-devices``) and the organization's push credentials
(``app-credentials``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from courier.models.base import Base, IdMixin, JSONType, TenantMixin, TimestampMixin


class UserDevice(IdMixin, TenantMixin, TimestampMixin, Base):
    """One installation of an app on one individual's phone or browser.

    One row per token per app (``app_name``, "" when the client named none): the unique key
    makes a token registered again, by the same or another individual, update this row
    rather than add one. ``keys`` holds a Web Push subscription's ``p256dh`` and ``auth``.
    ``active`` goes false when the push service says the token is gone.
    """

    __tablename__ = "user_devices"
    __table_args__ = (
        UniqueConstraint("organization_id", "app_name", "token"),
        Index("ix_user_devices_individual", "individual_id"),
    )

    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(8))  # apn, fcm, web
    token: Mapped[str] = mapped_column(String(1024))
    app_name: Mapped[str] = mapped_column(String(64), default="")
    app_version: Mapped[str | None] = mapped_column(String(20))
    model: Mapped[str | None] = mapped_column(String(64))
    os_version: Mapped[str | None] = mapped_column(String(64))
    topic: Mapped[str | None] = mapped_column(String(255))
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_notification: Mapped[bool] = mapped_column(Boolean, default=True)
    keys: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    deactivated_at: Mapped[datetime | None]
    deactivated_code: Mapped[str | None] = mapped_column(String(64))


class AppCredential(IdMixin, TenantMixin, TimestampMixin, Base):
    """An app's credentials for one push platform. ``data_sealed`` is the whole ``data``
    (JSON) sealed with ``courier.core.sealed``; ``public_data`` the parts that may be shown
    (key id, team id, topic; the FCM project and account; the VAPID public key)."""

    __tablename__ = "app_credentials"
    __table_args__ = (
        # One live set per app and platform: what a send for the app's devices uses.
        Index(
            "uq_app_credentials_live",
            "organization_id",
            "app_name",
            "type",
            unique=True,
            postgresql_where=text("NOT archived"),
            sqlite_where=text("NOT archived"),
        ),
    )

    type: Mapped[str] = mapped_column(String(8))  # apn, fcm, web
    app_name: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(255))
    store_id: Mapped[str | None] = mapped_column(String(255))
    test_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    data_sealed: Mapped[str] = mapped_column(Text)
    public_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


__all__ = ["AppCredential", "UserDevice"]
