"""Attributes of multicasts, their recipients, and the bodies of the one-recipient routes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from courier.core.types import Timestamp
from courier.domains.messaging.schemas import ChannelGroup
from courier.jsonapi.actions import ActionBody
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab

MULTICAST_TYPE = "multicasts"
USER_MULTICAST_TYPE = "user-multicasts"
RECIPIENT_TYPE = "multicast-recipients"

MAX_IDS = 10_000
MAX_GROUPS = 100

# Who a multicast reaches (filter-value: what each type takes).
ALL_PARTICIPANTS = "all-participants"  # every participant of the organization: {}
ALL_PROVIDERS = "all-providers"  # every provider: {}
ALL_INDIVIDUALS = "all-individuals"  # everyone: {}
GROUP = "group"  # {"individual-group-id": id}: the group's members
INDIVIDUALS = "individuals"  # {"individual-ids": [...], "individual-group-ids": [...]}
USERS = "users"  # {"user-ids": [...]}: each user's primary individual
FILTER_TYPES: tuple[str, ...] = (
    ALL_PARTICIPANTS,
    ALL_PROVIDERS,
    ALL_INDIVIDUALS,
    GROUP,
    INDIVIDUALS,
    USERS,
)
FilterType = Literal[
    "all-participants", "all-providers", "all-individuals", "group", "individuals", "users"
]
STATUSES: tuple[str, ...] = ("queued", "sending", "completed", "cancelled")
Status = Literal["queued", "sending", "completed", "cancelled"]
RECIPIENT_STATES: tuple[str, ...] = ("pending", "delivered", "skipped")

# The reasons a recipient was not notified (the fan-out's skip reasons, and notify's NotSent).
SKIP_REASONS = {
    "cancelled": "the multicast was cancelled before this recipient was reached",
    "no-such-individual": "the individual no longer exists",
    "no-channel": "the recipient has no device, phone or email the template can reach",
}


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


TemplateRef = Annotated[
    str, Field(min_length=1, max_length=255, description="The template's id, or its name")
]
TemplateData = Annotated[
    dict[str, Any],
    Field(description="The template's data: its required-data keys (same for every recipient)"),
]
Ids = Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_IDS), AfterValidator(_unique)]
GroupIds = Annotated[
    list[uuid.UUID], Field(min_length=1, max_length=MAX_GROUPS), AfterValidator(_unique)
]


class MulticastRead(ReadAttributes):
    created_at: Timestamp
    created_by: uuid.UUID | None = Field(description="The API key that sent it")
    data: dict[str, Any] = Field(description="The template data it was sent with")
    template_args: dict[str, Any] = Field(description="The template data (the seed's name)")
    template_id: str = Field(description="The template, as the request named it (id or name)")
    filter_type: FilterType
    filter_value: dict[str, Any]
    individual_group_id: uuid.UUID | None = Field(
        description="The group it was sent to (filter-type group)"
    )
    individual_group: ChannelGroup | None = Field(
        description="That group with its members (include-individual-group=true), else null"
    )
    individual_ids: list[uuid.UUID] | None = Field(
        description="Who it was planned for (include-individual-ids=true; null before the "
        "recipients are planned or without the parameter)"
    )
    individual_id: uuid.UUID | None = Field(
        description="The one individual it was sent to (individuals/{id}/multicast, "
        "users/{id}/multicast), else null"
    )
    first_name: str | None = Field(description="That individual's first name")
    last_name: str | None = Field(description="That individual's last name")
    user_name: str | None = Field(description="The user it was sent to (users/{id}/multicast)")
    status: Status = Field(
        description="queued (recipients not yet planned), sending, completed, cancelled"
    )
    recipient_count: int = Field(description="Recipients planned")
    notified_count: int = Field(description="Recipients notified")
    skipped_count: int = Field(description="Recipients not notified (see get-recipients)")
    pending_count: int = Field(description="Recipients not reached yet")
    completed_at: Timestamp | None
    cancelled_at: Timestamp | None
    organization_id: uuid.UUID


class MulticastCreate(WriteAttributes):
    filter_type: FilterType = Field(
        description="all-participants, all-providers, all-individuals, group "
        '({"individual-group-id"}), individuals ({"individual-ids", "individual-group-ids"}), '
        'users ({"user-ids"})'
    )
    filter_value: dict[str, Any] | None = Field(
        default=None, description="What the filter-type takes (see filter-type)"
    )
    template_id: TemplateRef
    data: TemplateData = Field(default_factory=dict)
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the default)"
    )


class GroupValue(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, extra="forbid")
    individual_group_id: uuid.UUID


class IndividualsValue(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, extra="forbid")
    individual_ids: Ids | None = None
    individual_group_ids: GroupIds | None = None


class UsersValue(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, extra="forbid")
    user_ids: Ids


class EmptyValue(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecipientRead(ReadAttributes):
    individual_id: uuid.UUID
    user_id: uuid.UUID | None = Field(description="The user addressed, if any")
    state: Literal["pending", "delivered", "skipped"] = Field(
        description="pending (not reached yet), delivered (notified), skipped (see reason)"
    )
    reason: str | None = Field(description="Why it was skipped")
    notification_id: uuid.UUID | None = Field(description="The user notification it received")
    channels: list[str] = Field(description="Where the notification went (apn, sms, ...)")
    done_at: Timestamp | None


class UserMulticastRead(ReadAttributes):
    created_at: Timestamp
    individual_id: uuid.UUID
    organization_id: uuid.UUID
    template_data: dict[str, Any]
    template_id: str
    state: Literal["pending", "delivered", "skipped"] = Field(
        description="What happened for this individual"
    )
    notification_id: uuid.UUID | None


class UserMulticastCreate(ActionBody):
    template_id: TemplateRef
    template_data: TemplateData
    individual_ids: Ids | None = None
    individual_group_ids: GroupIds | None = None
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the default)"
    )


class IndividualMulticastBody(ActionBody):
    template_id: TemplateRef
    template_data: TemplateData
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the default)"
    )


class UserMulticastBody(ActionBody):
    template_id: TemplateRef
    data: TemplateData = Field(default_factory=dict)
    individual_id: uuid.UUID | None = Field(
        default=None,
        description="The individual notified: the user's primary individual (the default) or "
        "one the user manages",
    )
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the default)"
    )


class TaskRead(BaseModel):
    """What a one-shot multicast answers: the task to poll."""

    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True)

    message_data: dict[str, Any] = Field(
        description='{"multicast-id", "template-id", "status"}: the multicast made'
    )
    task_id: uuid.UUID = Field(
        description="The multicast's id: GET /v1/multicasts/{task-id}/ shows its status and "
        "counts, /get-recipients/ each recipient's outcome"
    )
