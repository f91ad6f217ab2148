"""Attributes of messaging attachments, as they travel on the wire."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab

TYPE_NAME = "messaging-attachments"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)


def _filename(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        if "/" in value or "\\" in value or _CONTROL.search(value):
            raise ValueError("must be a plain file name, without paths or control characters")
    return value


def _media_type(value: Any) -> Any:
    if isinstance(value, str):
        # Parameters (charset=...) say nothing about what the file is: only the type counts.
        value = value.split(";", 1)[0].strip().lower()
        if not _MEDIA_TYPE.match(value):
            raise ValueError("must be a media type such as image/png")
    return value


# What the validator accepts, said in the schema: no path separators or control characters,
# not blank.
FILENAME_PATTERN = r"^[^/\\\x00-\x1f\x7f]*[^/\\\s\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]*$"
Filename = Annotated[
    str,
    BeforeValidator(_filename),
    Field(max_length=255, json_schema_extra={"pattern": FILENAME_PATTERN}),
]
MEDIA_TYPE_PATTERN = (
    r"^\s*[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\s*(;.*)?$"
)
MediaType = Annotated[
    str,
    BeforeValidator(_media_type),
    Field(max_length=255, json_schema_extra={"pattern": MEDIA_TYPE_PATTERN}),
]


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


class UploadStart(BaseModel):
    """What the client needs to upload the file itself (POST multipart/form-data)."""

    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True)

    id: uuid.UUID
    upload_url: str = Field(description="POST the form here")
    upload_data: dict[str, str] = Field(
        description="Form fields to send, in this order, before the file part (named 'file')"
    )
    expiration_time: int = Field(description="When the upload link expires (Unix seconds)")


class UploadStartDocument(BaseModel):
    data: UploadStart


class ProcessUploadBody(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    individual_id: uuid.UUID | None = Field(
        default=None, description="The individual on whose behalf the call is made"
    )
