"""Attributes of push devices and of their push logs, on the wire."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab

DeviceType = Literal["apn", "fcm", "web"]
DEVICE_TYPES: tuple[str, ...] = ("apn", "fcm", "web")


class SubscriptionKeys(BaseModel):
    """A Web Push subscription's keys, as the browser's ``PushSubscription.toJSON()`` gives
    them: ``p256dh`` (the browser's P-256 public key) and ``auth`` (16 bytes), base64url."""

    model_config = ConfigDict(extra="forbid")

    p256dh: str = Field(max_length=128)
    auth: str = Field(max_length=64)


class UserDeviceRead(ReadAttributes):
    allow_notification: bool
    app_name: str | None
    app_version: str | None
    created_at: Timestamp
    individual_id: uuid.UUID
    last_modified_at: Timestamp
    model: str | None
    os_version: str | None
    sandbox: bool
    token: str
    topic: str | None
    type: DeviceType
    active: bool = Field(description="False once the push service said the token is gone")
    deactivated_at: Timestamp | None = Field(description="When the token was found gone")


class UserDeviceCreate(WriteAttributes):
    allow_notification: StrictBool = True
    app_name: str | None = Field(default=None, max_length=64)
    app_version: str | None = Field(default=None, max_length=20)
    individual_id: uuid.UUID | None = Field(
        default=None, description="Whose device (default: the individual token's own)"
    )
    model: str | None = Field(default=None, max_length=64)
    os_version: str | None = Field(default=None, max_length=64)
    organization_id: uuid.UUID | None = None
    sandbox: StrictBool = False
    token: str = Field(
        min_length=1,
        max_length=1024,
        description="The APNs device token, the FCM registration token (at most 255 "
        "characters), or a Web Push subscription's endpoint URL",
    )
    topic: str | None = Field(default=None, max_length=255)
    type: DeviceType
    keys: SubscriptionKeys | None = Field(
        default=None, description="web: the subscription's p256dh and auth (required)"
    )


class UserDeviceLogRead(ReadAttributes):
    """One push to the device: what it showed (when the notification that sent it is
    known) and its outcome."""

    badge_count: int | None
    body: str | None
    category: str | None
    created_at: Timestamp
    data: dict[str, Any]
    title: str | None
    state: str = Field(
        description="accepted, queued, sending, sent, delivered, undelivered, failed"
    )
    error_code: str | None = Field(description="The service's code when it failed")
    resource_type: str = Field(description="What sent it (e.g. user-notifications)")
    resource_id: uuid.UUID
    sent_at: Timestamp | None


__all__ = ["DEVICE_TYPES", "UserDeviceCreate", "UserDeviceLogRead", "UserDeviceRead", "kebab"]
