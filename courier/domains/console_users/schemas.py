from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes

USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{2,63}$"
PASSWORD_MIN = 12
PASSWORD_MAX = 1024


class ConsoleUserRead(ReadAttributes):
    username: str
    role: str = Field(description="admin, staff or readonly: what the console lets this person do")
    individual_id: uuid.UUID = Field(description="The provider individual this login is")
    organization_id: uuid.UUID
    created_at: Timestamp
    created_by: str
    revoked_at: Timestamp | None
    last_sign_in_at: Timestamp | None


class ConsoleUserCreate(WriteAttributes):
    username: str = Field(
        pattern=USERNAME,
        description="3 to 64 characters: letters, digits and . _ @ + -, starting with a letter "
        "or digit; unique across the installation (case-insensitive): the sign-in form names "
        "no organization",
    )
    password: str = Field(
        min_length=PASSWORD_MIN,
        max_length=PASSWORD_MAX,
        description=f"At least {PASSWORD_MIN} characters; only its scrypt hash is kept",
    )
    role: Literal["admin", "staff", "readonly"]
    individual_id: uuid.UUID = Field(
        description="A provider individual of the organization (unknown: 404; a participant: 422)"
    )
    organization_id: uuid.UUID | None = Field(default=None, description="The caller's own")


class ConsoleUserUpdate(WriteAttributes):
    role: Literal["admin", "staff", "readonly"] | None = None
    password: str | None = Field(
        default=None,
        min_length=PASSWORD_MIN,
        max_length=PASSWORD_MAX,
        description=f"A new password (at least {PASSWORD_MIN} characters): the login's open "
        "console sessions end",
    )
