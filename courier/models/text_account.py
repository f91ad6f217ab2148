"""SMS accounts of organizations, their numbers, receive logs and who texts from which number.

An organization has at most one text account: it holds the provider account (id and encrypted
credentials, never returned) and the organization's texting rules (telephony config, quiet
hours, opt-out scope, help text). Numbers belong to an account; a number's phone number is
unique across the installation so an inbound text finds exactly one number.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin, TimestampMixin


class TextAccount(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "text_accounts"
    __table_args__ = (UniqueConstraint("organization_id"),)

    provider: Mapped[str] = mapped_column(String(32))
    allow_custom_number: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_number: Mapped[str | None] = mapped_column(String(20))  # the default number
    provider_account_id: Mapped[str | None] = mapped_column(String(64))
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    # Key of the signature on callback-url / callback-status-url posts (shown once).
    callback_secret: Mapped[str] = mapped_column(String(128))
    telephony_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    opt_out_scope: Mapped[str] = mapped_column(String(16), default="number")
    help_text: Mapped[str | None] = mapped_column(String(640))


class TextAccountNumber(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "text_account_numbers"
    __table_args__ = (UniqueConstraint("phone_number"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("text_accounts.id", ondelete="CASCADE"), index=True
    )
    # pending (provisioning job not done) -> active | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(String(255))
    area_code: Mapped[str | None] = mapped_column(String(8))
    claimed: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_number: Mapped[str | None] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    capability_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    capability_mms: Mapped[bool] = mapped_column(Boolean, default=False)
    capability_voice: Mapped[bool] = mapped_column(Boolean, default=False)
    lata: Mapped[str | None] = mapped_column(String(16))
    latitude: Mapped[str | None] = mapped_column(String(32))
    longitude: Mapped[str | None] = mapped_column(String(32))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    rate_center: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    alert: Mapped[bool] = mapped_column(Boolean, default=False)
    forward_to: Mapped[str | None] = mapped_column(String(20))
    logging: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(String(255))
    events: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rate_per_second: Mapped[float | None] = mapped_column(Float)
    # When the next text from this number may leave (its rate, messages per second).
    next_slot_at: Mapped[datetime | None]


class TextNumberLog(IdMixin, TenantMixin, Base):
    """One line of a number's activity log (kept only while the number's ``logging`` is on)."""

    __tablename__ = "text_number_logs"
    __table_args__ = (Index("ix_text_number_logs_number_created", "number_id", "created_at"),)

    number_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("text_account_numbers.id", ondelete="CASCADE")
    )
    log: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TextReceiveLog(IdMixin, TenantMixin, Base):
    """A text received on a number (what the carrier delivered to us)."""

    __tablename__ = "text_receive_logs"
    __table_args__ = (
        Index("ix_text_receive_logs_number_created", "number_id", "created_at"),
        UniqueConstraint("sid"),
    )

    number_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("text_account_numbers.id", ondelete="CASCADE")
    )
    sender: Mapped[str] = mapped_column(String(20), index=True)
    to: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    sid: Mapped[str] = mapped_column(String(64))
    # What the reply did: a keyword, a consent answer, a text's reply, a channel post ...
    outcome: Mapped[str | None] = mapped_column(String(32))
    text_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TextUserNumberMap(IdMixin, TenantMixin, TimestampMixin, Base):
    """The number a staff user texts from."""

    __tablename__ = "text_user_number_maps"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    number_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("text_account_numbers.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class UnknownNumberOpening(IdMixin, TenantMixin, Base):
    """A messaging channel that a text from an unknown phone opened (a number's
    ``events.unknown-number`` ``open-channel``), with the individual made for that phone.

    One per phone in an organization: the unique key is what makes a replayed webhook, or two
    first texts of a phone applied at once, open one individual and one channel."""

    __tablename__ = "text_unknown_openings"
    __table_args__ = (UniqueConstraint("organization_id", "phone"),)

    number_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("text_account_numbers.id", ondelete="CASCADE"), index=True
    )
    phone: Mapped[str] = mapped_column(String(20))
    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_channels.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
