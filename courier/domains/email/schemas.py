"""Attributes of user emails as they travel on the wire (seed 004, ``/v1/user-emails/``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictBool

from courier.core.types import Timestamp
from courier.domains.people.schemas import EmailAddress
from courier.jsonapi.actions import ActionBody
from courier.jsonapi.documents import ReadAttributes, WriteAttributes
from courier.models.email import EmailStatus
from courier.uploads.schemas import Filename, MediaType

TYPE_NAME = "user-emails"
ATTACHMENT_TYPE_NAME = "user-email-attachments"
MAX_RECIPIENTS = 50
MAX_BODY = 512 * 1024  # characters of text or HTML


def _one_or_many(value: Any) -> Any:
    # The seed's sample gives one address as a string; a list names several.
    return [value] if isinstance(value, str) else value


def _subject(value: Any) -> Any:
    if isinstance(value, str):
        if "\r" in value or "\n" in value:
            raise ValueError("must be a single line")
        if not value.strip():
            raise ValueError("must not be blank")
    return value


Recipients = Annotated[
    list[EmailAddress],
    BeforeValidator(_one_or_many),
    Field(min_length=1, max_length=MAX_RECIPIENTS),
]
Subject = Annotated[
    str,
    BeforeValidator(_subject),
    Field(max_length=900, json_schema_extra={"pattern": r"^[^\r\n]*\S[^\r\n]*$"}),
]


class EmailRead(ReadAttributes):
    created_at: Timestamp
    created_by: str = Field(description="The API key or individual that created it")
    individual_id: uuid.UUID | None
    last_modified_at: Timestamp
    message: str | None = Field(description="Plain-text body")
    message_html: str | None = Field(description="HTML body (sanitised when sent)")
    result: str | None = Field(
        description="The SMTP server's reply once sent, or why it failed (bounce included)"
    )
    sender_organization_id: uuid.UUID
    status: str = Field(
        description="draft → queued → sending → sent | failed",
        json_schema_extra={"enum": [s.value for s in EmailStatus]},
    )
    subject: str
    task_id: str | None = Field(description="The job that sends it (GET /v1/jobs/{id}/)")
    to: list[str]
    user_id: uuid.UUID | None


class EmailCreate(WriteAttributes):
    auto_send: StrictBool = Field(
        default=False, description="Send at once (else the email stays a draft until send)"
    )
    individual_id: uuid.UUID | None = Field(
        default=None,
        description="The individual the email concerns (an individual token: its own)",
    )
    message: str | None = Field(default=None, max_length=MAX_BODY)
    message_html: str | None = Field(default=None, max_length=MAX_BODY)
    sender_organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the only one accepted)"
    )
    subject: Subject
    to: Recipients = Field(description="One address, or a list of up to 50")
    user_id: uuid.UUID | None = Field(default=None, description="The user who writes it")


# --- attachments (``/v1/user-email-attachments/``) ---------------------------------------------


class AttachmentRead(ReadAttributes):
    content_type: str | None = Field(
        description="The type detected from the file's bytes once processed (before: claimed)"
    )
    created_at: Timestamp
    download_link: str | None = Field(
        description="A short-lived signed download link (with-link=true, ready files only)"
    )
    email_id: uuid.UUID
    filename: str
    ready_to_use: bool = Field(description="Processed and accepted: it travels with the email")
    size: int | None = Field(description="Bytes, measured when processed (null before)")
    status: str = Field(json_schema_extra={"enum": ["pending", "ready", "rejected"]})


class AttachmentStart(ActionBody):
    email_id: uuid.UUID = Field(description="The draft email the file is attached to")
    filename: Filename
    content_type: MediaType | None = Field(
        default=None,
        description="The type the client believes the file has; refused early when it is not "
        "an accepted type, never trusted: processing detects the real one",
    )
