"""Attributes of messaging channels and messages, and the bodies of their actions."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
)

from courier.core.types import Timestamp
from courier.jsonapi.actions import ActionBody
from courier.jsonapi.documents import ReadAttributes, WriteAttributes

CHANNEL_TYPE = "messaging-channels"
MESSAGE_TYPE = "messaging-messages"
PROFILE_TYPE = "individual-profiles"

ReactionType = Literal["dislike", "like", "lol", "love", "sad", "wow"]
REACTION_TYPES: tuple[str, ...] = ("dislike", "like", "lol", "love", "sad", "wow")
# How a subscriber is told about new messages: every message, only those that mention them,
# or never (they still see the unread count when they open the app).
NotifyLevel = Literal["all", "mentions", "none"]
NOTIFY_LEVELS: tuple[str, ...] = ("all", "mentions", "none")
Destination = Literal["email", "push", "sms"]

MESSAGE_MAX_LENGTH = 10_000
PREFERENCES_MAX_BYTES = 16 * 1024


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


IdList = Annotated[list[uuid.UUID], Field(max_length=5000), AfterValidator(_unique)]

_SUBSCRIPTION_TYPE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def _subscription_type(value: str) -> str:
    if not _SUBSCRIPTION_TYPE.match(value):
        raise ValueError("must be lower-case letters, digits and '-', at most 32 characters")
    return value


SubscriptionType = Annotated[
    str,
    AfterValidator(_subscription_type),
    WithJsonSchema({"type": "string", "example": "none", "pattern": _SUBSCRIPTION_TYPE.pattern}),
]


def _optional_text(value: Any) -> Any:
    """A label or name of only blanks is no name: stored as null."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


OptionalName = Annotated[
    Annotated[str, Field(max_length=255)] | None, BeforeValidator(_optional_text)
]


def _lenient_bool(value: Any) -> Any:
    # Seed 004 shows "auto-ack": "" in its sample: an empty string means "the default".
    if value == "":
        return None
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    return value


LenientBool = Annotated[
    StrictBool | None, BeforeValidator(_lenient_bool), WithJsonSchema({"type": "boolean"})
]


class EventSettings(BaseModel):
    """Whether the channel shows system events (someone joined, left, the channel changed)."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = True


# --- channels: read --------------------------------------------------------------------------


class IdRef(ReadAttributes):
    id: uuid.UUID


class BookmarkRef(ReadAttributes):
    id: uuid.UUID
    message_id: uuid.UUID


class OwnerRef(ReadAttributes):
    id: uuid.UUID
    type: Literal["organization"] = "organization"


class GroupIndividual(ReadAttributes):
    birth_date: date | None = Field(description="Withheld (null) from individual tokens")
    first_name: str
    id: uuid.UUID
    last_name: str
    name: str
    owner: OwnerRef
    preferred_name: str | None
    verified: bool = Field(description="Their user's email or phone number is verified")


class GroupLeader(ReadAttributes):
    first_name: str
    id: uuid.UUID
    last_name: str


class ChannelGroup(ReadAttributes):
    individual_ids: list[uuid.UUID]
    individuals: list[GroupIndividual]
    individuals_count: int
    leader_ids: list[uuid.UUID]
    leaders: list[GroupLeader]
    name: str
    organization_id: uuid.UUID


class LastMessage(ReadAttributes):
    id: uuid.UUID
    message: str = Field(description="Empty when the message was removed")
    posted_time: Timestamp | None
    removed: bool


class ChannelSubscriber(ReadAttributes):
    """A subscriber with their user's contact facts. An individual token sees the contact
    facts (email, phone, birth date, preferences) of itself only; others' are null."""

    admin: bool
    pinned: bool
    id: uuid.UUID
    first_name: str
    last_name: str
    preferred_name: str | None
    account_type: str
    auto_sign_up: bool | None
    birth_date: date | None
    communication_preferences: dict[str, Any] | None
    email: str | None
    email_verified: bool | None
    phone_number: str | None
    phone_number_unsubscribed: bool | None
    phone_number_verified: bool | None


class CallerPreferences(ReadAttributes):
    notify: NotifyLevel
    pinned: bool
    values: dict[str, Any]


