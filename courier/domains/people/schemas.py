"""Attributes of individuals, users and individual groups, as they travel on the wire."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any, Literal

import orjson
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StrictBool, WithJsonSchema

from courier.core.time import utcnow
from courier.core.types import Extended, PhoneE164, Timestamp, TimeZoneName
from courier.jsonapi.documents import ReadAttributes, WriteAttributes

# --- field types -----------------------------------------------------------------------------


def _name(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
    return value


Name = Annotated[
    str, BeforeValidator(_name), Field(max_length=255, json_schema_extra={"pattern": r"\S"})
]


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _birth_date(value: Any) -> date:
    # Only the plain calendar date: a timestamp would make the day depend on a time zone.
    if isinstance(value, date):
        parsed = value
    elif isinstance(value, str) and _DATE.match(value):
        try:
            parsed = date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError("must be a date such as 2019-08-24") from exc
    else:
        raise ValueError("must be a date such as 2019-08-24 (no time, no offset)")
    if parsed > utcnow().date():
        raise ValueError("must not be in the future")
    return parsed


BirthDate = Annotated[
    date,
    BeforeValidator(_birth_date),
    WithJsonSchema({"type": "string", "format": "date", "example": "2019-08-24"}),
]


def check_email(value: str) -> str:
    if "<" in value or ">" in value:
        raise ValueError("must be a bare email address such as jane@example.com")
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError("must be an email address such as jane@example.com") from exc
    normalized: str = checked.normalized
    return normalized


EmailAddress = Annotated[
    str,
    Field(max_length=320),
    AfterValidator(check_email),
    WithJsonSchema({"type": "string", "format": "email", "example": "jane@example.com"}),
]

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,4}$")


def _locale(value: str) -> str:
    if not _LOCALE.match(value):
        raise ValueError("must be a language tag such as en or en-US")
    return value.replace("_", "-")


Locale = Annotated[
    str, AfterValidator(_locale), WithJsonSchema({"type": "string", "example": "en-US"})
]

_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)


def _photo(value: str) -> str:
    if not _URL.match(value):
        raise ValueError("must be an http or https URL")
    return value


PhotoUrl = Annotated[
    str,
    Field(max_length=2048),
    AfterValidator(_photo),
    WithJsonSchema({"type": "string", "format": "uri", "example": "https://example.com/a.png"}),
]


def _unique(values: list[Any]) -> list[Any]:
    """Lists of ids and channels are sets: a repeated entry is ignored, order is kept."""
    return list(dict.fromkeys(values))


IdList = Annotated[list[uuid.UUID], Field(max_length=5000), AfterValidator(_unique)]

NotificationChannel = Literal["email", "sms", "push", "voice", "web"]
NotificationList = Annotated[
    list[NotificationChannel], Field(max_length=5), AfterValidator(_unique)
]

CHANNEL_PREFERENCE_KEYS = ("email", "mobile", "sms", "voice", "web")
PREFERENCES_MAX_BYTES = 16 * 1024


def _preferences(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    unknown = sorted(set(value) - set(CHANNEL_PREFERENCE_KEYS))
    if unknown:
        raise ValueError(
            f"has unknown channel(s) {', '.join(unknown)}; use {', '.join(CHANNEL_PREFERENCE_KEYS)}"
        )
    for channel, settings in value.items():
        if not isinstance(settings, dict):
            raise ValueError(f"{channel} must be a JSON object")
    if len(orjson.dumps(value)) > PREFERENCES_MAX_BYTES:
        raise ValueError("must be at most 16 KiB of JSON")
    return value


CommunicationPreferences = Annotated[
    dict[str, Any],
    BeforeValidator(_preferences),
    WithJsonSchema(
        {
            "type": "object",
            "description": "Per channel (email, mobile, sms, voice, web) settings objects",
            "additionalProperties": {"type": "object"},
        }
    ),
]

AccountType = Literal["provider", "participant"]
SmsMode = Literal["disabled", "enabled"]
UserState = Literal["active", "invited", "archived"]


class IdRef(BaseModel):
    id: uuid.UUID


# --- individuals -----------------------------------------------------------------------------


class IndividualRead(ReadAttributes):
    first_name: str
    last_name: str
    preferred_name: str | None
    birth_date: date | None
    account_type: AccountType
    owner_id: uuid.UUID | None
    photo: str | None
    email: str | None
    phone: str | None
    locale: str | None
    tz: str | None
    extended: dict[str, Any]
    last_modified_time: Timestamp = Field(validation_alias="last_modified_at")


class IndividualCreate(WriteAttributes):
    first_name: Name
    last_name: Name
    preferred_name: Name | None = None
    birth_date: BirthDate | None = None
    account_type: AccountType = "participant"
    owner_id: uuid.UUID | None = Field(
        default=None, description="A user of the organization who manages this individual"
    )
    photo: PhotoUrl | None = None
    email: EmailAddress | None = None
    phone: PhoneE164 | None = None
    locale: Locale | None = None
    tz: TimeZoneName | None = None
    extended: Extended = Field(default_factory=dict)


class IndividualUpdate(WriteAttributes):
    """Only the attributes sent change; ``extended``, when sent, replaces the whole object."""

    first_name: Name = Field(default=None)  # type: ignore[assignment]
    last_name: Name = Field(default=None)  # type: ignore[assignment]
    preferred_name: Name | None = None
    birth_date: BirthDate | None = None
    account_type: AccountType = Field(default=None)  # type: ignore[arg-type]
    owner_id: uuid.UUID | None = None
    photo: PhotoUrl | None = None
    email: EmailAddress | None = None
    phone: PhoneE164 | None = None
    locale: Locale | None = None
    tz: TimeZoneName | None = None
    extended: Extended = Field(default=None)  # type: ignore[arg-type]


# --- users -----------------------------------------------------------------------------------


class UserRead(ReadAttributes):
    username: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    locale: str | None
    tz: str | None
    notifications: list[str]
    sms_mode: SmsMode
    primary_individual_id: uuid.UUID | None
    state: UserState
    email_verified: bool
    phone_verified: bool
    phone_unsubscribed: bool
    auto_sign_up: bool
    communication_preferences: dict[str, Any]
    locale_explicit: bool
    tz_explicit: bool
    last_sync_time: Timestamp | None


class UserCreate(WriteAttributes):
    username: Name
    email: EmailAddress | None = None
    phone: PhoneE164 | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    locale: Locale | None = None
    tz: TimeZoneName | None = None
    notifications: NotificationList = Field(default_factory=list)
    sms_mode: SmsMode = "disabled"
    primary_individual_id: uuid.UUID | None = Field(
        default=None, description="An individual of the same organization"
    )
    state: UserState = "active"
    email_verified: StrictBool = False
    phone_verified: StrictBool = False
    phone_unsubscribed: StrictBool = False
    auto_sign_up: StrictBool = False
    communication_preferences: CommunicationPreferences = Field(default_factory=dict)
    locale_explicit: StrictBool = False
    tz_explicit: StrictBool = False
    last_sync_time: Timestamp | None = None


class UserUpdate(WriteAttributes):
    """Changing ``email`` or ``phone`` clears its verification (and a phone's unsubscription)
    unless the same request sets those flags: they described the old address."""

    username: Name = Field(default=None)  # type: ignore[assignment]
    email: EmailAddress | None = None
    phone: PhoneE164 | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    locale: Locale | None = None
    tz: TimeZoneName | None = None
    notifications: NotificationList = Field(default=None)  # type: ignore[arg-type]
    sms_mode: SmsMode = Field(default=None)  # type: ignore[arg-type]
    primary_individual_id: uuid.UUID | None = None
    state: UserState = Field(default=None)  # type: ignore[arg-type]
    email_verified: StrictBool = Field(default=None)  # type: ignore[assignment]
    phone_verified: StrictBool = Field(default=None)  # type: ignore[assignment]
    phone_unsubscribed: StrictBool = Field(default=None)  # type: ignore[assignment]
    auto_sign_up: StrictBool = Field(default=None)  # type: ignore[assignment]
    communication_preferences: CommunicationPreferences = Field(default=None)  # type: ignore[arg-type]
    locale_explicit: StrictBool = Field(default=None)  # type: ignore[assignment]
    tz_explicit: StrictBool = Field(default=None)  # type: ignore[assignment]
    last_sync_time: Timestamp | None = None


# --- individual groups -----------------------------------------------------------------------


class IndividualGroupRead(ReadAttributes):
    name: str
    organization_id: uuid.UUID
    parent_id: uuid.UUID | None
    individuals: list[IdRef] = Field(description="Members, ordered by id")
    individual_ids: list[uuid.UUID]
    individuals_count: int
    leaders: list[IdRef] = Field(description="Leaders (always members too), ordered by id")
    leader_ids: list[uuid.UUID]
    last_sync_time: Timestamp | None
    last_modified_time: Timestamp


class IndividualGroupCreate(WriteAttributes):
    name: Name
    parent_id: uuid.UUID | None = Field(default=None, description="A group of the organization")
    individual_ids: IdList = Field(default_factory=list)
    leader_ids: IdList = Field(
        default_factory=list, description="Leaders; each must also be in individual-ids"
    )
    last_sync_time: Timestamp | None = None


class IndividualGroupUpdate(WriteAttributes):
    """``individual-ids`` and ``leader-ids``, when sent, replace the whole set."""

    name: Name = Field(default=None)  # type: ignore[assignment]
    parent_id: uuid.UUID | None = None
    individual_ids: IdList = Field(default=None)  # type: ignore[arg-type]
    leader_ids: IdList = Field(default=None)  # type: ignore[arg-type]
    last_sync_time: Timestamp | None = None
