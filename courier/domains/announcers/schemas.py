"""Attributes of announcers: the rule's event, type and ``args`` (docs/ANNOUNCERS.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from courier.core.types import Timestamp
from courier.domains.announcers.triggers import EVENT_NAMES, RECIPIENT_KINDS
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab, not_nullable

ANNOUNCER_TYPE = "announcers"
ANNOUNCER_TYPES = ("notification",)
MAX_NAMED = 100  # individual-ids, user-ids
MAX_DATA_KEYS = 50

EventName = Annotated[
    str,
    Field(
        max_length=64,
        description="The event the rule acts on: " + ", ".join(EVENT_NAMES),
        json_schema_extra={"enum": list(EVENT_NAMES)},
    ),
]
AnnouncerKind = Annotated[
    str,
    Field(
        max_length=32,
        description="What the rule does: notification (a user notification rendered from "
        "args.template-id, for each recipient)",
        json_schema_extra={"enum": list(ANNOUNCER_TYPES)},
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=255)]
RecipientKind = Literal["subject", "group-members", "group-leaders", "channel-subscribers"]
assert set(RecipientKind.__args__) == set(RECIPIENT_KINDS)  # type: ignore[attr-defined]


def _check_event(value: str | None) -> str | None:
    if value is not None and value not in EVENT_NAMES:
        raise ValueError("must be one of " + ", ".join(EVENT_NAMES))
    return value


def _check_type(value: str | None) -> str | None:
    if value is not None and value not in ANNOUNCER_TYPES:
        raise ValueError("must be one of " + ", ".join(ANNOUNCER_TYPES))
    return value


def _distinct(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


class _Part(BaseModel):
    model_config = ConfigDict(
        alias_generator=kebab,
        populate_by_name=True,
        from_attributes=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class AnnouncerFilter(_Part):
    """Which events of the type the rule acts on; each key is offered by some events only."""

    individual_group_id: uuid.UUID | None = Field(
        default=None,
        description="Only events of this individual group: the group an individual was shared "
        "with (individual-shared), the group of the message's channel (message-posted)",
    )
    channel_id: uuid.UUID | None = Field(
        default=None, description="Only messages posted in this channel (message-posted)"
    )


class AnnouncerArgs(_Part):
    """What the rule sends, and to whom. At least one recipient: a ``recipients`` kind, an
    individual or a user."""

    template_id: str = Field(
        min_length=1,
        max_length=255,
        description="The template sent: its id, or its name when creating (shown as its id)",
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_DATA_KEYS,
        description="The template's data, the same for every notification: each key of its "
        "required-data, with its type",
    )
    recipients: list[RecipientKind] = Field(
        default_factory=list,
        max_length=4,
        description="Who the event reaches: subject (the individuals the event is about), "
        "group-members and group-leaders (of the event's group), channel-subscribers (of the "
        "message's channel); each event offers some of them. The subject is never counted "
        "among the others",
    )
    individual_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=MAX_NAMED, description="Individuals always notified"
    )
    user_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_NAMED,
        description="Users always notified (through their primary individual)",
    )
    filter: AnnouncerFilter = Field(
        default_factory=AnnouncerFilter,
        description="Only events that match every key given",
    )

    _distinct = field_validator("recipients", "individual_ids", "user_ids")(_distinct)


class AnnouncerRead(ReadAttributes):
    name: str
    event: str = Field(description="The event the rule acts on: " + ", ".join(EVENT_NAMES))
    type: str
    args: AnnouncerArgs
    active: bool = Field(description="An inactive rule acts on no event")
    organization_id: uuid.UUID
    created_at: Timestamp
    created_by: uuid.UUID | None = Field(description="The API key that created the announcer")
    last_modified_at: Timestamp
    last_modified_by: uuid.UUID | None = Field(description="The API key that last changed it")


class AnnouncerCreate(WriteAttributes):
    name: Name
    event: EventName
    type: AnnouncerKind = "notification"
    args: AnnouncerArgs
    active: bool = True

    _event = field_validator("event")(_check_event)
    _type = field_validator("type")(_check_type)


class AnnouncerUpdate(WriteAttributes):
    name: Name | None = Field(default=None, json_schema_extra=not_nullable)
    event: EventName | None = Field(default=None, json_schema_extra=not_nullable)
    type: AnnouncerKind | None = Field(default=None, json_schema_extra=not_nullable)
    args: AnnouncerArgs | None = Field(
        default=None,
        description="Replaces the rule's args (checked against its event)",
        json_schema_extra=not_nullable,
    )
    active: bool | None = Field(default=None, json_schema_extra=not_nullable)

    _event = field_validator("event")(_check_event)
    _type = field_validator("type")(_check_type)

    @field_validator("name", "event", "type", "args", "active", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value
