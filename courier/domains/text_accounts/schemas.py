"""Attributes of text accounts, numbers, receive logs and user number maps, on the wire."""

from __future__ import annotations

import re
import uuid
from datetime import time
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, StrictBool, WithJsonSchema, field_validator

from courier.core.types import PhoneE164, Timestamp
from courier.jsonapi.actions import ActionBody
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab, not_nullable

UNKNOWN_NUMBER_ACTIONS = ("ignore", "auto-reply", "forward", "open-channel")


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


# What the schema says of the list items (the validators below give the friendly errors).
E164Prefix = Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^\+[1-9]\d{0,14}$"})]
CountryCode = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "description": "ISO 3166 alpha-2, any case",
            "examples": ["US"],
            "pattern": "^("
            + "|".join(
                "".join(f"[{c}{c.lower()}]" for c in code)
                for code in sorted(phonenumbers.SUPPORTED_REGIONS)
            )
            + ")$",
        }
    ),
]


class TelephonyConfig(BaseModel):
    """Which destinations the organization may text (seed 001: anything else is 403)."""

    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    allowed_countries: list[CountryCode] = Field(
        default_factory=lambda: ["US", "CA"],
        max_length=250,
        description="ISO 3166 alpha-2 countries whose numbers may be texted (default US, CA)",
    )
    allowed_prefixes: list[E164Prefix] = Field(
        default_factory=list,
        max_length=500,
        description="E.164 prefixes (e.g. +4420) allowed besides the countries",
    )
    blocked_prefixes: list[E164Prefix] = Field(
        default_factory=list,
        max_length=500,
        description="E.164 prefixes never texted, even in an allowed country (e.g. +1900)",
    )

    @field_validator("allowed_countries")
    @classmethod
    def _countries(cls, values: list[str]) -> list[str]:
        known = phonenumbers.SUPPORTED_REGIONS
        out = []
        for value in values:
            code = value.upper()
            if code not in known:
                raise ValueError(f"{value!r} is not an ISO 3166 country with a numbering plan")
            out.append(code)
        return list(dict.fromkeys(out))

    @field_validator("allowed_prefixes", "blocked_prefixes")
    @classmethod
    def _prefixes(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"\+[1-9]\d{0,14}", value):
                raise ValueError(f"{value!r} is not an E.164 prefix such as +1415")
        return list(dict.fromkeys(values))


_CLOCK_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"


