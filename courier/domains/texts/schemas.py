"""Attributes of texts on the wire."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field, StrictBool

from courier.core.types import PhoneE164, Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes


class TextRead(ReadAttributes):
    account_id: uuid.UUID
    number_id: uuid.UUID
    callback_status_url: str | None
    callback_url: str | None
    created_at: Timestamp
    created_by: uuid.UUID | None
    error: str | None
    from_: str = Field(alias="from")
    last_modified_at: Timestamp
    message: str
    status: str = Field(
        description="accepted, queued, sending, sent, delivered, undelivered or failed"
    )
    target: str
    twilio_sid: str | None = Field(description="The carrier's id of the message")
    segments: int
    encoding: str = Field(description="gsm-7 or ucs-2")
    purpose: str = Field(description="outbound, keyword, consent, bridge or auto-reply")
    reply_count: int


class TextCreate(WriteAttributes):
    account_id: uuid.UUID | None = None
    callback_json: dict[str, Any] | None = Field(
        default=None, description="Echoed in every callback of this text"
    )
    callback_one_off: StrictBool = Field(
        default=False, description="Stop reporting replies after the first one"
    )
    callback_status_url: str | None = Field(default=None, max_length=2048)
    callback_url: str | None = Field(default=None, max_length=2048)
    expected_responses: list[str] | None = Field(default=None, max_length=50)
    message: str = Field(min_length=1, max_length=1600)
    number_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    target: PhoneE164
    user_id: uuid.UUID | None = Field(
        default=None, description="The staff user sending (their mapped number is used)"
    )
    urgent: StrictBool = Field(default=False, description="Send even inside quiet hours")
