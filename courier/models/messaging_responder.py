"""Auto-responders: a care team's automatic reply to patients who write while it is away.

A responder belongs to an individual group; its ``calendar_args`` hold wall-clock rules in an
IANA zone (when it is active), its ``args`` the reply. ``messaging_responder_replies`` keeps,
per responder and channel, when it last replied: the row is claimed atomically, so two posts
at once never both get a reply within the quiet period.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin


class MessagingResponder(IdMixin, TenantMixin, Base):
    __tablename__ = "messaging_responders"
    __table_args__ = (
        Index("ix_messaging_responders_group", "organization_id", "individual_group_id"),
    )

    name: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32), default="auto-reply")
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)  # message, message-js
    calendar_args: Mapped[dict[str, Any]] = mapped_column(default=dict)  # rules, timezone
    individual_group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individual_groups.id", ondelete="CASCADE")
    )
    # Who the replies are posted as (args "individual-id"); None: the group's first leader.
    individual_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL"), index=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    start_at: Mapped[datetime | None]
    end_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None]  # the API key
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_by: Mapped[uuid.UUID | None]


class MessagingResponderReply(TenantMixin, Base):
    """When a responder last replied in a channel (its quiet period runs from there)."""

    __tablename__ = "messaging_responder_replies"

    responder_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_responders.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_channels.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    last_reply_at: Mapped[datetime] = mapped_column(default=utcnow)
    trigger_message_id: Mapped[uuid.UUID | None]
    reply_message_id: Mapped[uuid.UUID | None]
