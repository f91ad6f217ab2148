"""Push notifications: what Courier asks of any push service (APNs, FCM, Web Push, sandbox).

One call sends one notification to one device: a multicast is many deliveries, each with its
own outcome, because the services report partial failure of a batch inconsistently. A push
ends at ``sent``: the services confirm acceptance, never that a person saw it. A batch of
sends (:func:`send_batch`) goes to an adapter's ``send_many`` when it has one (the sandbox
records a batch in one transaction), else one ``send`` per device, a few at a time; either
way each send has its own outcome.

Credentials belong to an organization's app (its APNs key, its FCM service account, its VAPID
key pair), so they travel with each send rather than living in the process's settings.

Errors: :class:`~courier.providers.common.RecipientGone` when the service says the token is
dead for good (APNs 410 / BadDeviceToken, FCM UNREGISTERED, Web Push 404/410): the device is
deactivated (the sender calls ``courier.domains.user_devices.service.deactivate_gone_device``);
``NotSent`` (429, 5xx before acceptance), ``Ambiguous`` (timeout after the
request was written), ``Permanent`` (payload refused, credentials refused).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from courier.providers.common import SendResult

Platform = Literal["apn", "fcm", "web"]
PLATFORMS: tuple[Platform, ...] = ("apn", "fcm", "web")
MAX_PAYLOAD_BYTES = 4096  # APNs' and FCM's limit; Web Push allows about as much


@dataclass(frozen=True)
class PushDevice:
    """One installation of an app: its platform and the address the service gave it.

    ``token`` is the APNs device token, the FCM registration token, or a Web Push
    subscription's endpoint URL; ``keys`` holds a Web Push subscription's ``p256dh`` and
    ``auth`` (empty otherwise).
    """

    platform: Platform
    token: str
    keys: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PushCredentials:
    """An organization's credentials for one platform (decrypted ``app-credentials`` data:
    APNs p8 key, key id, team id, topic; FCM service-account JSON; VAPID keys).
    ``test_mode`` selects the vendor's development gateway (APNs sandbox)."""

    platform: Platform
    data: Mapping[str, Any] = field(default_factory=dict)
    test_mode: bool = False


@dataclass(frozen=True)
class PushMessage:
    """What the phone shows (``title``, ``body``, ``badge``, ``sound``) and what the app gets
    (``data``). ``collapse_key`` lets a newer push replace an older one still undelivered;
    ``ttl_seconds`` is how long the service keeps trying an offline device."""

    title: str | None = None
    body: str | None = None
    badge: int | None = None
    sound: str | None = None
    category: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    collapse_key: str | None = None
    ttl_seconds: int | None = None

    def shown(self) -> dict[str, Any]:
        """The message as a JSON object (what the sandbox records, what the logs describe)."""
        return {
            "title": self.title,
            "body": self.body,
            "badge": self.badge,
            "sound": self.sound,
            "category": self.category,
            "data": dict(self.data),
            "collapse-key": self.collapse_key,
        }


@runtime_checkable
class PushProvider(Protocol):
    """A push service. ``send`` is called from a job only, one device per call."""

    name: str
    platforms: frozenset[str]  # the platforms this adapter delivers to

    async def send(
        self,
        device: PushDevice,
        message: PushMessage,
        *,
        delivery_id: uuid.UUID,
        credentials: PushCredentials | None = None,
    ) -> SendResult:
        """Hand one notification to the service. ``delivery_id`` is passed on where the
        service takes an id of ours (APNs ``apns-id``), so a resend is recognisable.
        Raises ``RecipientGone`` for a dead token, else the errors of the module doc."""
        ...


@dataclass(frozen=True)
class PushSend:
    """One send of a batch: a message to a device, for a delivery."""

    delivery_id: uuid.UUID
    device: PushDevice
    message: PushMessage
    credentials: PushCredentials | None = None


# What a send of a batch came to: the service's acceptance, or the error ``send`` would raise.
PushOutcome = SendResult | Exception


@runtime_checkable
class BatchPushProvider(PushProvider, Protocol):
    """A push service that takes many sends in one call (as FCM's multicast did)."""

    async def send_many(self, sends: Sequence[PushSend]) -> list[PushOutcome]:
        """One outcome per send, in order: never raises for one send's failure."""
        ...


BATCH_CONCURRENCY = 8  # sends in flight at once for an adapter without ``send_many``


async def send_batch(adapter: PushProvider, sends: Sequence[PushSend]) -> list[PushOutcome]:
    """Send a batch: through the adapter's ``send_many`` when it has one, else each device
    by ``send``, ``BATCH_CONCURRENCY`` at a time. One outcome per send, in order."""
    if isinstance(adapter, BatchPushProvider):
        return await adapter.send_many(sends)
    gate = asyncio.Semaphore(BATCH_CONCURRENCY)

    async def one(send: PushSend) -> PushOutcome:
        async with gate:
            try:
                return await adapter.send(
                    send.device,
                    send.message,
                    delivery_id=send.delivery_id,
                    credentials=send.credentials,
                )
            except Exception as exc:  # the caller classifies each send's outcome
                return exc

    return list(await asyncio.gather(*(one(send) for send in sends)))
