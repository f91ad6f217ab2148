"""What every upload says on the wire: the file name and claimed type a client starts with,
the answer that tells it where to upload, and the body of ``process-upload``."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from courier.jsonapi.documents import kebab

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


class ProcessBody(BaseModel):
    """The seed sends ``{}``."""

    model_config = ConfigDict(extra="forbid")
