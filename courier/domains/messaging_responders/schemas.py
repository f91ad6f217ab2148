"""Attributes of auto-responders, as they travel on the wire."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from courier.core.types import Timestamp, TimeZoneName
from courier.domains.messaging.schemas import MESSAGE_MAX_LENGTH
from courier.domains.messaging_bulk.schemas import Translations
from courier.domains.messaging_responders.calendar import WALL_CLOCK_PATTERN, parse_wall_clock
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab

RESPONDER_TYPE = "messaging-responders"
RESPONDER_KINDS = ("auto-reply",)


def _start(value: str) -> str:
    parse_wall_clock(value)
    return value


def _end(value: str) -> str:
    parse_wall_clock(value, end=True)
    return value


_TIME_SCHEMA = {"type": "string", "pattern": WALL_CLOCK_PATTERN, "example": "18:00"}
StartTime = Annotated[str, AfterValidator(_start), WithJsonSchema(_TIME_SCHEMA)]
EndTime = Annotated[
    str,
    AfterValidator(_end),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?|24:00(:00)?)$",  # 24:00: midnight
            "example": "08:00",
        }
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")


class CalendarRule(_Body):
    """A day and a span of the clinic's wall-clock time (overnight when start > end)."""

    day: Literal[
        "everyday",
        "weekdays",
        "weekends",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    start_time: StartTime
    end_time: EndTime


class CalendarArgs(_Body):
    rules: Annotated[list[CalendarRule], Field(min_length=1, max_length=50)]
    timezone: TimeZoneName | None = Field(
        default=None, description="IANA zone of the rules' times (default: the organization's)"
    )


class ResponderArgs(_Body):
    """What an ``auto-reply`` responder posts, and as whom."""

    message: Annotated[str, Field(max_length=MESSAGE_MAX_LENGTH)] = ""
    message_js: Translations = Field(default_factory=dict)
    individual_id: uuid.UUID | None = Field(
        default=None,
        description="Who the reply is posted as (a member of the group); default: the group's "
        "first leader who subscribes to the channel",
    )


Kind = Literal["auto-reply"]


class ResponderRead(ReadAttributes):
    args: dict[str, Any]
    calendar_args: dict[str, Any]
    created_at: Timestamp
    created_by: uuid.UUID | None = Field(description="The API key that created it")
    enabled: bool
    end_at: Timestamp | None
    individual_group_id: uuid.UUID
    last_modified_at: Timestamp
    last_modified_by: uuid.UUID | None = Field(description="The API key that last changed it")
    name: str | None
    organization_id: uuid.UUID
    start_at: Timestamp | None
    type: str


class ResponderCreate(WriteAttributes):
    args: ResponderArgs
    calendar_args: CalendarArgs
    individual_group_id: uuid.UUID
    name: Annotated[str, Field(max_length=255)] | None = None
    start_at: Timestamp | None = None
    end_at: Timestamp | None = None
    type: Kind = "auto-reply"
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the default)"
    )


class ResponderUpdate(WriteAttributes):
    args: ResponderArgs = Field(default=None)  # type: ignore[assignment]
    calendar_args: CalendarArgs = Field(default=None)  # type: ignore[assignment]
    individual_group_id: uuid.UUID = Field(default=None)  # type: ignore[assignment]
    name: Annotated[str, Field(max_length=255)] | None = None
    start_at: Timestamp | None = Field(default=None, description="null: no start bound")
    end_at: Timestamp | None = Field(default=None, description="null: no end bound")
    type: Kind = Field(default=None)  # type: ignore[arg-type]
