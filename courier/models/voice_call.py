"""Voice conferences, their call legs (dial logs) and voice surveys
(``courier.domains.voice_calls``, docs/VOICE_CALLS.md).

A dial log is one call leg Courier placed, through one voice delivery
(``deliveries.resource_type = "voice-dial-logs"``, ``resource_id`` = the dial log); it belongs
to a conference or to a survey. ``status`` is the provider's call status (queued, ringing,
in-progress, completed, busy, no-answer, failed, canceled).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin


class VoiceConference(IdMixin, TenantMixin, Base):
    """A conference joining an individual and a provider (both individuals of the
    organization; the provider may be absent and join by browser). ``name`` is the
    provider-side conference room name."""

    __tablename__ = "voice_conferences"
    __table_args__ = (
        Index("ix_voice_conferences_org_created", "organization_id", "created_at"),
        Index("ix_voice_conferences_individual", "individual_id"),
        Index("ix_voice_conferences_provider", "provider_id"),
    )

    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    provider_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL")
    )
    name: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="created")
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    extended: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None]
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)


class VoiceSurvey(IdMixin, TenantMixin, Base):
    """A survey call: ``spec`` (the questions), ``result`` (one entry per question asked),
    ``position`` (the question asked now) and ``attempts`` (tries of that question)."""

    __tablename__ = "voice_surveys"
    __table_args__ = (
        Index("ix_voice_surveys_org_created", "organization_id", "created_at"),
        Index("ix_voice_surveys_individual", "individual_id"),
    )

    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    state: Mapped[str] = mapped_column(String(16), default="created")
    position: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failure: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    extended: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None]
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)


class VoiceDialLog(IdMixin, TenantMixin, Base):
    """One call leg: to whom, its status, direction, duration and cost as the provider
    reported them, and free-form ``extended`` data."""

    __tablename__ = "voice_dial_logs"
    __table_args__ = (
        Index("ix_voice_dial_logs_org_created", "organization_id", "created_at"),
        Index("ix_voice_dial_logs_conference", "conference_id"),
        Index("ix_voice_dial_logs_survey", "survey_id"),
        Index("ix_voice_dial_logs_individual", "individual_id"),
    )

    conference_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("voice_conferences.id", ondelete="CASCADE")
    )
    survey_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("voice_surveys.id", ondelete="CASCADE")
    )
    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))  # individual, provider, survey
    delivery_id: Mapped[uuid.UUID | None]
    call_sid: Mapped[str | None] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(16), default="outbound-api")
    to_number: Mapped[str] = mapped_column(String(16))
    from_number: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    call_duration: Mapped[int | None]
    cost: Mapped[str | None] = mapped_column(String(32))
    cost_unit: Mapped[str | None] = mapped_column(String(8))
    error_code: Mapped[str | None] = mapped_column(String(64))
    extended: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["VoiceConference", "VoiceDialLog", "VoiceSurvey"]
