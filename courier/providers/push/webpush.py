"""The ``webpush`` push adapter: Web Push (RFC 8030) with VAPID (RFC 8292), payloads encrypted
for the subscription (RFC 8291, ``aes128gcm``), through ``pywebpush`` and ``py_vapid``.

A device is a browser's push subscription: ``token`` is its endpoint URL, ``keys`` its
``p256dh`` and ``auth``. The payload is the notification as JSON (``title``, ``body``,
``badge``, ``sound``, ``category``, ``data``: whatever is set), which the site's service worker
decrypts (the browser does) and shows. Headers: ``TTL`` (the message's, else 4 weeks),
``Urgency`` (high when something is shown), ``Topic`` (the collapse key), and
``Authorization: vapid t=<JWT>, k=<public key>``, the JWT (ES256) naming the push service's
origin (``aud``), an expiry 12 hours on and a contact (``sub``).

Credentials (``PushCredentials.data`` of platform ``web``): ``private-key`` (the VAPID key:
base64url of the raw 32 bytes, or PEM), optionally ``public-key`` (checked against it) and
``subject`` (``mailto:`` or ``https:``; else ``COURIER_WEBPUSH_VAPID_SUBJECT``, else
``COURIER_PUBLIC_URL`` when it is https).

The endpoint comes from a browser, so it is checked as webhook URLs are: https only, and
never a private, loopback or link-local address (unless ``COURIER_WEBPUSH_ALLOW_PRIVATE``);
the request goes to the address that was checked.

Replies: 201 → sent (the service's ``Location`` is the vendor id); 404, 410 →
:class:`RecipientGone`; 429 and 5xx → :class:`NotSent` (``Retry-After`` honoured); 413 and the
other refusals → :class:`Permanent` with the HTTP status as the code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException  # type: ignore[import-untyped]
from pywebpush import WebPusher, WebPushException  # type: ignore[import-untyped]

from courier.config import Settings
from courier.core.time import utcnow
from courier.events.webhooks import Target, UnsafeUrlError, parse_url, resolve_target
from courier.providers.common import NotSent, Permanent, RecipientGone, SendResult
from courier.providers.push import transport
from courier.providers.push.base import PushCredentials, PushDevice, PushMessage

DEFAULT_TTL_SECONDS = 28 * 24 * 3600  # what push services keep at most
# RFC 8291: one aes128gcm record of at most 4096 bytes: header 86, padding delimiter 1, tag 16.
MAX_PLAINTEXT_BYTES = 4096 - 86 - 1 - 16
VAPID_TTL_SECONDS = 12 * 3600
VAPID_REUSE_SECONDS = 11 * 3600  # a signed VAPID header is reused for an hour less than it lives
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
RETRY_STATUSES = frozenset({429})


@dataclass(frozen=True)
class VapidKey:
    """An organization's VAPID key pair and its contact."""

    vapid: Vapid02
    public_key: str  # base64url of the uncompressed P-256 point: the applicationServerKey
    subject: str

    @classmethod
    def from_credentials(cls, credentials: PushCredentials | None, settings: Settings) -> VapidKey:
        data: Mapping[str, Any] = credentials.data if credentials else {}
        private = data.get("private-key")
        if credentials is None or credentials.platform != "web" or not isinstance(private, str):
            raise Permanent("BadVapidKey", "Web Push credentials need a VAPID private-key")
        try:
            key = private_key_of(private.strip())
        except (ValueError, TypeError, binascii.Error) as exc:
            raise Permanent("BadVapidKey", "the VAPID private-key is not a P-256 key") from exc
        # Courier checks the subject itself (mailto: or any https: URI, RFC 8292); py_vapid's
        # strict check would refuse an https contact with a port or a path.
        vapid = Vapid02(key, conf={"no-strict": True})
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        public = base64.urlsafe_b64encode(point).rstrip(b"=").decode()
        given = data.get("public-key")
        if isinstance(given, str) and given.strip():
            # base64url without padding; standard base64 and padding are accepted too
            normalised = given.strip().rstrip("=").replace("+", "-").replace("/", "_")
        else:
            normalised = public
        if normalised != public:
            raise Permanent("BadVapidKey", "the VAPID public-key is not the private key's")
        subject = data.get("subject") or settings.webpush_vapid_subject
        if not subject and (settings.public_url or "").startswith("https://"):
            subject = settings.public_url
        if not isinstance(subject, str) or not subject.startswith(("mailto:", "https://")):
            raise Permanent(
                "BadVapidKey",
                "Web Push needs a VAPID subject (mailto: or https:): the credentials' subject "
                "or COURIER_WEBPUSH_VAPID_SUBJECT",
            )
        return cls(vapid, public, subject)


def private_key_of(text: str) -> ec.EllipticCurvePrivateKey:
    """A VAPID private key from PEM or from base64url of its 32 raw bytes."""
    if "-----BEGIN" in text:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        raw = base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
        if len(raw) != 32:
            raise ValueError("a raw P-256 private key has 32 bytes")
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("not a P-256 key")
    return key


