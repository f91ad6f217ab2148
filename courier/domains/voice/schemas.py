"""Attributes of voice lines, queues, recordings and tasks on the wire."""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from courier.core.types import PhoneE164, Timestamp
from courier.jsonapi.actions import ActionBody
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
_CLOCK = re.compile(CLOCK_PATTERN)
Message = str


class Ref(BaseModel):
    id: uuid.UUID


class BusinessHours(BaseModel):
    """One opening of a day, in the organization's time zone (``close`` after ``open``)."""

    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    open: str = Field(
        description="HH:MM, 24-hour clock",
        examples=["08:00"],
        json_schema_extra={"pattern": CLOCK_PATTERN},  # checked by _clock, with its message
    )
    close: str = Field(
        description="HH:MM, 24-hour clock (24:00 = midnight)",
        examples=["17:30"],
        json_schema_extra={"pattern": CLOCK_PATTERN},
    )

    @field_validator("open", "close")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError("a time of day is HH:MM (00:00 to 24:00)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHours:
        if self.close <= self.open:
            raise ValueError("close must be after open")
        return self


class VoiceSettingRead(ReadAttributes):
    account_id: uuid.UUID
    after_hours_message: str | None
    business_hours: list[BusinessHours] | None = Field(
        description="When the line is open, in the organization's time zone; null: always"
    )
    created_at: Timestamp
    forward_number: str | None
    greeting_message: str | None
    last_modified_at: Timestamp
    line_error: str | None = Field(description="Why pointing the number at Courier failed")
    line_state: Literal["pending", "configured", "failed"] = Field(
        description="Whether the number's calls reach Courier's IVR yet"
    )
    organization_id: uuid.UUID
    phone_number: str
    recording_enabled: bool
    recording_message: str | None
    wait_message: str | None


_MESSAGE = Field(default=None, min_length=1, max_length=1000)


class VoiceSettingCreate(WriteAttributes):
    account_id: uuid.UUID | None = Field(
        default=None, description="The text account owning the number (default: the org's)"
    )
    after_hours_message: str | None = _MESSAGE
    business_hours: list[BusinessHours] | None = Field(default=None, max_length=70)
    forward_number: PhoneE164 | None = None
    greeting_message: str | None = _MESSAGE
    organization_id: uuid.UUID | None = None
    phone_number: PhoneE164
    recording_enabled: bool = False
    recording_message: str | None = _MESSAGE
    wait_message: str | None = _MESSAGE


class VoiceSettingUpdate(WriteAttributes):
    after_hours_message: str | None = _MESSAGE
    business_hours: list[BusinessHours] | None = Field(default=None, max_length=70)
    forward_number: PhoneE164 | None = None
    greeting_message: str | None = _MESSAGE
    organization_id: uuid.UUID | None = None
    phone_number: PhoneE164 | None = None
    recording_enabled: bool | None = None
    recording_message: str | None = _MESSAGE
    wait_message: str | None = _MESSAGE


class RunTaskBody(ActionBody):
    method: Literal["refresh_queue_entries"] = Field(description="The task to run")
    arguments: dict[str, Any] = Field(
        default_factory=dict, alias="kwargs", description="Its arguments (none yet)"
    )


class VoiceTaskRead(ReadAttributes):
    created_at: Timestamp
    created_by: uuid.UUID | None
    error_message: str | None
    arguments: dict[str, Any] = Field(alias="kwargs")
    last_modified_at: Timestamp
    method: str
    result: dict[str, Any] | None
    setting: Ref
    state: Literal["created", "running", "completed", "failed"]


class VoiceQueueEntryRead(ReadAttributes):
    agent_id: uuid.UUID | None = Field(description="The agent the caller was connected to")
    connected_at: Timestamp | None
    created_at: Timestamp
    ended_at: Timestamp | None
    individual_id: uuid.UUID | None
    last_modified_at: Timestamp
    phone_number: str = Field(description="The caller's number")
    position: int | None = Field(
        description="1 for the next caller served; null once no longer waiting"
    )
    queue_time: int = Field(description="Seconds waited (so far, while waiting)")
    setting: Ref
    state: Literal["waiting", "connected", "abandoned"]


class VoiceQueueAgentRead(ReadAttributes):
    access_token: str | None = Field(
        description="A browser agent's Voice access token: in the answer to joining only"
    )
    call: Ref | None = Field(description="The queue entry the agent is connected to")
    created_at: Timestamp
    identity: str = Field(description="The client identity a browser agent registers with")
    individual_id: uuid.UUID | None
    last_modified_at: Timestamp
    phone_number: str | None
    setting: Ref
    state: Literal["available", "busy", "left"]
    use_pstn: bool
    user: Ref | None


class VoiceQueueAgentCreate(WriteAttributes):
    individual_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    phone_number: PhoneE164 | None = Field(
        default=None, description="The agent's phone (use-pstn); default: the user's phone"
    )
    setting_id: uuid.UUID
    use_pstn: bool = False
    user_id: uuid.UUID | None = Field(default=None, description="The staff user who serves")


class VoiceRecordingRead(ReadAttributes):
    created_at: Timestamp
    download_count: int
    download_url: str | None = Field(
        description="A signed link to the audio (WAV), valid for a short while"
    )
    duration: float | None = Field(description="Seconds")
    individual_id: uuid.UUID | None
    kind: Literal["voicemail", "call"]
    last_modified_at: Timestamp
    phone_number: str
    setting_id: uuid.UUID
    state: Literal["inprogress", "completed", "failed"]
    transcription: str | None
    transcription_state: str | None


class TtsCreate(WriteAttributes):
    format: Literal["wav", "mp3"] = Field(default="wav", description="Audio format (WAV only)")
    locale: str = Field(default="en-US", min_length=2, max_length=35, examples=["en-US"])
    text: str = Field(min_length=1, max_length=20000)


class TtsData(BaseModel):
    type: str = Field(examples=["tts-synthesizers"])
    attributes: TtsCreate


class TtsDocument(BaseModel):
    """``{"data": {"type": "tts-synthesizers", "attributes": {"text", "locale"}}}``"""

    data: TtsData
    meta: dict[str, Any] | None = None
