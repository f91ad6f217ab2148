"""Attributes of notification templates and the body of ``validate-multicast-params``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from courier.core.types import Timestamp
from courier.domains.messaging_plugins.template import MAX_TEMPLATE_LENGTH
from courier.jsonapi.actions import ActionBody
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab

TEMPLATE_TYPE = "templates"
MAX_DATA_KEYS = 50
MAX_PUSH_DATA = 20
MAX_LOCALES = 50
DEFAULT_NEUTRAL_TEXT = "You have a new notification. Open the app to read it."

Text = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_TEMPLATE_LENGTH,
        description="Jinja2 over the data keys, individual, organization and now",
    ),
]
DataType = Literal["string", "number", "boolean", "date"]


class _Part(BaseModel):
    model_config = ConfigDict(
        alias_generator=kebab,
        populate_by_name=True,
        from_attributes=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class PushBody(_Part):
    """An ``apn``, ``fcm`` or ``web`` push: what a phone or browser shows."""

    title: Text | None = None
    body: Text
    category: str | None = Field(
        default=None, max_length=64, description="The push category (actions), not templated"
    )
    data: dict[str, Text] | None = Field(
        default=None, max_length=MAX_PUSH_DATA, description="Extra payload values, templated"
    )


class SmsBody(_Part):
    body: Text


class EmailBody(_Part):
    subject: Text
    text: Text
    html: Text | None = Field(default=None, description="Rendered with HTML escaping")


class LocaleVariant(_Part):
    """A locale's bodies; a channel it leaves out falls back (docs/TEMPLATES.md)."""

    apn: PushBody | None = None
    fcm: PushBody | None = None
    web: PushBody | None = None
    sms: SmsBody | None = None
    email: EmailBody | None = None
    neutral_text: str | None = Field(default=None, min_length=1, max_length=255)


RequiredData = Annotated[
    dict[str, DataType],
    Field(
        max_length=MAX_DATA_KEYS,
        description="The data keys the template requires, with their types; a key is "
        "^[a-z][a-z0-9_]{0,63}$ and not individual, organization or now",
    ),
]
Locales = Annotated[
    dict[str, LocaleVariant],
    Field(max_length=MAX_LOCALES, description="Per-locale variants by BCP 47 tag (en, es-MX)"),
]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Category = Annotated[str, Field(min_length=1, max_length=64)]
NeutralText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="What a sensitive template's pushes and texts say instead of its content",
    ),
]
DeepLink = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2000,
        description="Where a sensitive template's pushes and texts lead (templated; required "
        "when sensitive)",
    ),
]


class TemplateRead(ReadAttributes):
    name: str
    category: str | None
    apn: PushBody | None
    fcm: PushBody | None
    web: PushBody | None
    sms: SmsBody | None
    email: EmailBody | None
    required_data: dict[str, DataType]
    locales: dict[str, LocaleVariant]
    sensitive: bool
    neutral_text: str
    deep_link: str | None
    organization_id: uuid.UUID
    created_at: Timestamp
    created_by: uuid.UUID | None = Field(description="The API key that created the template")
    last_modified_at: Timestamp
    last_modified_by: uuid.UUID | None = Field(description="The API key that last changed it")


class TemplateCreate(WriteAttributes):
    name: Name
    category: Category | None = None
    apn: PushBody | None = None
    fcm: PushBody | None = None
    web: PushBody | None = None
    sms: SmsBody | None = None
    email: EmailBody | None = None
    required_data: RequiredData = Field(default_factory=dict)
    locales: Locales = Field(default_factory=dict)
    sensitive: bool = False
    neutral_text: NeutralText = DEFAULT_NEUTRAL_TEXT
    deep_link: DeepLink | None = None
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the default)"
    )


class TemplateUpdate(WriteAttributes):
    name: Name | None = None
    category: Category | None = None
    apn: PushBody | None = None
    fcm: PushBody | None = None
    web: PushBody | None = None
    sms: SmsBody | None = None
    email: EmailBody | None = None
    required_data: RequiredData | None = None
    locales: Locales | None = None
    sensitive: bool | None = None
    neutral_text: NeutralText | None = None
    deep_link: DeepLink | None = None
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (any other: 404)"
    )


class ValidateMulticastBody(ActionBody):
    """A template and its data, checked for one user without sending anything."""

    template_id: str = Field(
        min_length=1, max_length=255, description="The template's id, or its name"
    )
    data: dict[str, Any] = Field(description="The template's data: its required-data keys")
    individual_id: uuid.UUID | None = Field(
        default=None,
        description="The individual it is rendered for: the user's primary individual (the "
        "default) or one the user manages",
    )
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the default)"
    )


class ValidateMulticastRead(BaseModel):
    success: bool
    info: str = Field(
        description="What renders, or each missing or mistyped key and each text that fails"
    )
    rendered: dict[str, dict[str, Any]] | None = Field(
        default=None,
        description="On success, what each channel would carry for this user (apn, fcm, web, "
        "sms, email, and app: the full text the app shows), nothing sent",
    )
