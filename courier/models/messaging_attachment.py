"""Files attached to messaging messages, uploaded in two steps (start, then process).

A row starts ``pending`` with an upload key the client may write to until
``upload_expires_at``; processing checks the bytes, copies them to ``storage_key`` (a key no
upload link can write) and makes the row ``ready``, or deletes them and marks it ``rejected``.
``removed`` hides a ready file for good while keeping it for the audit.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin


class AttachmentStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    REJECTED = "rejected"


class MessagingAttachment(IdMixin, TenantMixin, Base):
    __tablename__ = "messaging_attachments"
    __table_args__ = (
        Index("ix_messaging_attachments_message", "message_id", "created_at"),
        # The cleanup sweep: upload windows that have closed.
        Index("ix_messaging_attachments_upload_expiry", "organization_id", "upload_expires_at"),
    )

    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_messages.id", ondelete="CASCADE")
    )
    # The individual on whose behalf it was uploaded (the token's, or individual-id).
    individual_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[str] = mapped_column(String(64))  # the principal's actor id
    filename: Mapped[str] = mapped_column(String(255))
    claimed_content_type: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(255))  # detected from the bytes
    content_size: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=AttachmentStatus.PENDING.value)
    rejection: Mapped[str | None] = mapped_column(String(64))  # why processing refused it
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_at: Mapped[datetime | None]
    # Where the client uploads; cleared once the upload window has closed and it is deleted.
    upload_key: Mapped[str | None] = mapped_column(String(512))
    upload_expires_at: Mapped[datetime]
    storage_key: Mapped[str | None] = mapped_column(String(512))  # the verified file
    thumbnail_key: Mapped[str | None] = mapped_column(String(512))
    processed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
