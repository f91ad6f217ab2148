"""Attributes of bookmarks, badge counts and communication summaries, as they travel."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from courier.core.types import Timestamp, WholeNumber
from courier.domains.people.schemas import IdRef
from courier.jsonapi.documents import ReadAttributes, WriteAttributes

BOOKMARKS = "messaging-bookmarks"
BADGE_COUNTS = "badge-counts"
BULK_BADGE_COUNTS = "bulk-badge-counts"
SUMMARIES = "communication-summaries"

BULK_MAX_VALUES = 1000
BADGE_COUNT_MAX = 2_147_483_647  # the column is a 32-bit integer


# --- bookmarks -------------------------------------------------------------------------------


class BookmarkOwner(IdRef):
    type: Literal["individuals", "api-keys"] = Field(
        description="individuals: the individual's bookmark; api-keys: the organization's, "
        "made by this API key without naming an individual"
    )


class BookmarkRead(ReadAttributes):
    channel: IdRef
    message: IdRef
    created_by: BookmarkOwner = Field(
        description="Whose bookmark: an individual, or the API key that made the "
        "organization's bookmark"
    )
    created_at: Timestamp
    organization_id: uuid.UUID


class BookmarkCreate(WriteAttributes):
    channel_id: uuid.UUID
    message_id: uuid.UUID = Field(description="A posted message of that channel")
    allow_multi_message: StrictBool = Field(
        default=False,
        description="Keep the owner's other bookmarks in the channel; without it the new "
        "bookmark replaces them",
    )
    individual_id: uuid.UUID | None = Field(
        default=None,
        description="Whose bookmark: an individual token's own individual (the default); with "
        "an API key the individual named here or by the individual-id parameter, else "
        "nobody's: the organization's bookmark",
    )


# --- badge counts ----------------------------------------------------------------------------

BadgeType = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        examples=["appointment"],
        description="What the badge counts, e.g. appointment (letters, digits, . _ -)",
    ),
]


class BadgeCountRead(ReadAttributes):
    count: int
    individual_id: uuid.UUID
    type: str
    timestamp: Timestamp
    organization_id: uuid.UUID
    last_modified_at: Timestamp


class BadgeCountSet(WriteAttributes):
    individual_id: uuid.UUID
    type: BadgeType
    count: WholeNumber = Field(ge=0, le=BADGE_COUNT_MAX)
    timestamp: Timestamp | None = Field(
        default=None, description="The time the count refers to; the server's time by default"
    )
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's own organization (the only one it may name)"
    )


class BulkBadgeCountsAttributes(WriteAttributes):
    values: list[BadgeCountSet] = Field(min_length=1, max_length=BULK_MAX_VALUES)


class BulkBadgeCountsData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(examples=[BULK_BADGE_COUNTS])
    attributes: BulkBadgeCountsAttributes


class BulkBadgeCountsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: BulkBadgeCountsData
    meta: dict[str, Any] = Field(default_factory=dict)


# --- communication summaries -----------------------------------------------------------------


class SummarySenderCount(ReadAttributes):
    individual_id: str
    count: int


class SummaryMessageTypeCount(ReadAttributes):
    message_type: str
    count: int


class CommunicationSummaryRead(ReadAttributes):
    messages: int = Field(description="Unread messages across the individual's channels")
    notifications: int
    provider_messages: int = Field(description="Unread messages written by providers")
    video_channels: int
    message_types: list[SummaryMessageTypeCount]
    message_senders: list[SummarySenderCount] | None = Field(
        default=None, description="Unread messages per author (with include-senders=true)"
    )


class CommunicationSummaryDocument(BaseModel):
    summary: CommunicationSummaryRead
