"""Attributes of video visits (``video-channels``), their participants and compositions."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from courier.core.types import Timestamp
from courier.jsonapi.actions import ActionBody
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab, not_nullable

CHANNEL_TYPE = "video-channels"
PARTICIPANT_TYPE = "video-participants"
COMPOSITION_TYPE = "video-compositions"
MAX_PARTICIPANTS = 50
MAX_DURATION_MINUTES = 24 * 60
MAX_NOTE = 10_000
MAX_REMINDERS = 5

State = Literal["scheduled", "open", "terminated"]
Audio = Literal["muted", "unmuted"]
ProcessingStatus = Literal["enqueued", "processing", "completed", "failed"]
CompositionState = Literal["pending", "available", "failed"]
Note = Annotated[str, Field(max_length=MAX_NOTE)]
Minutes = Annotated[
    int, Field(ge=1, le=MAX_DURATION_MINUTES, description="The planned length, in minutes")
]


class _Part(BaseModel):
    model_config = ConfigDict(
        alias_generator=kebab,
        populate_by_name=True,
        from_attributes=True,
        serialize_by_alias=True,
        extra="forbid",
    )


# --- video-channels --------------------------------------------------------------------------


class AppointmentIn(_Part):
    """When the visit is planned. Joining opens at ``join-start`` (default: 10 minutes before
    ``start``) and closes 60 minutes after the planned end."""

    id: uuid.UUID | None = Field(
        default=None, description="The appointment (appointments resource) it belongs to"
    )
    start: Timestamp
    duration: Minutes = 30
    join_start: Timestamp | None = Field(
        default=None, description="When participants may join (default: start - 10 minutes)"
    )


class AppointmentRead(_Part):
    id: uuid.UUID | None
    start: Timestamp | None
    duration: int | None
    join_start: Timestamp | None
    join_end: Timestamp | None = Field(description="When joining closes (null: when it ends)")


class UserRead(_Part):
    """The participant's own login account (its preferences), if it has one."""

    id: uuid.UUID
    communication_preferences: dict[str, Any]
    email_verified: bool
    phone_verified: bool
    registration_invite: str | None
    state: str


class ParticipantSummary(_Part):
    id: uuid.UUID
    individual_id: uuid.UUID
    account_type: str
    audio_state: Audio
    disconnected: bool
    connected_at: Timestamp | None
    encounter_id: uuid.UUID | None
    first_name: str | None
    last_name: str | None
    photo: str | None
    note: str | None
    status: str
    user: UserRead | None


class CompositionSummary(_Part):
    id: uuid.UUID
    created_at: Timestamp
    last_modified_at: Timestamp
    duration: int | None
    size: int | None
    processing_pct: int
    processing_status: ProcessingStatus
    status: CompositionState


class EncounterRead(_Part):
    id: uuid.UUID
    version: Literal["v1", "v2"]
    service_type_id: uuid.UUID | None
    author_id: uuid.UUID | None
    note: str | None
    participants: list[uuid.UUID]
    started_at: Timestamp | None
    ended_at: Timestamp | None
    duration: int | None
    finalized_at: Timestamp


class VideoChannelRead(ReadAttributes):
    channel_state: State
    type: str
    appointment: AppointmentRead
    appless: bool
    with_email: bool
    recorded: bool
    note: str | None
    max_participants: int | None
    duration: int | None = Field(description="Seconds the visit was open (once terminated)")
    participants: list[ParticipantSummary]
    compositions: list[CompositionSummary]
    subject_id: uuid.UUID | None
    messaging_channel_id: uuid.UUID | None
    scheduler_id: uuid.UUID | None
    created_by: uuid.UUID | None
    encounter_id: uuid.UUID | None
    encounter: EncounterRead | None
    observation_id: uuid.UUID | None
    join_url: str = Field(description="Where participants join the visit")
    room_name: str = Field(description="The room's unique name on the video engine")
    provider: str = Field(description="The video engine of the visit (e.g. sandbox, twilio)")
    reminders: list[int] = Field(description="Minutes before the start the reminders go out")
    organization_id: uuid.UUID
    organization_display_name: str | None
    created_at: Timestamp
    opened_at: Timestamp | None
    terminated_at: Timestamp | None
    last_modified_at: Timestamp


