"""Attributes of app credentials, on the wire. ``data`` is written in full and read back
with its secrets left out (docs/PUSH.md, "Credentials")."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, not_nullable

CredentialType = Literal["apn", "fcm", "web"]
CREDENTIAL_TYPES: tuple[str, ...] = ("apn", "fcm", "web")

DATA_DESCRIPTION = (
    "apn: key (the .p8 PEM), key-id, team-id, topic; fcm: the service-account JSON (or under "
    "service-account), optionally project-id; web: private-key (VAPID; generated when absent), "
    "public-key, subject. Stored encrypted; read back without key, private-key or the "
    "service account's private key"
)


class AppCredentialRead(ReadAttributes):
    app_name: str | None
    archived: bool
    created_at: Timestamp
    data: dict[str, Any] = Field(
        description="The parts that are not secret: apn key-id, team-id, topic; fcm "
        "project-id, client-email; web public-key (the applicationServerKey), subject"
    )
    display_name: str | None
    last_modified_at: Timestamp
    organization_id: uuid.UUID
    store_id: str | None
    test_mode: bool
    type: CredentialType


class AppCredentialCreate(WriteAttributes):
    app_name: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] | None = Field(default=None, description=DATA_DESCRIPTION)
    display_name: str | None = Field(default=None, max_length=255)
    organization_id: uuid.UUID | None = None
    store_id: str | None = Field(default=None, max_length=255)
    test_mode: StrictBool = False
    type: CredentialType


class AppCredentialUpdate(WriteAttributes):
    app_name: str | None = Field(default=None, max_length=64)
    archived: StrictBool | None = Field(default=None, json_schema_extra=not_nullable)
    data: dict[str, Any] | None = Field(
        default=None, description="Replaces the data (checked as at creation)"
    )
    display_name: str | None = Field(default=None, max_length=255)
    organization_id: uuid.UUID | None = None
    store_id: str | None = Field(default=None, max_length=255)
    test_mode: StrictBool | None = Field(default=None, json_schema_extra=not_nullable)

    @field_validator("archived", "test_mode")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value
