"""Attributes of bulk messages and bulk attachments, as they travel on the wire."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, WithJsonSchema

from courier.core.types import Timestamp
from courier.domains.messaging.schemas import MESSAGE_MAX_LENGTH, LenientBool
from courier.jsonapi.documents import ReadAttributes, WriteAttributes
from courier.uploads.schemas import Filename, MediaType

BULK_TYPE = "messaging-bulk-messages"
BULK_ATTACHMENT_TYPE = "messaging-bulk-attachments"

MAX_RECIPIENT_IDS = 10_000
MAX_GROUPS = 100
MAX_TRANSLATIONS = 50

_LOCALE_KEY = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,4}$")


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _translations(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_TRANSLATIONS:
        raise ValueError(f"may hold at most {MAX_TRANSLATIONS} languages")
    for key, text in value.items():
        if not _LOCALE_KEY.match(key) or len(key) > 35:
            raise ValueError(f"key {key!r} must be a language tag such as en_US or es")
        if len(text) > MESSAGE_MAX_LENGTH:
            raise ValueError(f"text of {key} must be at most {MESSAGE_MAX_LENGTH} characters")
    return value


Text = Annotated[str, Field(max_length=MESSAGE_MAX_LENGTH)]
Translations = Annotated[
    dict[str, str],
    AfterValidator(_translations),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_TRANSLATIONS,
            "propertyNames": {"pattern": _LOCALE_KEY.pattern, "maxLength": 35},
            "additionalProperties": {"type": "string", "maxLength": MESSAGE_MAX_LENGTH},
            "example": {"en_US": "Our clinic is closed on Monday.", "es_US": "..."},
        }
    ),
]
RecipientIds = Annotated[
    list[uuid.UUID], Field(max_length=MAX_RECIPIENT_IDS), AfterValidator(_unique)
]
GroupIds = Annotated[list[uuid.UUID], Field(max_length=MAX_GROUPS), AfterValidator(_unique)]


class SkippedRecipient(ReadAttributes):
    individual_id: uuid.UUID
    reason: str = Field(
        description="no-direct-channel, no-text or sender-removed",
        json_schema_extra={"enum": ["no-direct-channel", "no-text", "sender-removed"]},
    )
    detail: str = Field(description="Why, in words, and what would have worked")


class BulkMessageRead(ReadAttributes):
    auto_ack: bool = Field(description="Posting acknowledges the sender's unread messages")
    auto_create_channel: bool = Field(
        description="Recipients without a direct channel with the sender get one (else skipped)"
    )
    created_at: Timestamp
    created_by: uuid.UUID | None = Field(
        description="The individual who created it (individual-id of the call, else the sender)"
    )
    draft: bool
    individual_group_ids: list[uuid.UUID]
    individual_ids: list[uuid.UUID]
    last_modified_at: Timestamp
    message: str
    message_js: dict[str, str]
    organization_id: uuid.UUID
    posted_count: int = Field(description="Recipients who received it so far")
    posted_time: Timestamp | None = Field(description="When every recipient was handled")
    recipient_count: int = Field(description="Recipients once expanded (0 until planned)")
    sender_individual_group_id: uuid.UUID | None
    sender_individual_id: uuid.UUID | None
    skipped_count: int = Field(description="Recipients skipped (see skipped for why)")
    skipped: list[SkippedRecipient] = Field(
        default_factory=list, description="Each recipient skipped so far, and why"
    )
    status: str = Field(
        description="draft, queued (accepted), posting, posted",
        json_schema_extra={"enum": ["draft", "queued", "posting", "posted"]},
    )


class BulkMessageCreate(WriteAttributes):
    sender_individual_id: uuid.UUID | None = Field(
        default=None,
        description="The provider who sends it (default: individual-id of the call)",
    )
    sender_individual_group_id: uuid.UUID | None = Field(
        default=None, description="The care team the sender writes for (they must belong to it)"
    )
    individual_ids: RecipientIds = Field(default_factory=list)
    individual_group_ids: GroupIds = Field(default_factory=list)
    message: Text = ""
    message_js: Translations = Field(
        default_factory=dict, description="The text per language; recipients' locales choose"
    )
    auto_create_channel: LenientBool = Field(default=None, description="Default false")
    auto_ack: LenientBool = Field(default=None, description="Default true")
    draft: StrictBool = False


class BulkMessageUpdate(WriteAttributes):
    """Edit a draft's text, or send it (``draft: false``)."""

    draft: StrictBool = Field(default=None)  # type: ignore[assignment]
    message: Text = Field(default=None)  # type: ignore[assignment]
    message_js: Translations = Field(default=None)  # type: ignore[arg-type]


class BulkAttachmentRead(ReadAttributes):
    bulk_message_id: uuid.UUID
    content_size: int | None = Field(description="Size in bytes once processed (null before)")
    content_type: str | None = Field(description="Detected from the bytes once processed")
    created_at: Timestamp
    filename: str
    status: str = Field(
        description="pending (uploading), ready (verified), rejected (refused, deleted)",
        json_schema_extra={"enum": ["pending", "ready", "rejected"]},
    )
    thumbnail: str | None = Field(description="A short-lived signed link to a preview (images)")
    url: str | None = Field(description="A short-lived signed download link (ready only)")


class BulkAttachmentCreate(WriteAttributes):
    bulk_message_id: uuid.UUID
    filename: Filename
    content_type: MediaType | None = Field(
        default=None, description="The claimed type: refused early when not accepted"
    )
