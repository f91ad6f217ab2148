"""The push sandbox: a phone for every token. It records what the lock screen would show
(title, body, badge, data), lets a test declare a token gone (the app was uninstalled: the
next send raises ``RecipientGone`` with the platform's own code), and fails the next send on
demand. Payloads are checked as the services do (4 KiB). A batch (``send_many``) looks up
armed behaviours for all its tokens in one statement and records every push it took in one
transaction; a token with something armed is sent alone, as ``send`` would."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
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
    PushOutcome,
    PushSend,
)
from courier.providers.sandbox_faults import ANY_TARGET, CONTROL_PARAMS, raise_armed_fault
from courier.providers.sandbox_faults import COLLECTION as FAULTS
from courier.providers.sandbox_store import SandboxAdapter, SandboxStore

# What each service answers for a token that no longer exists.
GONE_CODES: dict[str, str] = {"apn": "Unregistered", "fcm": "UNREGISTERED", "web": "410"}


class SandboxPush(SandboxAdapter):
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
        self._check(device)
        armed = [(FAULTS, device.token), (FAULTS, ANY_TARGET), ("gone", device.token)]
        if await self.store.any_of(armed):  # one lookup when nothing is armed (most sends)
            await self._raise_armed(device)
        now = utcnow()
        record = self._record(PushSend(delivery_id, device, message, credentials), now)
        await self.store.put("shown", device.token, record)
        return self._accepted(record, now)

    async def send_many(self, sends: Sequence[PushSend]) -> list[PushOutcome]:
        """The batch form of :meth:`send`: one lookup of what is armed for the batch's
        tokens, the tokens with something armed sent alone (in order), and every other push
        recorded in one transaction (all taken, or none: then each is the same error)."""
        outcomes: list[PushOutcome | None] = [None] * len(sends)
        tokens = {send.device.token for send in sends}
        wanted = [(FAULTS, ANY_TARGET)] + [
            (collection, token) for token in sorted(tokens) for collection in (FAULTS, "gone")
        ]
        armed: set[tuple[str, str]] = set()
        for start in range(0, len(wanted), 500):
            armed |= await self.store.present(wanted[start : start + 500])
        now = utcnow()
        batch: list[tuple[int, dict[str, Any]]] = []
        for index, send in enumerate(sends):
            token = send.device.token
            if armed & {(FAULTS, ANY_TARGET), (FAULTS, token), ("gone", token)}:
                continue  # sent alone below, as send() would, after the batch's lookup
            try:
                self._check(send.device)
                batch.append((index, self._record(send, now)))
            except Permanent as exc:
                outcomes[index] = exc
        try:
            await self.store.put_many(
                "shown", [(sends[index].device.token, record) for index, record in batch]
            )
        except Exception as exc:  # nothing of the batch was taken
            for index, _record in batch:
                outcomes[index] = exc
        else:
            for index, record in batch:
                outcomes[index] = self._accepted(record, now)
        for index, send in enumerate(sends):
            if outcomes[index] is None:
                try:
                    outcomes[index] = await self.send(
                        send.device,
                        send.message,
                        delivery_id=send.delivery_id,
                        credentials=send.credentials,
                    )
                except Exception as exc:  # this send's own outcome
                    outcomes[index] = exc
        return [outcome for outcome in outcomes if outcome is not None]

    def _check(self, device: PushDevice) -> None:
        if device.platform not in self.platforms:
            raise Permanent("unsupported-platform", f"no push platform {device.platform!r}")
        if not device.token:
            raise Permanent("BadDeviceToken", "empty device token")

    async def _raise_armed(self, device: PushDevice) -> None:
        await raise_armed_fault(self.store, device.token)
        if await self.store.get("gone", device.token) is not None:
            code = GONE_CODES[device.platform]
            raise RecipientGone(code, "the device token is no longer registered")

    @staticmethod
    def _record(send: PushSend, now: datetime) -> dict[str, Any]:
        """What the phone shows, with the push's ids (refused when over the payload limit)."""
        shown = send.message.shown()
        if len(orjson.dumps(shown)) > MAX_PAYLOAD_BYTES:
            raise Permanent("PayloadTooLarge", f"payload over {MAX_PAYLOAD_BYTES} bytes")
        return {
            **shown,
            "vendor-id": f"push-{uuid.uuid4().hex}",
            "delivery-id": str(send.delivery_id),
            "platform": send.device.platform,
            "test-mode": bool(send.credentials and send.credentials.test_mode),
            "received-at": now.isoformat(),
        }

    @staticmethod
    def _accepted(record: dict[str, Any], now: datetime) -> SendResult:
        return SendResult(vendor_id=record["vendor-id"], vendor_status="accepted", accepted_at=now)

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
