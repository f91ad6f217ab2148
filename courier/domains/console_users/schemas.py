from __future__ import annotations

import re
import uuid
from typing import Literal

from pydantic import Field, field_validator

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{2,63}$")
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


def _username(value: str) -> str:
    if not USERNAME.match(value):
        raise ValueError(
            "must be 3 to 64 characters: letters, digits and . _ @ + -, starting with a letter "
            "or digit"
        )
    return value


def _password(value: str) -> str:
    if len(value) < PASSWORD_MIN:
        raise ValueError(f"must be at least {PASSWORD_MIN} characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class ConsoleUserCreate(WriteAttributes):
    username: str = Field(
        description="Unique across the installation (case-insensitive): the sign-in form names "
        "no organization"
    )
    password: str = Field(
        max_length=PASSWORD_MAX,
        description=f"At least {PASSWORD_MIN} characters; only its scrypt hash is kept",
    )
    role: Literal["admin", "staff", "readonly"]
    individual_id: uuid.UUID = Field(
        description="A provider individual (not a participant) of the organization"
    )
    organization_id: uuid.UUID | None = Field(default=None, description="The caller's own")

    @field_validator("username")
    @classmethod
    def _check_username(cls, value: str) -> str:
        return _username(value)

    @field_validator("password")
    @classmethod
    def _check_password(cls, value: str) -> str:
        return _password(value)


class ConsoleUserUpdate(WriteAttributes):
    role: Literal["admin", "staff", "readonly"] | None = None
    password: str | None = Field(
        default=None,
        max_length=PASSWORD_MAX,
        description="A new password: the login's open console sessions end",
    )

    @field_validator("password")
    @classmethod
    def _check_password(cls, value: str | None) -> str | None:
        return None if value is None else _password(value)
