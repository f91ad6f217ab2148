"""The ``vendors`` push adapter: each platform to its own service, as a deployment needs them
all at once: ``apn`` devices to APNs, ``fcm`` to FCM, ``web`` to their Web Push service."""

from __future__ import annotations

import uuid

from courier.config import Settings
from courier.providers.common import Permanent, SendResult
from courier.providers.push.apns import ApnsPush
from courier.providers.push.base import PLATFORMS, PushCredentials, PushDevice, PushMessage
from courier.providers.push.fcm import FcmPush
from courier.providers.push.webpush import WebPush


class VendorPush:
    name = "vendors"
    platforms: frozenset[str] = frozenset(PLATFORMS)

    def __init__(self, settings: Settings) -> None:
        self.apns = ApnsPush(settings)
        self.fcm = FcmPush(settings)
        self.web = WebPush(settings)
        self.by_platform: dict[str, ApnsPush | FcmPush | WebPush] = {
            "apn": self.apns,
            "fcm": self.fcm,
            "web": self.web,
        }

    async def send(
        self,
        device: PushDevice,
        message: PushMessage,
        *,
        delivery_id: uuid.UUID,
        credentials: PushCredentials | None = None,
    ) -> SendResult:
        adapter = self.by_platform.get(device.platform)
        if adapter is None:
            raise Permanent("unsupported-platform", f"no push platform {device.platform!r}")
        return await adapter.send(device, message, delivery_id=delivery_id, credentials=credentials)

    async def close(self) -> None:
        for adapter in self.by_platform.values():
            await adapter.close()
