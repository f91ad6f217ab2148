"""Files attached to messaging messages, uploaded in two steps (start, then process).

The upload columns and their life are ``courier.models.upload``'s. ``removed`` hides a ready
file for good while keeping it for the audit.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from courier.models.base import Base
from courier.models.upload import UploadColumns, UploadStatus

AttachmentStatus = UploadStatus  # the name the messaging code knows it by


class MessagingAttachment(UploadColumns, Base):
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
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_at: Mapped[datetime | None]
