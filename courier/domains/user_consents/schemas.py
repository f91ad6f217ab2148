"""Attributes of SMS consents on the wire."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab


class ConsentMessages(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    initial: str = Field(min_length=1, max_length=1600, description="The request texted")
    accept: str | None = Field(default=None, max_length=1600, description="Sent on YES")
    invalid_response: str | None = Field(
        default=None, max_length=1600, description="Sent on anything unrecognised"
    )


class ConsentArgs(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    messages: ConsentMessages
    expires_in_hours: int | None = Field(
        default=None, ge=1, le=24 * 90, description="Pending requests expire after this"
    )


class ConsentHistoryItem(BaseModel):
    state: str
    reason: str
    at: str


class UserConsentRead(ReadAttributes):
    args: dict[str, Any]
    created_at: Timestamp
    last_modified_at: Timestamp
    organization_id: uuid.UUID
    state: Literal["pending", "accepted", "declined", "revoked", "expired"]
    target_id: str = Field(description="The phone the request was texted to")
    type: Literal["sms"]
    user_id: uuid.UUID
    history: list[ConsentHistoryItem] = Field(default_factory=list)


class UserConsentCreate(WriteAttributes):
    args: ConsentArgs
    organization_id: uuid.UUID | None = None
    type: Literal["sms"] = "sms"
    user_id: uuid.UUID
