"""Appointments (seed 003): a booked chunk of time between a host and attendees.

``start_time``/``end_time`` are the planned times of the appointment (of its first occurrence
when it recurs); ``series_end`` is the end of its last occurrence (null: a recurrence without
end), so "what happens in this window" is one indexed comparison. ``status_history`` and
``change_log`` are kept on the row, newest last (docs/APPOINTMENTS.md).
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


class AppointmentStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class InteractionType(enum.StrEnum):
    IN_PERSON = "in_person"
    VIDEO_CALL = "video_call"


class AttendanceStatus(enum.StrEnum):
    PENDING = "pending"
    GOING = "going"
    MAYBE = "maybe"
    NOT_GOING = "not_going"


class PaymentStatus(enum.StrEnum):
    NOT_APPLICABLE = "not_applicable"
    PENDING = "pending"
    PAID = "paid"
    REFUNDED = "refunded"
    WAIVED = "waived"


class Appointment(IdMixin, TenantMixin, Base):
    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_org_start", "organization_id", "start_time"),
        Index("ix_appointments_org_host", "organization_id", "host_id", "start_time"),
    )

    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    appointment_type: Mapped[str | None] = mapped_column(String(255))
    generated_from_type: Mapped[str | None] = mapped_column(String(16))
    generated_from: Mapped[str | None] = mapped_column(String(255))
    group: Mapped[bool] = mapped_column(Boolean, default=False)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    host_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL")
    )
    start_time: Mapped[datetime]
    end_time: Mapped[datetime]
    series_end: Mapped[datetime | None]
    actual_start_time: Mapped[datetime | None]
    actual_end_time: Mapped[datetime | None]
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    rrule: Mapped[str | None] = mapped_column(String(1000))
    interaction_type: Mapped[str] = mapped_column(String(16))
    location: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The video visit a video_call appointment will get (built by a later change; null now).
    video_visit_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(16), default=AppointmentStatus.SCHEDULED.value)
    status_history: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    change_log: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    reference_patients: Mapped[list[str]] = mapped_column(JSONType, default=list)
    visit_note: Mapped[str | None] = mapped_column(Text)
    # Reminders: [{"days-before": n, "at": "HH:MM"}] at each attendee's local time, rendered
    # from the template (no foreign key: a template that is gone skips the reminder).
    reminders: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    reminder_template_id: Mapped[uuid.UUID | None]
    extended: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[uuid.UUID | None]  # the individual who booked it
    created_by_actor: Mapped[str] = mapped_column(String(64))  # the credential that did
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_updated_by: Mapped[uuid.UUID | None]
    last_updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppointmentAttendee(IdMixin, TenantMixin, Base):
    __tablename__ = "appointment_attendees"
    __table_args__ = (
        UniqueConstraint("appointment_id", "individual_id"),
        Index("ix_appointment_attendees_individual", "organization_id", "individual_id"),
    )

    appointment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE")
    )
    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(default=0)
    attendance_status: Mapped[str] = mapped_column(
        String(16), default=AttendanceStatus.PENDING.value
    )
    no_show: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_status: Mapped[str] = mapped_column(
        String(16), default=PaymentStatus.NOT_APPLICABLE.value
    )
    last_updated_at: Mapped[datetime] = mapped_column(default=utcnow)
