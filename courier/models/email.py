"""Emails sent by an organization (``user-emails``), and the addresses that bounced.

An email is a draft until it is sent; sending creates one delivery (``deliveries``, the
generic state machine) whose state the email mirrors: queued → sending → sent | failed, with
``result`` the SMTP server's reply or why it failed.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin
from courier.models.upload import UploadColumns


class EmailStatus(enum.StrEnum):
    DRAFT = "draft"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class UserEmail(IdMixin, TenantMixin, Base):
    __tablename__ = "user_emails"
    __table_args__ = (Index("ix_user_emails_individual", "individual_id", "created_at"),)

    # The individual the email concerns (the token's own, or individual-id); null for an
    # email an API key sent for no one in particular.
    individual_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by: Mapped[str] = mapped_column(String(64))  # the principal's actor id
    to: Mapped[list[str]] = mapped_column(JSONType)
    subject: Mapped[str] = mapped_column(String(998))
    message: Mapped[str | None] = mapped_column(Text)
    message_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=EmailStatus.DRAFT.value)
    result: Mapped[str | None] = mapped_column(String(1000))
    task_id: Mapped[uuid.UUID | None]  # the job that sends it
    delivery_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BouncingAddress(IdMixin, TenantMixin, Base):
    """An address that bounced for this organization: later sends to it are refused."""

    __tablename__ = "email_bouncing_addresses"
    __table_args__ = (UniqueConstraint("organization_id", "address"),)

    address: Mapped[str] = mapped_column(String(320))  # lower case
    status: Mapped[str | None] = mapped_column(String(16))  # enhanced status, e.g. 5.1.1
    reason: Mapped[str] = mapped_column(String(500))
    email_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_emails.id", ondelete="SET NULL")
    )
    bounced_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserEmailAttachment(UploadColumns, Base):
    """A file travelling with an email, uploaded in two steps (start, then process), like
    every upload (``courier.models.upload``): ``pending`` → ``ready`` | ``rejected``."""

    __tablename__ = "user_email_attachments"
    __table_args__ = (
        Index("ix_user_email_attachments_email", "email_id", "created_at"),
        Index("ix_user_email_attachments_upload_expiry", "organization_id", "upload_expires_at"),
    )

    email_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_emails.id", ondelete="CASCADE"))
    individual_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL"), index=True
    )
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_at: Mapped[datetime | None]
