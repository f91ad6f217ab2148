"""Alexa: linked Alexa accounts, reminders on patients' devices, proactive-event subscriptions
and the proactive events sent to them, and the latest API token of each Alexa user."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin, TimestampMixin


class AlexaLink(IdMixin, TenantMixin, TimestampMixin, Base):
    """An Alexa user (``amzn1.ask.account...``) linked to one individual: made when a skill
    request carries an individual access token Courier minted (docs/ALEXA.md)."""

    __tablename__ = "alexa_links"
    __table_args__ = (UniqueConstraint("alexa_user_id"),)

    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE"), index=True
    )
    alexa_user_id: Mapped[str] = mapped_column(String(512))
    alexa_app_id: Mapped[str] = mapped_column(String(255))


class AlexaUserToken(Base):
    """The latest ``apiAccessToken`` an Alexa user's skill requests carried (sealed), with
    their region's API host: Amazon creates reminders only with it (docs/ALEXA.md). Not a
    tenant table: it is Amazon's credential for an Alexa account, names no individual, and is
    needed after a purge (to remove reminders from the device). Good for under an hour."""

    __tablename__ = "alexa_user_tokens"

    alexa_user_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    token_sealed: Mapped[str] = mapped_column(Text)
    api_endpoint: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class AskReminder(IdMixin, TenantMixin, TimestampMixin, Base):
    """A reminder of one individual, kept on their Alexa device by the sync job."""

    __tablename__ = "ask_reminders"

    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    reminder_content: Mapped[str] = mapped_column(String(250))
    reminder_rrule: Mapped[str | None] = mapped_column(String(1000))
    reminder_time_local: Mapped[str] = mapped_column(String(32))  # YYYY-MM-DDTHH:MM[:SS]
    tz_info: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(80))
    synced_to_alexa: Mapped[bool] = mapped_column(Boolean, default=False)
    alexa_reminder_id: Mapped[str | None] = mapped_column(String(255))
    alexa_user_id: Mapped[str | None] = mapped_column(String(512))  # whose device holds it
    sync_version: Mapped[int] = mapped_column(Integer, default=1)  # bumped by every change
    synced_version: Mapped[int] = mapped_column(Integer, default=0)
    sync_error: Mapped[str | None] = mapped_column(Text)
    sync_attempts: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime | None]


class AskSubscription(IdMixin, TenantMixin, TimestampMixin, Base):
    """An Alexa user's subscription to the skill's proactive events."""

    __tablename__ = "ask_subscriptions"
    __table_args__ = (UniqueConstraint("organization_id", "alexa_app_id", "alexa_user_id"),)

    skill_id: Mapped[uuid.UUID] = mapped_column(index=True)  # Courier's id of the skill
    alexa_app_id: Mapped[str] = mapped_column(String(255))
    alexa_user_id: Mapped[str] = mapped_column(String(512))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL"), index=True
    )
    registered_events: Mapped[list[str]] = mapped_column(JSONType, default=list)


class AskEvent(IdMixin, TenantMixin, Base):
    """One proactive event sent to a subscriber; its delivery records the outcome."""

    __tablename__ = "ask_events"

    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ask_subscriptions.id", ondelete="SET NULL"), index=True
    )
    alexa_user_id: Mapped[str] = mapped_column(String(512))
    name: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    localized: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    expires_at: Mapped[datetime]
    delivery_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