def payload_of(message: PushMessage) -> bytes:
    """The notification as the service worker receives it (JSON, unset fields left out)."""
    shown = {
        "title": message.title,
        "body": message.body,
        "badge": message.badge,
        "sound": message.sound,
        "category": message.category,
        "data": dict(message.data) or None,
    }
    payload = orjson.dumps({k: v for k, v in shown.items() if v is not None})
    if len(payload) > MAX_PLAINTEXT_BYTES:
        raise Permanent("PayloadTooLarge", f"payload over {MAX_PLAINTEXT_BYTES} bytes")
    return payload


def topic_of(collapse_key: str) -> str:
    """RFC 8030's Topic: at most 32 characters of base64url (a longer key is hashed)."""
    if TOPIC.fullmatch(collapse_key):
        return collapse_key
    digest = hashlib.sha256(collapse_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def encrypt(device: PushDevice, payload: bytes) -> bytes:
    """The payload encrypted for the subscription (RFC 8291, aes128gcm)."""
    p256dh, auth = device.keys.get("p256dh"), device.keys.get("auth")
    if not p256dh or not auth:
        raise Permanent("BadSubscription", "a Web Push subscription needs its p256dh and auth keys")
    subscription = {"endpoint": device.token, "keys": {"p256dh": p256dh, "auth": auth}}
    try:
        encoded = WebPusher(subscription).encode(payload, content_encoding="aes128gcm")
    except (WebPushException, ValueError, TypeError, binascii.Error) as exc:
        raise Permanent("BadSubscription", "the subscription's keys are not valid") from exc
    body: bytes = encoded["body"]
    return body


class WebPush:
    """Sends to browsers' push subscriptions."""

    name = "webpush"
    platforms: frozenset[str] = frozenset({"web"})

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tls = transport.tls_context(settings)
        self._vapid_headers: dict[tuple[str, str, str], tuple[str, float]] = {}

    def authorization(self, key: VapidKey, audience: str) -> str:
        """``vapid t=<JWT>, k=<key>`` for the push service at ``audience`` (kept 11 hours)."""
        cache_key = (key.public_key, key.subject, audience)
        now = time.time()
        found = self._vapid_headers.get(cache_key)
        if found is not None and found[1] > now:
            return found[0]
        claims = {"aud": audience, "exp": int(now) + VAPID_TTL_SECONDS, "sub": key.subject}
        try:
            header = str(key.vapid.sign(claims)["Authorization"])
        except VapidException as exc:
            raise Permanent("BadVapidKey", f"VAPID claims refused: {exc}") from exc
        self._vapid_headers[cache_key] = (header, now + VAPID_REUSE_SECONDS)
        return header

    async def target(self, endpoint: str) -> Target:
        """The endpoint, checked and pinned to a checked address."""
        allow_private = self.settings.webpush_allow_private
        try:
            parse_url(endpoint, allow_private=allow_private)
        except UnsafeUrlError as exc:
            raise Permanent("BadEndpoint", f"the subscription endpoint {exc}") from exc
        try:
            return await resolve_target(endpoint, allow_private=allow_private)
        except UnsafeUrlError as exc:
            if isinstance(exc.__cause__, OSError | TimeoutError):
                raise NotSent(f"the push service's host does not resolve: {exc}") from exc
            raise Permanent("BadEndpoint", f"the subscription endpoint {exc}") from exc

    async def send(
        self,
        device: PushDevice,
        message: PushMessage,
        *,
        delivery_id: uuid.UUID,
        credentials: PushCredentials | None = None,
    ) -> SendResult:
        if device.platform != "web":
            raise Permanent("unsupported-platform", f"Web Push cannot send to {device.platform!r}")
        key = VapidKey.from_credentials(credentials, self.settings)
        body = encrypt(device, payload_of(message))
        target = await self.target(device.token)
        origin = f"{target.url.scheme}://{target.host_header}"
        ttl = DEFAULT_TTL_SECONDS if message.ttl_seconds is None else max(0, message.ttl_seconds)
        shown = bool(message.title or message.body)
        headers = {
            "Host": target.host_header,
            "TTL": str(ttl),
            "Urgency": "high" if shown else "normal",
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": self.authorization(key, origin),
        }
        if message.collapse_key:
            headers["Topic"] = topic_of(message.collapse_key)
        extensions = {"sni_hostname": target.server_name} if target.server_name else {}

        async def post() -> httpx.Response:
            # A client per send: its connection goes to the address checked for this endpoint
            # (a kept connection could be reused for another host at the same address).
            async with httpx.AsyncClient(
                verify=self.tls,
                timeout=self.settings.push_timeout_seconds,
                trust_env=False,  # no proxy may carry it elsewhere than the checked address
                follow_redirects=False,
            ) as client:
                return await client.post(
                    target.url, content=body, headers=headers, extensions=extensions
                )

        response = await transport.call("the Web Push service", post)
        status = response.status_code
        if status in (200, 201, 202):
            return SendResult(
                vendor_id=response.headers.get("location") or f"webpush-{delivery_id}",
                vendor_status="accepted",
                accepted_at=utcnow(),
            )
        raise classify(response)

    async def close(self) -> None:
        """Nothing is kept open between sends."""


def classify(response: httpx.Response) -> Exception:
    """What a push service's refusal means for the delivery."""
    status = response.status_code
    code = str(status)
    message = f"the Web Push service answered {status}"
    if status in (404, 410):
        return RecipientGone(code, message)
    if status in RETRY_STATUSES or status >= 500:
        return NotSent(message, retry_after=transport.retry_after(response), code=code)
    return Permanent(code, message)
