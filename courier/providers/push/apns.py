"""The ``apns`` push adapter: Apple Push Notification service, HTTP/2 with token auth.

Each send is one ``POST <gateway>/3/device/<token>`` on a kept-open HTTP/2 connection (httpx
with h2), authorised by a provider token: an ES256 JWT (``iss`` the team id, ``iat``, header
``kid`` the key id) signed with the organization's ``.p8`` key. A token is reused for 50 minutes
(Apple refuses one older than an hour, and too frequent new ones) and made anew at once when
APNs answers ``ExpiredProviderToken`` (the send is then tried once more).

Credentials (``PushCredentials.data`` of platform ``apn``): ``key`` (the .p8 file's PEM text),
``key-id``, ``team-id``, ``topic`` (the app's bundle id). ``test_mode`` sends to the development
gateway (``COURIER_APNS_SANDBOX_URL``), else production (``COURIER_APNS_URL``).

Replies, classified on APNs' ``reason``: 200 → sent, the ``apns-id`` (Courier's delivery id) is
the vendor id; 410 (``Unregistered``, ``ExpiredToken``) and 400 ``BadDeviceToken`` →
:class:`RecipientGone`; 429, 500, 503 → :class:`NotSent`; any other → :class:`Permanent` with
the reason (``PayloadTooLarge``, ``TopicDisallowed``, ``InvalidProviderToken`` ...).
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from courier.config import Settings
from courier.core.time import utcnow
from courier.providers.common import NotSent, Permanent, RecipientGone, SendResult
from courier.providers.push import transport
from courier.providers.push.base import MAX_PAYLOAD_BYTES, PushCredentials, PushDevice, PushMessage

TOKEN_REFRESH_SECONDS = 50 * 60  # Apple: no older than 60 min, no more often than every 20
DEVICE_TOKEN = re.compile(r"[0-9A-Fa-f]{8,200}")
GONE_REASONS = frozenset({"Unregistered", "ExpiredToken", "BadDeviceToken"})
RETRY_STATUSES = frozenset({429, 500, 503})
PRIORITY_NOW, PRIORITY_BACKGROUND = "10", "5"


@dataclass(frozen=True)
class ApnsKey:
    """An organization's APNs auth key: the signing key and who it belongs to."""

    team_id: str
    key_id: str
    topic: str
    private_key: ec.EllipticCurvePrivateKey
    fingerprint: str  # of the PEM: tokens are cached per key

    @classmethod
    def from_credentials(cls, credentials: PushCredentials | None) -> ApnsKey:
        data: Mapping[str, Any] = credentials.data if credentials else {}
        values = {name: data.get(name) for name in ("key", "key-id", "team-id", "topic")}
        missing = [
            name for name, value in values.items() if not isinstance(value, str) or not value
        ]
        if credentials is None or credentials.platform != "apn" or missing:
            raise Permanent(
                "MissingProviderToken",
                "APNs credentials need key (the .p8 PEM), key-id, team-id and topic"
                + (f"; missing: {', '.join(missing)}" if missing else ""),
            )
        pem = str(values["key"]).strip().encode()
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise Permanent(
                "InvalidProviderToken", "the APNs key is not a PEM private key"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise Permanent("InvalidProviderToken", "the APNs key is not a P-256 (ES256) key")
        return cls(
            team_id=str(values["team-id"]),
            key_id=str(values["key-id"]),
            topic=str(values["topic"]),
            private_key=key,
            fingerprint=hashlib.sha256(pem).hexdigest(),
        )


@dataclass
class _Token:
    value: str
    issued_at: float


def payload_of(message: PushMessage) -> tuple[bytes, str]:
    """The JSON payload (``aps`` plus the app's data at the top level) and its push type:
    ``alert`` when something is shown, heard or counted, else ``background``."""
    if "aps" in message.data:
        raise Permanent("BadPayload", "the data may not carry the key 'aps' (APNs' own)")
    aps: dict[str, Any] = {}
    alert = {k: v for k, v in (("title", message.title), ("body", message.body)) if v}
    if alert:
        aps["alert"] = alert
    if message.badge is not None:
        aps["badge"] = message.badge
    if message.sound:
        aps["sound"] = message.sound
    if message.category:
        aps["category"] = message.category
    push_type = "alert" if aps else "background"
    if push_type == "background":
        aps["content-available"] = 1
    body = orjson.dumps({**message.data, "aps": aps})
    if len(body) > MAX_PAYLOAD_BYTES:
        raise Permanent("PayloadTooLarge", f"payload over {MAX_PAYLOAD_BYTES} bytes")
    return body, push_type


class ApnsPush:
    """Sends to Apple devices over HTTP/2 with provider tokens."""

    name = "apns"
    platforms: frozenset[str] = frozenset({"apn"})

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        tls = transport.tls_context(settings)
        self.clients = transport.ClientCache(
            lambda: httpx.AsyncClient(
                http2=True,
                verify=tls,
                timeout=settings.push_timeout_seconds,
                trust_env=False,  # no proxy from the environment sees the tokens
                follow_redirects=False,
            )
        )
        self._tokens: dict[tuple[str, str, str], _Token] = {}

    def gateway(self, credentials: PushCredentials | None) -> str:
        test_mode = bool(credentials and credentials.test_mode)
        base = self.settings.apns_sandbox_url if test_mode else self.settings.apns_url
        return base.rstrip("/")

    def provider_token(self, key: ApnsKey, *, fresh: bool = False) -> str:
        """The JWT for ``key``: the cached one while younger than 50 minutes (or a new one
        when ``fresh``: APNs said the cached one expired)."""
        cache_key = (key.team_id, key.key_id, key.fingerprint)
        now = self.clock()
        token = self._tokens.get(cache_key)
        if fresh or token is None or now - token.issued_at >= TOKEN_REFRESH_SECONDS:
            issued = int(now)
            value = jwt.encode(
                {"iss": key.team_id, "iat": issued},
                key.private_key,
                algorithm="ES256",
                headers={"kid": key.key_id},
            )
            token = self._tokens[cache_key] = _Token(value, issued)
        return token.value

    async def send(
        self,
        device: PushDevice,
        message: PushMessage,
        *,
        delivery_id: uuid.UUID,
        credentials: PushCredentials | None = None,
    ) -> SendResult:
        if device.platform != "apn":
            raise Permanent("unsupported-platform", f"APNs cannot send to {device.platform!r}")
        if not DEVICE_TOKEN.fullmatch(device.token):
            raise RecipientGone("BadDeviceToken", "an APNs device token is hexadecimal")
        key = ApnsKey.from_credentials(credentials)
        body, push_type = payload_of(message)
        apns_id = str(delivery_id).upper()
        headers = {
            "apns-id": apns_id,
            "apns-topic": key.topic,
            "apns-push-type": push_type,
            "apns-priority": PRIORITY_NOW if push_type == "alert" else PRIORITY_BACKGROUND,
            "content-type": "application/json",
        }
        if message.ttl_seconds is not None:
            expires = 0 if message.ttl_seconds <= 0 else int(self.clock()) + message.ttl_seconds
            headers["apns-expiration"] = str(expires)
        if message.collapse_key:
            headers["apns-collapse-id"] = message.collapse_key
        base = self.gateway(credentials)
        url = f"{base}/3/device/{device.token}"
        client = self.clients.get((base, key.team_id, key.key_id))

        async def post(token: str) -> httpx.Response:
            authorised = {**headers, "authorization": f"bearer {token}"}
            return await transport.call(
                "APNs", functools.partial(client.post, url, content=body, headers=authorised)
            )

        response = await post(self.provider_token(key))
        if response.status_code == 403 and _reason(response) == "ExpiredProviderToken":
            # APNs no longer takes the cached token: a new one, and the send once more.
            response = await post(self.provider_token(key, fresh=True))
        if response.status_code == 200:
            return SendResult(
                vendor_id=response.headers.get("apns-id", apns_id),
                vendor_status="accepted",
                accepted_at=utcnow(),
            )
        raise classify(response, _reason(response))

    async def close(self) -> None:
        await self.clients.close()


def _reason(response: httpx.Response) -> str:
    try:
        reason = orjson.loads(response.content).get("reason")
    except (orjson.JSONDecodeError, AttributeError):
        reason = None
    return str(reason) if reason else str(response.status_code)


def classify(response: httpx.Response, reason: str) -> Exception:
    """What an APNs error reply means for the delivery."""
    status = response.status_code
    message = f"APNs answered {status} {reason}"
    if status == 410 or reason in GONE_REASONS:
        return RecipientGone(reason, message)
    if status in RETRY_STATUSES:
        return NotSent(message, retry_after=transport.retry_after(response), code=reason)
    return Permanent(reason, message)