class VideoChannelCreate(WriteAttributes):
    participants: list[uuid.UUID] = Field(
        min_length=1,
        max_length=MAX_PARTICIPANTS,
        description="The individuals taking part (providers, patients, carers)",
    )
    appointment: AppointmentIn | None = None
    recorded: bool = False
    appless: bool = Field(default=False, description="Join by link, without the app")
    with_email: bool = Field(
        default=False, description="Email each participant the invitation with the join link"
    )
    type: str = Field(default="direct", min_length=1, max_length=32)
    subject_id: uuid.UUID | None = Field(default=None, description="The patient the visit is about")
    messaging_channel_id: uuid.UUID | None = Field(
        default=None, description="The messaging channel the visit belongs to"
    )
    note: Note | None = None
    max_participants: int | None = Field(default=None, ge=1, le=MAX_PARTICIPANTS)
    created_by: uuid.UUID | None = Field(
        default=None, description="The individual scheduling it (default: a token's own)"
    )


class VideoChannelUpdate(WriteAttributes):
    appointment_start: Timestamp | None = Field(default=None, json_schema_extra=not_nullable)
    appointment_duration: Minutes | None = Field(default=None, json_schema_extra=not_nullable)
    note: Note | None = None
    recorded: bool | None = Field(default=None, json_schema_extra=not_nullable)


# --- actions ---------------------------------------------------------------------------------


class Credentials(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True)

    access_token: str = Field(description="What the client passes to the engine's SDK")
    name: str = Field(description="The room's unique name")
    identity: str
    provider: str
    expires_at: Timestamp
    extra: dict[str, str] = Field(description="Engine-specific values (e.g. Janus' room and pin)")


class AudioChange(ActionBody):
    id: uuid.UUID = Field(description="The video participant's id, or its individual's id")
    audio_state: Audio


class AudioStatesBody(ActionBody):
    individual_id: uuid.UUID | None = Field(
        default=None,
        description="The provider muting or unmuting (an individual token: its own)",
    )
    participants: list[AudioChange] = Field(min_length=1, max_length=MAX_PARTICIPANTS)


class ReminderBody(ActionBody):
    minutes_before: list[Annotated[int, Field(ge=1, le=7 * 24 * 60)]] = Field(
        default_factory=lambda: [15],
        max_length=MAX_REMINDERS,
        description="When reminders go out, in minutes before the start (default [15])",
    )
    template_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="A notification template (id or name); default: the organization's "
        "video-visit-reminder template, made on first use",
    )


class FinalizeBody(ActionBody):
    service_type_id: uuid.UUID | None = None
    use_note_from_author_participant: bool = False
    individual_id: uuid.UUID | None = Field(
        default=None, description="The author (an individual token: its own)"
    )


class FinalizeV2Body(ActionBody):
    service_type_id: uuid.UUID | None = None
    individual_id: uuid.UUID | None = Field(
        default=None, description="The author (an individual token: its own)"
    )


# --- video-participants ------------------------------------------------------------------------


class VideoParticipantRead(ReadAttributes):
    video_channel_id: uuid.UUID
    individual_id: uuid.UUID
    account_type: str
    status: str
    audio_state: Audio
    disconnected: bool
    connected_at: Timestamp | None
    disconnected_at: Timestamp | None
    duration: int = Field(description="Seconds connected, all sessions together")
    note: str | None
    encounter_id: uuid.UUID | None
    twilio_channel_id: str | None = Field(description="The engine's id of the participant")
    user: UserRead | None
    organization_id: uuid.UUID
    last_modified_at: Timestamp
    last_modified_by: str | None


class VideoParticipantUpdate(WriteAttributes):
    audio_state: Audio | None = Field(default=None, json_schema_extra=not_nullable)
    disconnected: bool | None = Field(default=None, json_schema_extra=not_nullable)
    note: Note | None = None


# --- video-compositions ----------------------------------------------------------------------


class VideoCompositionRead(ReadAttributes):
    video_channel_id: uuid.UUID
    processing_status: ProcessingStatus
    processing_pct: int
    status: CompositionState
    size: int | None
    duration: int | None
    content_type: str | None
    media_url: str | None = Field(
        description="A short-lived signed link to the media file (once completed)"
    )
    error: str | None
    organization_id: uuid.UUID
    created_at: Timestamp
    last_modified_at: Timestamp
