"""User notifications: one templated notification for one individual (and the user account
it addresses), rendered per channel, with its acknowledgement and escalation ladder."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin


class UserNotification(IdMixin, TenantMixin, Base):
    """A notification (``courier.domains.user_notifications``).

    ``data`` holds what was rendered, by channel (``apn``/``fcm``/``web``: title, body,
    category, data; ``sms``: bodies; ``email``: subject, text, html; ``app``: the full text
    the app shows). ``channels`` says what it was sent to. ``dedupe_key`` (unique per
    organization) lets a caller that runs again (a fan-out chunk retried) find it rather than
    send twice. ``batch_id`` names the ``notify_many`` call whose dispatch job sends it.
    ``escalation``: the ladder and its progress (``steps``, each with its ``state``).
    """

    __tablename__ = "user_notifications"
    __tenant_index__ = False  # the indexes below start with organization_id
    __table_args__ = (
        UniqueConstraint("organization_id", "dedupe_key"),
        Index("ix_user_notifications_individual", "organization_id", "individual_id", "created_at"),
        Index("ix_user_notifications_user", "organization_id", "user_id", "created_at"),
        Index("ix_user_notifications_batch", "batch_id"),
    )

    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    template_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("templates.id", ondelete="SET NULL")
    )
    category: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(255))
    dedupe_key: Mapped[str | None] = mapped_column(String(255))
    batch_id: Mapped[uuid.UUID]
    locale: Mapped[str | None] = mapped_column(String(35))
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    badge: Mapped[int | None]  # the badge its pushes carry (unread totals when it was made)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)
    acknowledged_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    dispatched_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["UserNotification"]
