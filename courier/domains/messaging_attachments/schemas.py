"""Attributes of messaging attachments, as they travel on the wire."""

from __future__ import annotations

import uuid

from pydantic import Field, StrictBool

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes
from courier.uploads.schemas import Filename, MediaType

TYPE_NAME = "messaging-attachments"


class AttachmentRead(ReadAttributes):
    content_size: int | None = Field(
        description="Size in bytes, measured once the upload is processed (null before)"
    )
    content_type: str | None = Field(
        description="The type detected from the file's bytes once processed (null before)"
    )
    created_at: Timestamp
    filename: str
    message_id: uuid.UUID
    removed: bool
    status: str = Field(
        description="pending (uploading), ready (verified, served), rejected (refused, deleted)",
        json_schema_extra={"enum": ["pending", "ready", "rejected"]},
    )
    thumbnail: str | None = Field(
        description="A short-lived signed link to a small preview (images only; null otherwise)"
    )
    url: str | None = Field(
        description="A short-lived signed download link (ready and not removed; null otherwise)"
    )


class AttachmentCreate(WriteAttributes):
    message_id: uuid.UUID
    filename: Filename
    content_type: MediaType | None = Field(
        default=None,
        description="The type the client believes the file has; refused early when it is not "
        "an accepted type, and never trusted: processing detects the real one",
    )


class AttachmentUpdate(WriteAttributes):
    removed: StrictBool = Field(
        description="true hides the file for good (it is kept for the audit, never served)"
    )
