"""Video visits (``video-channels``), their participants and the compositions (recordings)
made of recorded visits (docs/VIDEO.md).

A visit has one room on the configured video engine, named after the visit's id; the engine's
own id of the room is ``room_sid``. Its state moves scheduled → open (the first participant
connected) → terminated (ended by Courier or by the engine).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, JSONType, TenantMixin


class VisitState(enum.StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    TERMINATED = "terminated"


class AudioState(enum.StrEnum):
    MUTED = "muted"
    UNMUTED = "unmuted"


class CompositionStatus(enum.StrEnum):
    ENQUEUED = "enqueued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class VideoChannel(IdMixin, TenantMixin, Base):
    __tablename__ = "video_channels"
    __table_args__ = (
        Index("ix_video_channels_org_state", "organization_id", "state", "created_at"),
        Index("ix_video_channels_room", "room_sid"),
    )

    state: Mapped[str] = mapped_column(String(16), default=VisitState.SCHEDULED.value)
    type: Mapped[str] = mapped_column(String(32), default="direct")
    subject_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL")
    )
    messaging_channel_id: Mapped[uuid.UUID | None]
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    appointment_start: Mapped[datetime | None]
    appointment_duration: Mapped[int | None]  # minutes
    join_start: Mapped[datetime | None]
    recorded: Mapped[bool] = mapped_column(Boolean, default=False)
    appless: Mapped[bool] = mapped_column(Boolean, default=False)
    with_email: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    max_participants: Mapped[int | None]
    duration: Mapped[int | None]  # seconds the room was open
    provider: Mapped[str] = mapped_column(String(32))
    room_sid: Mapped[str | None] = mapped_column(String(128))
    room_status: Mapped[str | None] = mapped_column(String(16))
    room_error: Mapped[str | None] = mapped_column(String(255))
    encounter_id: Mapped[uuid.UUID | None]
    encounter: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    reminders: Mapped[list[int]] = mapped_column(JSONType, default=list)  # minutes before
    reminder_template_id: Mapped[uuid.UUID | None]
    created_by: Mapped[uuid.UUID | None]  # the individual who scheduled it
    created_by_actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    opened_at: Mapped[datetime | None]
    terminated_at: Mapped[datetime | None]
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)


class VideoParticipant(IdMixin, TenantMixin, Base):
    __tablename__ = "video_participants"
    __table_args__ = (
        UniqueConstraint("video_channel_id", "individual_id"),
        Index("ix_video_participants_individual", "organization_id", "individual_id"),
    )

    video_channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("video_channels.id", ondelete="CASCADE")
    )
    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(default=0)
    account_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="invited")
    audio_state: Mapped[str] = mapped_column(String(16), default=AudioState.UNMUTED.value)
    disconnected: Mapped[bool] = mapped_column(Boolean, default=False)
    connected_at: Mapped[datetime | None]
    disconnected_at: Mapped[datetime | None]
    duration: Mapped[int] = mapped_column(default=0)  # seconds connected, all sessions
    vendor_id: Mapped[str | None] = mapped_column(String(128))
    last_sequence: Mapped[int] = mapped_column(default=0)
    note: Mapped[str | None] = mapped_column(Text)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_by: Mapped[str | None] = mapped_column(String(64))


class VideoComposition(IdMixin, TenantMixin, Base):
    __tablename__ = "video_compositions"

    video_channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("video_channels.id", ondelete="CASCADE"), index=True
    )
    vendor_id: Mapped[str | None] = mapped_column(String(128))
    processing_status: Mapped[str] = mapped_column(
        String(16), default=CompositionStatus.ENQUEUED.value
    )
    processing_pct: Mapped[int] = mapped_column(default=0)
    size: Mapped[int | None]
    duration: Mapped[int | None]  # seconds
    content_type: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(512))
    error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)
