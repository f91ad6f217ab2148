"""The push sandbox: a phone for every token. It records what the lock screen would show
(title, body, badge, data), lets a test declare a token gone (the app was uninstalled: the
next send raises ``RecipientGone`` with the platform's own code), and fails the next send on
demand. Payloads are checked as the services do (4 KiB)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from pydantic import BaseModel, Field

from courier.config import Settings
from courier.core.time import utcnow
from courier.providers.common import (
    DeliveryStatus,
    NotSent,
    Permanent,
    RecipientGone,
    SandboxContext,
    SendResult,
    VendorStatus,
)
from courier.providers.push.base import (
    MAX_PAYLOAD_BYTES,
    PLATFORMS,
    PushCredentials,
    PushDevice,
    PushMessage,
)
from courier.providers.sandbox_faults import ANY_TARGET, CONTROL_PARAMS, raise_armed_fault
from courier.providers.sandbox_faults import COLLECTION as FAULTS
from courier.providers.sandbox_store import SandboxStore

# What each service answers for a token that no longer exists.
GONE_CODES: dict[str, str] = {"apn": "Unregistered", "fcm": "UNREGISTERED", "web": "410"}


class SandboxPush:
    name = "sandbox"
    platforms: frozenset[str] = frozenset(PLATFORMS)

    def __init__(self, settings: Settings) -> None:
        self.store = SandboxStore(settings, "push")

    async def send(
        self,
        device: PushDevice,
        message: PushMessage,
        *,
        delivery_id: uuid.UUID,
        credentials: PushCredentials | None = None,
    ) -> SendResult:
        if device.platform not in self.platforms:
            raise Permanent("unsupported-platform", f"no push platform {device.platform!r}")
        if not device.token:
            raise Permanent("BadDeviceToken", "empty device token")
        armed = [(FAULTS, device.token), (FAULTS, ANY_TARGET), ("gone", device.token)]
        if await self.store.any_of(armed):  # one lookup when nothing is armed (most sends)
            await raise_armed_fault(self.store, device.token)
            if await self.store.get("gone", device.token) is not None:
                code = GONE_CODES[device.platform]
                raise RecipientGone(code, "the device token is no longer registered")
        shown = message.shown()
        if len(orjson.dumps(shown)) > MAX_PAYLOAD_BYTES:
            raise Permanent("PayloadTooLarge", f"payload over {MAX_PAYLOAD_BYTES} bytes")
        vendor_id = f"push-{uuid.uuid4().hex}"
        now = utcnow()
        await self.store.put(
            "shown",
            device.token,
            {
                **shown,
                "vendor-id": vendor_id,
                "delivery-id": str(delivery_id),
                "platform": device.platform,
                "test-mode": bool(credentials and credentials.test_mode),
                "received-at": now.isoformat(),
            },
        )
        return SendResult(vendor_id=vendor_id, vendor_status="accepted", accepted_at=now)

    async def fetch(
        self, *, delivery_id: uuid.UUID, vendor_id: str | None, recipient: str
    ) -> VendorStatus | None:
        """Reconciliation after a crash between the send and its record: the sandbox keeps
        every push it took, so a delivery it never took is ``NotSent`` (sent again, for the
        first time) and one it took is ``sent`` (never sent twice)."""
        shown = await self.store.find("shown", "delivery-id", str(delivery_id))
        if not shown:
            raise NotSent("the sandbox never received this push", code="not-received")
        return VendorStatus(
            vendor_id=str(shown[0]["vendor-id"]),
            status=DeliveryStatus.SENT,
            vendor_status="accepted",
        )


# --- controls (served as /sandbox/push/..., `courier sandbox push ...`) ------------------------


class TokenParams(BaseModel):
    model_config = CONTROL_PARAMS
    token: str = Field(min_length=1, max_length=4096, description="The device token.")


async def phone_screen(ctx: SandboxContext, params: TokenParams) -> list[dict[str, Any]]:
    """What the phone with this token has shown, oldest first."""
    adapter: SandboxPush = ctx.adapter
    return await adapter.store.all("shown", params.token)


async def token_gone(ctx: SandboxContext, params: TokenParams) -> dict[str, Any]:
    """The app was uninstalled: every later send to the token raises RecipientGone."""
    adapter: SandboxPush = ctx.adapter
    if await adapter.store.get("gone", params.token) is None:
        await adapter.store.put("gone", params.token, {"since": utcnow().isoformat()})
    return {"token": params.token, "gone": True}
