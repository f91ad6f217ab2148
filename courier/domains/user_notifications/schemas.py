"""User notifications and their daily counts, on the wire."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from courier.core.types import Timestamp
from courier.jsonapi.actions import ActionBody
from courier.jsonapi.documents import ReadAttributes, kebab

COUNTS_TYPE = "notification-counts"


class _Shape(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, serialize_by_alias=True)


class PushRendering(_Shape):
    title: str | None = None
    body: str | None = None
    category: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class SmsRendering(_Shape):
    bodies: list[str] = Field(default_factory=list)


class EmailRendering(_Shape):
    subject: str | None = None
    text: str | None = None
    html: str | None = None


class NotificationData(_Shape):
    """What each channel showed. A sensitive template's ``apn``/``fcm``/``web`` and ``sms``
    carry only the neutral line and the deep link; ``app`` and ``email`` the full text."""

    apn: PushRendering | None = None
    fcm: PushRendering | None = None
    web: PushRendering | None = None
    sms: SmsRendering | None = None
    email: EmailRendering | None = None
    app: PushRendering | None = None


class EscalationStep(_Shape):
    channel: str = Field(description="push, sms, voice, email or care-team")
    after_seconds: float = Field(description="Seconds after the notification was created")
    state: str = Field(description="scheduled, done, skipped (nothing to send) or cancelled")
    due_at: str | None = None
    done_at: str | None = None
    result: str | None = None
    individual_id: str | None = None
    user_id: str | None = None
    delivery_id: str | None = None
    notification_id: str | None = None


class Escalation(_Shape):
    """The ladder: ``state`` waiting (no step done yet), escalated (some done), done (every
    step done), or stopped (acknowledged or withdrawn: the steps left were cancelled)."""

    state: str
    level: int = Field(default=0, description="How many steps have run")
    steps: list[EscalationStep]


class UserNotificationRead(ReadAttributes):
    acknowledged: bool
    acknowledged_at: Timestamp | None
    active: bool = Field(description="False once withdrawn (e.g. its multicast was cancelled)")
    category: str | None
    channels: list[str] = Field(description="What it was sent to: apn, fcm, web, sms, email")
    created_at: Timestamp
    data: NotificationData
    escalation: Escalation | None
    individual_id: uuid.UUID
    organization_id: uuid.UUID
    source: str
    template_id: uuid.UUID | None
    user_first_name: str | None
    user_id: uuid.UUID | None
    user_last_name: str | None


class AckBody(ActionBody):
    ack_previous: StrictBool = Field(
        default=False,
        description="Also acknowledge every earlier notification of the same individual",
    )


class NotificationCountRead(ReadAttributes):
    count: int
    daily_for_date: str = Field(description="The day (UTC), YYYY-MM-DD")
    user_id: uuid.UUID | None
