from __future__ import annotations

from pydantic import Field

from courier.core.types import Timestamp, TimeZoneName
from courier.jsonapi.documents import ReadAttributes, WriteAttributes


class OrganizationRead(ReadAttributes):
    name: str
    display_name: str | None
    classification: str | None
    provider_type: str | None
    timezone: str
    last_modified_time: Timestamp = Field(validation_alias="last_modified_at")


class OrganizationCreate(WriteAttributes):
    name: str = Field(min_length=1, max_length=255)
    display_name: str | None = Field(default=None, max_length=255)
    classification: str | None = Field(default=None, max_length=255)
    provider_type: str | None = Field(default=None, max_length=255)
    timezone: TimeZoneName = "UTC"


class OrganizationUpdate(WriteAttributes):
    name: str = Field(default=None, min_length=1, max_length=255)  # type: ignore[assignment]
    display_name: str | None = Field(default=None, max_length=255)
    classification: str | None = Field(default=None, max_length=255)
    provider_type: str | None = Field(default=None, max_length=255)
    timezone: TimeZoneName = Field(default=None)  # type: ignore[assignment]
