from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes

PurgeState = Literal["queued", "running", "completed", "failed"]


class PurgeCreate(WriteAttributes):
    entity_type: Literal["individual"] = Field(description="What to purge: an individual")
    entity_id: str = Field(
        min_length=1, max_length=64, description="The id of the entity (an individual's UUID)"
    )
    archive: StrictBool = Field(
        default=False,
        description="Write every removed row to an archive file before removing it",
    )
    reference_id: str | None = Field(
        default=None, max_length=255, description="The caller's reference (e.g. a ticket number)"
    )
    request_id: str | None = Field(
        default=None, max_length=255, description="The caller's id of the erasure request"
    )


class PurgeRead(ReadAttributes):
    entity_type: str
    entity_id: str
    archive: bool
    reference_id: str | None
    request_id: str | None
    state: PurgeState = Field(description="queued, running, completed or failed")
    steps: list[str] = Field(description="The purge hooks, in the order they run")
    steps_done: list[str] = Field(description="The hooks that have finished")
    counts: dict[str, int] = Field(
        description="Rows removed (or anonymised: '.redacted', '.unlinked') per table"
    )
    archive_location: str | None = Field(
        description="The archive file (gzip-compressed JSON lines), once completed with archive"
    )
    error: str | None = Field(description="Why the purge failed, when it did")
    requested_by: str = Field(description="The API key id (or 'master') that asked for it")
    created_time: Timestamp
    started_time: Timestamp | None
    completed_time: Timestamp | None
