from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from courier.core.time import utcnow
from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes


class ApiKeyRead(ReadAttributes):
    name: str
    role: str
    organization_id: uuid.UUID
    secret_prefix: str = Field(description="The first characters of the secret, to tell keys apart")
    created_at: Timestamp
    created_by: str
    expires_at: Timestamp | None
    revoked_at: Timestamp | None
    last_used_at: Timestamp | None = Field(description="Kept to the minute")
    secret: str | None = Field(
        default=None, description="The secret: present only in the response that created the key"
    )


class ApiKeyCreate(WriteAttributes):
    name: str = Field(min_length=1, max_length=255)
    role: Literal["admin", "staff", "readonly"]
    expires_at: Timestamp | None = Field(default=None, description="Must be in the future")
    organization_id: uuid.UUID | None = Field(
        default=None, description="Required with the master key; otherwise the caller's own"
    )

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= utcnow():
            raise ValueError("must be in the future")
        return value
