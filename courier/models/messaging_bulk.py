"""Bulk messages: one message from a provider to many people, each in their direct channel.

A bulk message is sent through its fan-out (``fanouts`` / ``fanout_targets``,
:mod:`courier.jobs.fanout`): its recipients are planned once, as the fan-out's targets, and
posted chunk by chunk by jobs, each recipient marked in the same transaction as the message it
received, so nobody receives it twice. The fan-out keeps the counts. Bulk attachments are
uploaded once and referenced by every posted copy.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin
from courier.models.upload import UploadColumns


class BulkStatus(enum.StrEnum):
    DRAFT = "draft"  # kept until a PATCH sets draft: false
    QUEUED = "queued"  # accepted: the plan job expands the recipients
    POSTING = "posting"  # chunks being posted
    POSTED = "posted"  # every chunk done (posted-time set)


class MessagingBulkMessage(IdMixin, TenantMixin, Base):
    __tablename__ = "messaging_bulk_messages"
    __table_args__ = (
        Index("ix_messaging_bulk_messages_org_created", "organization_id", "created_at"),
    )

    sender_individual_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL"), index=True
    )
    sender_individual_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individual_groups.id", ondelete="SET NULL")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(index=True)  # an individual
    # The credential that submitted it: every posted copy is audited in its name.
    actor_type: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    message_js: Mapped[dict[str, Any]] = mapped_column(default=dict)
    individual_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    individual_group_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    auto_create_channel: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_ack: Mapped[bool] = mapped_column(Boolean, default=True)
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=BulkStatus.DRAFT.value)
    submitted_at: Mapped[datetime | None]  # when it stopped being a draft
    posted_time: Mapped[datetime | None]  # when the last chunk was done
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessagingBulkAttachment(UploadColumns, Base):
    """A file sent with a bulk message: uploaded and verified once (``courier.models.upload``),
    then referenced by a messaging attachment of every posted copy (the object is never
    copied)."""

    __tablename__ = "messaging_bulk_attachments"
    __table_args__ = (Index("ix_messaging_bulk_attachments_bulk", "bulk_message_id", "created_at"),)

    bulk_message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_bulk_messages.id", ondelete="CASCADE")
    )
