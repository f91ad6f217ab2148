"""Texts sent to a phone, and the opt-outs that refuse later ones.

A text's delivery (status, the carrier's id, error codes, history) is a row of the provider
layer's ``deliveries`` table; the text holds what was asked (from, target, message, callbacks)
and what the replies did.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin, TimestampMixin


class OutboundText(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "texts"
    __table_args__ = (
        Index("ix_texts_account_created", "account_id", "created_at", "id"),
        Index("ix_texts_number_target", "number_id", "target", "created_at"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("text_accounts.id", ondelete="CASCADE")
    )
    number_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("text_account_numbers.id", ondelete="CASCADE")
    )
    delivery_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    from_number: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))
    segments: Mapped[int] = mapped_column(Integer)
    # outbound (POST /v1/texts/), consent, keyword (STOP/HELP answers), bridge, auto-reply
    purpose: Mapped[str] = mapped_column(String(16), default="outbound")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[uuid.UUID | None]
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    callback_status_url: Mapped[str | None] = mapped_column(String(2048))
    callback_json: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    callback_one_off: Mapped[bool] = mapped_column(Boolean, default=False)
    expected_responses: Mapped[list[str] | None] = mapped_column(JSONType, default=None)
    replies_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_count: Mapped[int] = mapped_column(Integer, default=0)
    callback_seq: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="accepted")  # the delivery's
    error: Mapped[str | None] = mapped_column(String(500))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[uuid.UUID | None]
    consent_id: Mapped[uuid.UUID | None]


class TextOptOut(IdMixin, TenantMixin, Base):
    """A phone that texted STOP: to one number (``number_id``) or, where the organization's
    opt-out scope is ``organization``, to all its numbers (``number_id`` NULL, ``scope`` ``*``)."""

    __tablename__ = "text_opt_outs"
    __table_args__ = (UniqueConstraint("organization_id", "phone", "scope"),)

    phone: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(40))  # a number's id, or "*"
    number_id: Mapped[uuid.UUID | None]
    keyword: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TextCallback(IdMixin, TenantMixin, Base):
    """A post owed to a text's ``callback-status-url`` or ``callback-url``, in order per text
    (``seq``): a later one waits until the earlier ones were delivered."""

    __tablename__ = "text_callbacks"
    __table_args__ = (UniqueConstraint("text_id", "seq"),)

    text_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("texts.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2048))
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    delivered_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
