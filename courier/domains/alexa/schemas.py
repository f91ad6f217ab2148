"""Attributes of ask-reminders, ask-subscriptions and proactive-event sends on the wire."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, field_validator

from courier.core.types import Timestamp, TimeZoneName
from courier.domains.alexa.schedule import normalise_rule, parse_local_time
from courier.jsonapi.actions import ActionBody
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, not_nullable


def _text(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
    return value


def _local_time(value: str) -> str:
    parse_local_time(value)
    return value


def _rule(value: str | None) -> str | None:
    return None if value is None or not value.strip() else normalise_rule(value)


Name = Annotated[
    str, BeforeValidator(_text), Field(max_length=255, json_schema_extra={"pattern": r"\S"})
]
Content = Annotated[
    str,
    BeforeValidator(_text),
    Field(
        max_length=250,
        description="What Alexa says (at most 250 characters)",
        json_schema_extra={"pattern": r"\S"},
    ),
]
LocalTime = Annotated[
    str,
    AfterValidator(_local_time),
    Field(
        description="First time the reminder is due, local to tz-info, without offset: "
        "YYYY-MM-DDTHH:MM[:SS]",
        json_schema_extra={"example": "2030-03-04T08:30"},
    ),
]
Rule = Annotated[
    Annotated[str, Field(max_length=1000)] | None,
    AfterValidator(_rule),
    Field(
        description="RFC 5545 recurrence rule (FREQ=WEEKLY;BYDAY=MO); none: once",
        json_schema_extra={"example": "FREQ=WEEKLY;BYDAY=MO,TH"},
    ),
]


class AskReminderRead(ReadAttributes):
    account_id: uuid.UUID = Field(description="The organization the reminder belongs to")
    individual_id: uuid.UUID
    name: str
    reminder_content: str
    reminder_rrule: str | None
    reminder_time_local: str
    tz_info: str
    synced_to_alexa: bool = Field(
        description="Alexa holds the reminder as it is now (the sync job succeeded)"
    )
    alexa_reminder_id: str | None
    sync_error: str | None = Field(description="Why the last sync failed; null once it succeeds")
    next_occurrences: list[Timestamp] = Field(
        description="The next times (UTC) the reminder is due, at its local time in tz-info"
    )
    created_at: Timestamp
    created_by: str | None
    last_modified_at: Timestamp


class AskReminderCreate(WriteAttributes):
    individual_id: uuid.UUID
    name: Name
    reminder_content: Content
    reminder_rrule: Rule = None
    reminder_time_local: LocalTime
    tz_info: TimeZoneName


class AskReminderUpdate(WriteAttributes):
    name: Name | None = Field(default=None, json_schema_extra=not_nullable)
    reminder_content: Content | None = Field(default=None, json_schema_extra=not_nullable)
    reminder_rrule: Rule = None
    reminder_time_local: LocalTime | None = Field(default=None, json_schema_extra=not_nullable)
    tz_info: TimeZoneName | None = Field(default=None, json_schema_extra=not_nullable)

    @field_validator("name", "reminder_content", "reminder_time_local", "tz_info")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class AskSubscriptionRead(ReadAttributes):
    alexa_app_id: str
    alexa_user_id: str
    skill_id: uuid.UUID = Field(description="Courier's id of the skill (from alexa-app-id)")
    user_id: uuid.UUID | None = Field(description="The linked individual, if any")
    registered_events: list[str]
    created_at: Timestamp
    last_modified_at: Timestamp


class ProactiveEventName(BaseModel):
    name: str = Field(
        min_length=3,
        max_length=255,
        description="An Alexa event schema, e.g. AMAZON.MessageAlert.Activated",
        json_schema_extra={"example": "AMAZON.MessageAlert.Activated"},
    )
    payload: dict[str, Any] = Field(default_factory=dict)


class SendBody(ActionBody):
    event: ProactiveEventName
    expire: int = Field(
        default=3600, ge=300, le=86400, description="Seconds the event stays relevant"
    )
    localized: list[dict[str, str]] = Field(default_factory=list, max_length=20)


class AskEventRead(ReadAttributes):
    """A proactive event accepted for sending; ``state`` is its delivery's."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    name: str
    delivery_id: uuid.UUID
    state: str
    expires_at: Timestamp
