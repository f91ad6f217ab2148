"""Attributes of appointments (seed 003 in the conventions' style: kebab-case, ISO times)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from courier.core.types import Extended, Timestamp, TimeZoneName
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab, not_nullable

APPOINTMENT_TYPE = "appointments"
MAX_ATTENDEES = 100
MAX_REFERENCE_PATIENTS = 100
MAX_REMINDERS = 5
MAX_DAYS_BEFORE = 30

Status = Literal["scheduled", "confirmed", "in_progress", "completed", "cancelled"]
Interaction = Literal["in_person", "video_call"]
Attendance = Literal["pending", "going", "maybe", "not_going"]
Payment = Literal["not_applicable", "pending", "paid", "refunded", "waived"]
GeneratedFromType = Literal["rule", "override"]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Description = Annotated[str, Field(max_length=10_000)]
Rule = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,
        description="An RFC 5545 RRULE without DTSTART (start-time is the first occurrence), "
        "e.g. FREQ=WEEKLY;COUNT=10; UNTIL in UTC. Expanded in time-zone: every occurrence "
        "keeps the first one's local time across daylight-saving changes",
        examples=["FREQ=WEEKLY;COUNT=10"],
    ),
]


class _Part(BaseModel):
    model_config = ConfigDict(
        alias_generator=kebab,
        populate_by_name=True,
        from_attributes=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class Location(_Part):
    """Where an ``in_person`` appointment takes place."""

    name: str | None = Field(default=None, max_length=255)
    line1: str | None = Field(default=None, max_length=255)
    line2: str | None = Field(default=None, max_length=255)
    city: str | None = Field(default=None, max_length=255)
    state: str | None = Field(default=None, max_length=255)
    postal_code: str | None = Field(default=None, max_length=32)
    country: str | None = Field(default=None, max_length=64)
    room: str | None = Field(default=None, max_length=255)


class RecurringIn(_Part):
    """Whether and how the appointment repeats."""

    is_recurring: bool = False
    rrule: Rule | None = None


class Reminder(_Part):
    """A reminder to each attendee, at a local time of theirs (their individual's time zone,
    else the appointment's), some days before each occurrence's local date."""

    days_before: int = Field(ge=0, le=MAX_DAYS_BEFORE, description="0: the same day")
    at: str = Field(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="HH:MM, the attendee's local time",
        examples=["18:00"],
    )


Reminders = Annotated[list[Reminder], Field(max_length=MAX_REMINDERS)]
TemplateRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="The notification template of the reminders: its id or name",
    ),
]


class AttendeeIn(_Part):
    """An attendee given as an object (a plain individual id is the same with defaults)."""

    id: uuid.UUID = Field(description="The attending individual")
    attendance_status: Attendance | None = None
    no_show: bool | None = None
    payment_status: Payment | None = None


AttendeeGiven = uuid.UUID | AttendeeIn
Attendees = Annotated[
    list[AttendeeGiven],
    Field(
        max_length=MAX_ATTENDEES,
        description="Individual ids, or objects with id, attendance-status, no-show and "
        "payment-status",
    ),
]
ReferencePatients = Annotated[
    list[uuid.UUID],
    Field(
        max_length=MAX_REFERENCE_PATIENTS,
        description="Only for internal appointments: the patients (individuals) it is about",
    ),
]


class AttendeeRead(_Part):
    id: uuid.UUID
    attendance_status: Attendance
    no_show: bool
    payment_status: Payment
    last_updated_at: Timestamp


class RecurringRead(_Part):
    is_recurring: bool
    rrule: str | None
    next_occurrences: list[Timestamp] = Field(
        description="Starts of the next (up to 10) occurrences from now, in UTC; each keeps "
        "the first one's local time in time-zone"
    )
    series_end: Timestamp | None = Field(
        description="End of the last occurrence; null for a rule without end"
    )


class VideoCallRead(_Part):
    join_url: str | None = Field(
        description="Where participants join the appointment's video visit (its "
        "get-credentials endpoint)"
    )
    meeting_id: str | None = Field(description="The video visit's id (video-channels)")


class StatusChange(_Part):
    status: Status
    changed_by: uuid.UUID | None
    changed_at: Timestamp


class ChangeLogEntry(_Part):
    changed_by: uuid.UUID | None
    changed_at: Timestamp
    changes: dict[str, dict[str, Any]] = Field(
        description="Each attribute that changed, with its value before (from) and after (to)"
    )


class AppointmentRead(ReadAttributes):
    name: str
    description: str | None
    appointment_type: str | None
    generated_from_type: GeneratedFromType | None
    generated_from: str | None
    group: bool
    internal: bool
    recurring: RecurringRead
    start_time: Timestamp
    end_time: Timestamp
    actual_start_time: Timestamp | None
    actual_end_time: Timestamp | None
    time_zone: str
    host: uuid.UUID | None
    attendees: list[AttendeeRead]
    reference_patients: list[uuid.UUID]
    interaction_type: Interaction
    video_call: VideoCallRead | None
    location: Location | None
    status: Status
    status_history: list[StatusChange]
    visit_note: str | None
    reminders: list[Reminder]
    reminder_template: uuid.UUID | None
    change_log: list[ChangeLogEntry]
    extended: dict[str, Any]
    organization_id: uuid.UUID
    created_by: uuid.UUID | None
    created_at: Timestamp
    last_updated_by: uuid.UUID | None
    last_updated_at: Timestamp


class AppointmentCreate(WriteAttributes):
    name: Name
    description: Description | None = None
    appointment_type: str | None = Field(default=None, max_length=255)
    generated_from_type: GeneratedFromType | None = None
    generated_from: str | None = Field(default=None, max_length=255)
    group: bool = False
    internal: bool = False
    recurring: RecurringIn | None = None
    start_time: Timestamp
    end_time: Timestamp
    time_zone: TimeZoneName | None = Field(
        default=None,
        description="IANA zone the appointment keeps its local time in (default: the "
        "organization's)",
    )
    host: uuid.UUID = Field(description="The hosting individual (a provider)")
    attendees: Attendees = Field(default_factory=list)
    reference_patients: ReferencePatients = Field(default_factory=list)
    interaction_type: Interaction = "in_person"
    location: Location | None = None
    status: Status = "scheduled"
    visit_note: str | None = Field(default=None, max_length=255)
    reminders: Reminders = Field(default_factory=list)
    reminder_template: TemplateRef | None = None
    extended: Extended = Field(default_factory=dict)
    created_by: uuid.UUID | None = Field(
        default=None,
        description="The individual booking it (default: an individual token's own; none for "
        "an API key)",
    )


class AppointmentUpdate(WriteAttributes):
    updated_by: uuid.UUID = Field(
        description="Required: the individual making the change (status history, change log)"
    )
    name: Name | None = Field(default=None, json_schema_extra=not_nullable)
    description: Description | None = None
    start_time: Timestamp | None = Field(default=None, json_schema_extra=not_nullable)
    end_time: Timestamp | None = Field(default=None, json_schema_extra=not_nullable)
    actual_start_time: Timestamp | None = None
    actual_end_time: Timestamp | None = None
    time_zone: TimeZoneName | None = Field(default=None, json_schema_extra=not_nullable)
    recurring: RecurringIn | None = Field(default=None, json_schema_extra=not_nullable)
    host: uuid.UUID | None = Field(default=None, json_schema_extra=not_nullable)
    attendees: Attendees | None = Field(default=None, json_schema_extra=not_nullable)
    reference_patients: ReferencePatients | None = Field(
        default=None, json_schema_extra=not_nullable
    )
    interaction_type: Interaction | None = Field(default=None, json_schema_extra=not_nullable)
    location: Location | None = None
    status: Status | None = Field(default=None, json_schema_extra=not_nullable)
    visit_note: str | None = Field(default=None, max_length=255)
    reminders: Reminders | None = Field(default=None, json_schema_extra=not_nullable)
    reminder_template: TemplateRef | None = None
    extended: Extended | None = Field(default=None, json_schema_extra=not_nullable)
