"""SMS consents of users: a request texted to the user's phone, answered by reply.

States: pending -> accepted | declined | expired; accepted -> revoked (STOP). Every change is a
row of ``user_consent_events``: the consent's history.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin, TimestampMixin


class UserConsent(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "user_consents"
    __table_args__ = (Index("ix_user_consents_target_state", "organization_id", "target_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(16), default="sms")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    target_id: Mapped[str] = mapped_column(String(20))  # the phone the request was texted to
    number_id: Mapped[uuid.UUID | None]
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime | None]


class UserConsentEvent(IdMixin, TenantMixin, Base):
    __tablename__ = "user_consent_events"
    __table_args__ = (Index("ix_user_consent_events_consent", "consent_id", "created_at"),)

    consent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_consents.id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