class ChannelRead(ReadAttributes):
    """A channel as the calling individual sees it (``individual-id``, or the token's own)."""

    archived: bool
    bookmark: BookmarkRef | None = Field(
        description="The caller's newest bookmark here (an API key without individual-id: "
        "the organization's)"
    )
    caller_has_new_message: bool
    caller_new_message_count: int = Field(description="Messages the caller has not acked")
    caller_preferences: CallerPreferences | None = Field(
        description="The caller's own settings in this channel (null when not subscribed)"
    )
    can_enable_sms: bool = Field(
        description="The SMS path can be turned on: the channel's text number is active, it has "
        "one participant, with a phone, who accepted an SMS consent (user-consents)"
    )
    created_at: Timestamp
    created_by: uuid.UUID | None
    event_settings: EventSettings
    floating: bool
    group_provider_ack: bool
    individual_group: ChannelGroup | None
    individual_group_id: uuid.UUID | None
    label: str | None
    last_message: LastMessage | None
    last_modified_time: Timestamp
    name: str = Field(
        description="The group's name (use-group-name), else the channel's, else the "
        "organization's default-channel-title"
    )
    observation_id: uuid.UUID | None
    org_id: uuid.UUID
    owner_first_name: str | None
    owner_id: uuid.UUID | None
    owner_last_name: str | None
    subscribers: list[ChannelSubscriber]
    subscription_type: str
    text_number: IdRef | None = Field(
        description="The channel's text number, while it is a number of the organization"
    )
    text_number_id: uuid.UUID | None
    with_sms: bool = Field(
        description="The SMS path is on (set-sms) and can work (can-enable-sms): the "
        "participant's phone gets the providers' posts, and its replies are posted here"
    )
    sms_initial_message: str | None
    sms_initial_message_js: dict[str, str]
    sms_phi_safe: bool | None = Field(
        description="Texts of providers' posts carry a neutral line and a link instead of the "
        "message (set-sms phi-safe); null: the organization's sms-phi-safe preference"
    )


# --- channels: write -------------------------------------------------------------------------


class ChannelCreate(WriteAttributes):
    """Subscribers are the group's members (its leaders as channel admins) plus
    ``individual-ids``, plus the calling individual (``individual-id``) as an admin."""

    name: OptionalName = None
    label: OptionalName = None
    floating: StrictBool = False
    subscription_type: SubscriptionType = "none"
    event_settings: EventSettings = Field(default_factory=EventSettings)
    individual_group_id: uuid.UUID | None = None
    individual_ids: IdList = Field(default_factory=list)
    text_number_id: uuid.UUID | None = None
    observation_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the default)"
    )
    org_id: uuid.UUID | None = Field(
        default=None,
        description="The seed's response name of organization-id, accepted as well",
    )


class PatchOperation(BaseModel):
    """One JSON-Patch operation (RFC 6902) on an attribute path such as ``/name``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    op: str = Field(examples=["replace"], description="add, remove, replace, move, copy or test")
    path: str = Field(examples=["/name"])
    value: Any = None
    from_: str | None = Field(
        default=None, alias="from", description="move and copy: where the value comes from"
    )


class ChannelPatchData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(examples=[CHANNEL_TYPE])
    id: str
    attributes: list[PatchOperation] = Field(max_length=100)


class ChannelPatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: ChannelPatchData
    meta: dict[str, Any] = Field(default_factory=dict)


class SubscribersBody(ActionBody):
    individual_ids: Annotated[IdList, Field(min_length=1)]


class PreferenceItem(ActionBody):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9-]*$")]
    value: Any = None


class PreferencesBody(ActionBody):
    """``notify`` (all, mentions, none) and ``pinned`` (boolean) are the subscriber's own
    settings; any other name keeps a JSON value among the subscriber's preferences."""

    individual_id: uuid.UUID | None = None
    values: Annotated[list[PreferenceItem], Field(min_length=1, max_length=50)]


_LOCALE_MESSAGE_KEY = r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,2}$"


