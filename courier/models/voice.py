"""Voice lines of organizations: a line's settings (the number, its IVR messages, business
hours), the calls it answered, the queue of callers waiting for staff, the agents serving that
queue, recordings (with their transcriptions) and maintenance tasks.

A queue entry's position is never stored: it is the rank of the entry among the line's waiting
entries ordered by ``enqueued_at`` then ``id``, computed when read, so concurrent arrivals and
departures cannot leave a stale counter behind.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin, TimestampMixin


class VoiceSetting(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "voice_settings"
    __table_args__ = (UniqueConstraint("phone_number"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("text_accounts.id", ondelete="CASCADE"), index=True
    )
    phone_number: Mapped[str] = mapped_column(String(20))
    forward_number: Mapped[str | None] = mapped_column(String(20))
    greeting_message: Mapped[str | None] = mapped_column(String(1000))
    wait_message: Mapped[str | None] = mapped_column(String(1000))
    recording_message: Mapped[str | None] = mapped_column(String(1000))
    after_hours_message: Mapped[str | None] = mapped_column(String(1000))
    recording_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # [{"day": "mon", "open": "08:00", "close": "17:00"}, ...] in the organization's time zone;
    # None: always open.
    business_hours: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType, default=None)
    # pending (the configure job has not pointed the number at Courier yet) -> configured | failed
    line_state: Mapped[str] = mapped_column(String(16), default="pending")
    line_error: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[uuid.UUID | None]


class VoiceLineCall(IdMixin, TenantMixin, Base):
    """A call a line answered (one per provider call id): its caller and its last status."""

    __tablename__ = "voice_line_calls"
    __table_args__ = (UniqueConstraint("call_sid"),)

    setting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("voice_settings.id", ondelete="CASCADE"), index=True
    )
    call_sid: Mapped[str] = mapped_column(String(64))
    caller: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="in-progress")
    step: Mapped[str] = mapped_column(String(16), default="greeting")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class VoiceQueueEntry(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "voice_queue_entries"
    __table_args__ = (
        UniqueConstraint("call_sid"),
        Index("ix_voice_queue_entries_waiting", "setting_id", "state", "enqueued_at", "id"),
    )

    setting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("voice_settings.id", ondelete="CASCADE")
    )
    call_sid: Mapped[str] = mapped_column(String(64))
    phone_number: Mapped[str] = mapped_column(String(32))
    individual_id: Mapped[uuid.UUID | None]
    state: Mapped[str] = mapped_column(String(16), default="waiting")  # connected | abandoned
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)
    connected_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    agent_id: Mapped[uuid.UUID | None]


class VoiceQueueAgent(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "voice_queue_agents"
    __table_args__ = (Index("ix_voice_queue_agents_free", "setting_id", "state", "free_since"),)

    setting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("voice_settings.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID | None]
    individual_id: Mapped[uuid.UUID | None]
    use_pstn: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_number: Mapped[str | None] = mapped_column(String(20))
    identity: Mapped[str] = mapped_column(String(121))
    # available -> busy (a caller is being connected) -> available ...; left (DELETE)
    state: Mapped[str] = mapped_column(String(16), default="available")
    free_since: Mapped[datetime] = mapped_column(default=utcnow)
    entry_id: Mapped[uuid.UUID | None]
    left_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None]


class VoiceRecording(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "voice_recordings"
    __table_args__ = (
        UniqueConstraint("recording_sid"),
        Index("ix_voice_recordings_setting_created", "setting_id", "created_at"),
    )

    setting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("voice_settings.id", ondelete="CASCADE")
    )
    call_sid: Mapped[str] = mapped_column(String(64))
    recording_sid: Mapped[str] = mapped_column(String(64))
    phone_number: Mapped[str] = mapped_column(String(32))
    individual_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16), default="voicemail")  # or "call"
    state: Mapped[str] = mapped_column(String(16), default="inprogress")  # completed | failed
    duration: Mapped[float | None] = mapped_column(Float)
    storage_key: Mapped[str | None] = mapped_column(String(512))
    transcription: Mapped[str | None] = mapped_column(Text)
    transcription_state: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(255))
    download_count: Mapped[int] = mapped_column(Integer, default=0)


class VoiceTask(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "voice_tasks"

    setting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("voice_settings.id", ondelete="CASCADE"), index=True
    )
    method: Mapped[str] = mapped_column(String(64))
    kwargs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="created")
    result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error_message: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[uuid.UUID | None]
