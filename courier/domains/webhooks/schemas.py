from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema, field_validator

from courier.core.types import Timestamp
from courier.events.patterns import (
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    PATTERN_REGEX,
    check_patterns,
)
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, not_nullable

# Checked by check_patterns; said here so the schema tells the length rule too.
Pattern = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_PATTERN_LENGTH,
            "pattern": PATTERN_REGEX,
        }
    ),
]

EVENT_TYPES_DESCRIPTION = (
    "Event types to deliver: a type (api-keys.created), a resource type (api-keys), a prefix "
    "ending in * (messaging-*), or * for every event"
)
URL_DESCRIPTION = (
    "https URL that receives the events; it must not resolve to a private, loopback, "
    "link-local, multicast or reserved address"
)

# The scheme rule of the URL check, for the schema (http is accepted too where the
# COURIER_WEBHOOK_ALLOW_PRIVATE setting allows private addresses).
HTTPS = "^[Hh][Tt][Tt][Pp][Ss]://"


def _optional_url(schema: dict[str, Any]) -> None:
    not_nullable(schema)
    schema["pattern"] = HTTPS


class WebhookRead(ReadAttributes):
    url: str
    event_types: list[str]
    active: bool
    description: str | None
    created_at: Timestamp
    last_modified_at: Timestamp
    created_by: str
    secret: str | None = Field(
        default=None,
        description="The signing secret: present only in the response that created the webhook",
    )


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


def _patterns(value: list[str] | None) -> list[str] | None:
    return None if value is None else check_patterns(value)


class WebhookCreate(WriteAttributes):
    url: str = Field(
        min_length=1,
        max_length=2048,
        description=URL_DESCRIPTION,
        json_schema_extra={"pattern": HTTPS},
    )
    event_types: list[Pattern] = Field(
        min_length=1, max_length=MAX_PATTERNS, description=EVENT_TYPES_DESCRIPTION
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=128,
        description="Signing secret (16 to 128 characters); generated when not given",
    )
    active: bool = True
    description: str | None = Field(default=None, max_length=1000)

    _check_patterns = field_validator("event_types")(_patterns)


class WebhookUpdate(WriteAttributes):
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description=URL_DESCRIPTION,
        json_schema_extra=_optional_url,
    )
    event_types: list[Pattern] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PATTERNS,
        description=EVENT_TYPES_DESCRIPTION,
        json_schema_extra=not_nullable,
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=128,
        description="A new signing secret (rotation); not shown again",
        json_schema_extra=not_nullable,
    )
    active: bool | None = Field(default=None, json_schema_extra=not_nullable)
    description: str | None = Field(default=None, max_length=1000)

    _not_null = field_validator("url", "event_types", "secret", "active")(_not_null)
    _check_patterns = field_validator("event_types")(_patterns)


class WebhookDeliveryRead(ReadAttributes):
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    attempt: int = Field(description="1 for the first attempt to deliver this event")
    succeeded: bool
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered")
    error: str | None
    duration_ms: int
    attempted_at: Timestamp
    next_attempt_at: Timestamp | None = Field(
        description="When the event will be tried again, if this attempt failed and it will"
    )