def _locale_messages(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    for key, text in value.items():
        if not re.match(_LOCALE_MESSAGE_KEY, key):
            raise ValueError(f"key {key!r} must be a locale such as en_US")
        if not isinstance(text, str) or len(text) > 1024:
            raise ValueError(f"{key} must be a string of at most 1024 characters")
    if len(orjson.dumps(value)) > PREFERENCES_MAX_BYTES:
        raise ValueError("must be at most 16 KiB of JSON")
    return value


class SmsBody(ActionBody):
    active: StrictBool
    phi_safe: StrictBool | None = Field(
        default=None,
        description="Text a neutral line and a link (the organization's sms-message-link) "
        "instead of the content of providers' posts; null: the organization's sms-phi-safe",
    )
    initial_message: Annotated[str, Field(max_length=1024)] | None = None
    initial_message_js: (
        Annotated[
            dict[str, str],
            BeforeValidator(_locale_messages),
            Field(json_schema_extra={"propertyNames": {"pattern": _LOCALE_MESSAGE_KEY}}),
        ]
        | None
    ) = None


class ProfileRead(ReadAttributes):
    photo: str | None


class ProfileResource(BaseModel):
    id: uuid.UUID
    type: Literal["individual-profiles"] = "individual-profiles"
    attributes: ProfileRead


class ProfileDocument(BaseModel):
    """``get-profile``: an individual's profile as seen in a channel."""

    data: ProfileResource
    meta: dict[str, Any] = Field(default_factory=dict)


# --- messages --------------------------------------------------------------------------------


class Attachment(ReadAttributes):
    content_size: int
    content_type: str
    filename: str
    id: uuid.UUID
    removed: bool
    thumbnail: str | None = Field(description="Short-lived signed link (with thumbnail=true)")
    url: str | None = Field(default=None, description="Short-lived signed download link")


class Reaction(ReadAttributes):
    first_name: str | None
    individual_id: uuid.UUID
    last_name: str | None
    reaction_type: ReactionType
    user_name: str | None


class ReadReceipt(ReadAttributes):
    ack_time: Timestamp | None
    ack_user_time: Timestamp | None
    individual_first_name: str | None
    individual_id: uuid.UUID
    individual_last_name: str | None


class MessageRead(ReadAttributes):
    """A message as the calling individual sees it. A removed message keeps its place but
    shows no text (``message: ""``, no sentiment, no phrases) to anyone."""

    ack: bool = Field(description="The caller has acknowledged this message")
    analyzed: bool = Field(
        description="Sentiment and phrases are computed for the current text. They are computed "
        "by a job moments after a post or an edit (the messaging-messages.analyzed event says "
        "when); until then this is false, sentiment is null and phrases are {}."
    )
    attachments: list[Attachment]
    channel_id: uuid.UUID
    destination: dict[str, Any]
    draft: bool
    first_name: str | None
    individual_id: uuid.UUID | None
    last_modified_time: Timestamp
    last_name: str | None
    message: str
    phrases: dict[str, Any] = Field(description="Key phrases (include-phrases=true), else {}")
    posted_time: Timestamp | None
    preferred_name: str | None
    reactions: list[Reaction]
    read_receipts: list[ReadReceipt] = Field(
        description="Subscribers (not the author) who have read it (include-read-receipts)"
    )
    removed: bool
    sentiment: Literal["positive", "neutral", "negative"] | None
    seq: int | None = Field(description="Position in the channel (null while a draft)")
    source: str | None
    user_id: uuid.UUID | None
    user_name: str | None
    user_type: str | None


Text = Annotated[str, Field(max_length=MESSAGE_MAX_LENGTH)]


class MessageCreate(WriteAttributes):
    channel_id: uuid.UUID
    individual_id: uuid.UUID | None = Field(
        default=None, description="The author; required with an API key"
    )
    message: Text = ""
    draft: StrictBool = False
    auto_ack: LenientBool = Field(
        default=None,
        description="Default true: posting acknowledges everything before the new message for "
        "its author. False: the author's unread messages stay unread.",
    )
    include_destinations: Annotated[list[Destination], Field(max_length=3)] = Field(
        default_factory=list
    )


class MessageUpdate(WriteAttributes):
    """Edit the text, post a draft (``draft: false``), or remove (``removed: true``)."""

    individual_id: uuid.UUID | None = Field(
        default=None, description="Who makes the change: the author"
    )
    message: Text = Field(default=None)  # type: ignore[assignment]
    draft: StrictBool = Field(default=None)  # type: ignore[assignment]
    removed: StrictBool = Field(default=None)  # type: ignore[assignment]


class AckBody(ActionBody):
    individual_id: uuid.UUID | None = None
    allow_past: StrictBool = False
    ack_user_time: Timestamp | None = Field(
        default=None, description="When the reader saw it, by their device's clock"
    )


class ReactionBody(ActionBody):
    individual_id: uuid.UUID | None = None
    reaction_type: ReactionType


class ReceiptsRead(BaseModel):
    read: list[ReadReceipt]
    unread: list[ReadReceipt]