def _clock(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(_CLOCK_PATTERN[1:-1], value):
        raise ValueError("must be a wall-clock time HH:MM such as 21:00")
    return value


class QuietHours(BaseModel):
    """Texts that are not urgent and fall due between ``start`` and ``end`` (the
    organization's time zone; the window may cross midnight) wait until ``end``."""

    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    start: str = Field(examples=["21:00"], json_schema_extra={"pattern": _CLOCK_PATTERN})
    end: str = Field(examples=["08:00"], json_schema_extra={"pattern": _CLOCK_PATTERN})

    _clock = field_validator("start", "end", mode="before")(_clock)

    def window(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)


class Credentials(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    auth_token: str = Field(min_length=8, max_length=128, description="The provider's secret")


OptOutScope = Literal["number", "organization"]


class TextAccountRead(ReadAttributes):
    allow_custom_number: bool
    created_at: Timestamp
    organization_id: uuid.UUID
    phone_number: str | None = Field(description="The account's default number")
    twilio_id: str | None = Field(description="The provider account id (Twilio account SID)")
    provider: str = Field(description="The SMS provider of the account: sandbox or twilio")
    telephony_config: TelephonyConfig
    quiet_hours: QuietHours | None
    opt_out_scope: OptOutScope
    help_text: str | None
    has_credentials: bool = Field(description="Provider credentials are stored (never shown)")
    callback_secret: str | None = Field(
        default=None,
        description="Key of the signatures on callback-url and callback-status-url posts: "
        "present only in the response that created the account",
    )


class TextAccountCreate(WriteAttributes):
    allow_custom_number: StrictBool = False
    organization_id: uuid.UUID | None = None
    phone_number: PhoneE164 | None = None
    twilio_id: str | None = Field(default=None, max_length=64)
    credentials: Credentials | None = Field(default=None, description="Stored encrypted")
    telephony_config: TelephonyConfig | None = None
    quiet_hours: QuietHours | None = None
    opt_out_scope: OptOutScope = "number"
    help_text: str | None = Field(default=None, max_length=640)


class TextAccountUpdate(WriteAttributes):
    allow_custom_number: StrictBool | None = Field(default=None, json_schema_extra=not_nullable)
    phone_number: PhoneE164 | None = None
    twilio_id: str | None = Field(default=None, max_length=64)
    credentials: Credentials | None = None
    telephony_config: TelephonyConfig | None = Field(default=None, json_schema_extra=not_nullable)
    quiet_hours: QuietHours | None = None
    opt_out_scope: OptOutScope | None = Field(default=None, json_schema_extra=not_nullable)
    help_text: str | None = Field(default=None, max_length=640)

    _not_null = field_validator("allow_custom_number", "opt_out_scope", "telephony_config")(
        _not_null
    )


class UnknownNumber(BaseModel):
    """What a text from a number nobody texted does (docs/SMS.md, "Unknown numbers")."""

    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    action: Literal["ignore", "auto-reply", "forward", "open-channel"] = "ignore"
    message: str | None = Field(
        default=None,
        max_length=640,
        description="The reply (auto-reply; open-channel: texted when a channel is opened)",
    )
    forward_to: PhoneE164 | None = Field(default=None, description="Where to forward (forward)")
    individual_group_id: uuid.UUID | None = Field(
        default=None,
        description="open-channel (required with it, else 422): the individual group of the "
        "organization whose members join each channel opened for a new individual (its leaders "
        "as admins); a group of no organization or another one: 404",
    )


class NumberEvents(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    unknown_number: UnknownNumber = Field(default_factory=UnknownNumber)


class TextNumberRead(ReadAttributes):
    account_id: uuid.UUID
    status: Literal["pending", "active", "failed"]
    error: str | None
    alert: bool
    capability_mms: bool
    capability_sms: bool
    capability_voice: bool
    created_at: Timestamp
    events: dict[str, Any]
    forward_to: str | None
    lata: str | None
    latitude: str | None
    logging: bool
    longitude: str | None
    notes: str | None
    phone_number: str | None
    postal_code: str | None
    rate_center: str | None
    region: str | None
    twilio_id: str | None = Field(default=None, description="The carrier's id of the number")
    rate_per_second: float | None = Field(
        description="Messages per second sent from this number (unset: the provider default)"
    )


class TextNumberCreate(WriteAttributes):
    account_id: uuid.UUID | None = Field(default=None, description="Default: the account")
    area_code: str = Field(pattern=r"^[2-9]\d{2}$", description="US/CA area code, e.g. 415")
    alert: StrictBool = False
    forward_to: PhoneE164 | None = None
    logging: StrictBool = False
    notes: str | None = Field(default=None, max_length=255)
    events: NumberEvents | None = None
    rate_per_second: float | None = Field(default=None, gt=0, le=1000)


class TextNumberUpdate(WriteAttributes):
    alert: StrictBool | None = Field(default=None, json_schema_extra=not_nullable)
    events: NumberEvents | None = Field(default=None, json_schema_extra=not_nullable)
    forward_to: PhoneE164 | None = None
    logging: StrictBool | None = Field(default=None, json_schema_extra=not_nullable)
    notes: str | None = Field(default=None, max_length=255)
    rate_per_second: float | None = Field(default=None, gt=0, le=1000)

    _not_null = field_validator("alert", "logging", "events")(_not_null)


class ClaimNumberBody(ActionBody):
    """The number to claim and its notes."""

    notes: str = Field(max_length=255)
    phone_number: PhoneE164 | None = Field(
        default=None,
        description="The number to claim (already in the provider account); default: the "
        "account's phone-number",
    )


class TextNumberLogRead(ReadAttributes):
    created_at: Timestamp
    log: str


class TextReceiveLogRead(ReadAttributes):
    created_at: Timestamp
    message: str
    sender: str
    sid: str
    to: str


class TextUserNumberMapRead(ReadAttributes):
    created_at: Timestamp
    number_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID


class TextUserNumberMapCreate(WriteAttributes):
    number_id: uuid.UUID
    organization_id: uuid.UUID | None = None
    user_id: uuid.UUID
