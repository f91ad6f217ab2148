from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab

COLUMNS: dict[str, str] = {
    "message-count": "Messages the individual posted (not drafts, not removed)",
    "unread-count": "Messages not yet read in the individual's channels (archived excluded)",
    "last-contact-time": "Time of the newest message (not a draft, not removed) posted by the "
    "individual or in one of their channels, archived ones included (ISO 8601), or null",
    "channel-count": "Channels the individual subscribes to (archived excluded)",
}
MAX_ENTRIES = 1000

AggregationState = Literal["queued", "running", "completed", "failed"]


class AggregationEntry(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    column: str = Field(
        max_length=64,
        description="One of: " + ", ".join(COLUMNS),
        examples=list(COLUMNS)[:1],
        json_schema_extra={"enum": list(COLUMNS)},  # checked by the service, with its message
    )
    individual_id: uuid.UUID


class AggregationResult(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True)

    individual_id: uuid.UUID
    column: str
    value: Any = Field(description="An integer, or an ISO 8601 time (or null) for times")


class AggregationCreate(WriteAttributes):
    entries: list[AggregationEntry] = Field(
        min_length=1, max_length=MAX_ENTRIES, description="What to compute for whom"
    )


class AggregationRead(ReadAttributes):
    entries: list[AggregationEntry]
    state: AggregationState = Field(description="queued, running, completed or failed")
    results: list[AggregationResult] | None = Field(
        description="Once completed: one result per distinct entry, in the order asked"
    )
    error: str | None
    created_time: Timestamp
    completed_time: Timestamp | None
