"""Local stand-ins for the push services, each checking what the real one checks.

- :class:`FakeApns`: HTTP/2 only (TLS, ALPN ``h2``), ``POST /3/device/<token>``; verifies the
  provider token (ES256 JWT: ``kid`` a registered key, ``iss`` its team, signature, ``iat`` under
  an hour old), the ``apns-*`` headers and the payload (``aps``, 4 KiB), and answers as APNs
  does (``{"reason": ...}``; 410 with a timestamp for an uninstalled app).
- :class:`FakeFcm`: the OAuth 2.0 token endpoint (JWT-bearer grant: the assertion is verified
  with the service account's public key, its audience and scope checked) and the HTTP v1 send
  endpoint (the bearer must be a token it issued; the message JSON is checked field by field).
- :class:`WebPushService`: a push service for browser subscriptions; it checks the VAPID JWT
  against the ``k`` key (and the key the subscription was made with), and DECRYPTS the body
  with the subscription's private key (RFC 8291), so a test reads what the browser would.

Each runs under hypercorn (TLS from a trustme CA) in a thread of its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import http_ece  # type: ignore[import-untyped]
import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config

# --- a tiny ASGI layer ----------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    http_version: str
    base: str  # scheme://host:port as the server sees itself


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any, **headers: str) -> Reply:
        return cls(
            status, json.dumps(value).encode(), {"content-type": "application/json", **headers}
        )


Handler = Callable[[Request], Reply]


def asgi(handler: Handler) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        host, port = scope["server"]
        request = Request(
            method=scope["method"],
            path=scope["path"],
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
            http_version=scope["http_version"],
            base=f"{scope['scheme']}://{host}:{port}",
        )
        reply = handler(request)
        headers = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    return app


@contextmanager
def served(
    handler: Handler, cert: trustme.LeafCert, tmp: Path, *, alpn: list[str]
) -> Iterator[str]:
    """Serve ``handler`` over TLS on 127.0.0.1 in a thread; yields ``https://127.0.0.1:<port>``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    pem = tmp / f"server-{port}.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn's socket from now on
    config.certfile = config.keyfile = str(pem)
    config.alpn_protocols = alpn
    config.keep_alive_timeout = 3600
    config.graceful_timeout = 1
    config.errorlog = None
    config.accesslog = None
    loop = asyncio.new_event_loop()
    shutdown = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve(asgi(handler), config, shutdown_trigger=shutdown.wait))  # type: ignore[arg-type]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(shutdown.set)
        thread.join(15)
        if not thread.is_alive():
            loop.close()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Armed:
    """One failure the next request for a token gets."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


# --- APNs -------------------------------------------------------------------------------------


@dataclass
class ApnsAccount:
    team_id: str
    key_id: str
    topic: str
    pem: str  # the .p8 content
    public_key: ec.EllipticCurvePublicKey

    @classmethod
    def new(cls, topic: str = "org.courier.patient") -> ApnsAccount:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return cls(
            team_id=secrets.token_hex(5).upper(),
            key_id=secrets.token_hex(5).upper(),
            topic=topic,
            pem=pem,
            public_key=key.public_key(),
        )

    def data(self) -> dict[str, str]:
        return {
            "key": self.pem,
            "key-id": self.key_id,
            "team-id": self.team_id,
            "topic": self.topic,
        }


APNS_HEX = re.compile(r"[0-9a-f]{64}")
PUSH_TYPES = {"alert", "background", "voip", "complication", "fileprovider", "mdm", "location"}


@dataclass
class ApnsReceived:
    gateway: str
    token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    claims: dict[str, Any]
    authorization: str
    http_version: str


@dataclass
class FakeApns:
    accounts: dict[str, ApnsAccount] = field(default_factory=dict)  # by key id
    received: list[ApnsReceived] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    armed: dict[str, Armed] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)  # provider tokens APNs calls expired
    expire_all: bool = False  # every provider token is refused as expired (a skewed clock)
    provider_tokens: list[str] = field(default_factory=list)  # every one presented
    production_url: str = ""
    sandbox_url: str = ""

    def add(self, account: ApnsAccount) -> ApnsAccount:
        self.accounts[account.key_id] = account
        return account

    def to(self, token: str) -> list[ApnsReceived]:
        return [r for r in self.received if r.token == token]

    def handler(self, gateway: str) -> Handler:
        def handle(request: Request) -> Reply:
            return self.handle(gateway, request)

        return handle

    def handle(self, gateway: str, request: Request) -> Reply:
        def error(status: int, reason: str, **extra: Any) -> Reply:
            return Reply.json(status, {"reason": reason, **extra})

        h = request.headers
        if request.http_version != "2":
            return error(400, "BadPath")
        match = re.fullmatch(r"/3/device/([^/]+)", request.path)
        if match is None:
            return error(404, "BadPath")
        if request.method != "POST":
            return error(405, "MethodNotAllowed")
        token = match.group(1)
        authorization = h.get("authorization", "")
        if not authorization.startswith("bearer "):
            return error(403, "MissingProviderToken")
        provider_token = authorization.removeprefix("bearer ")
        self.provider_tokens.append(provider_token)
        try:
            header = jwt.get_unverified_header(provider_token)
        except jwt.PyJWTError:
            return error(403, "InvalidProviderToken")
        account = self.accounts.get(str(header.get("kid")))
        if header.get("alg") != "ES256" or account is None:
            return error(403, "InvalidProviderToken")
        try:
            claims = jwt.decode(
                provider_token,
                account.public_key,
                algorithms=["ES256"],
                issuer=account.team_id,
                options={"require": ["iss", "iat"]},
            )
        except jwt.PyJWTError:
            return error(403, "InvalidProviderToken")
        stale = time.time() - claims["iat"] > 3600
        if self.expire_all or stale or provider_token in self.expired:
            return error(403, "ExpiredProviderToken")
        topic = h.get("apns-topic")
        if not topic:
            return error(400, "MissingTopic")
        if topic != account.topic:
            return error(400, "TopicDisallowed")
        push_type = h.get("apns-push-type", "alert")
        if push_type not in PUSH_TYPES:
            return error(400, "InvalidPushType")
        priority = h.get("apns-priority", "10")
        if priority not in {"1", "5", "10"} or (push_type == "background" and priority != "5"):
            return error(400, "BadPriority")
        if "apns-id" in h:
            try:
                uuid.UUID(h["apns-id"])
            except ValueError:
                return error(400, "BadMessageId")
        if "apns-expiration" in h and not h["apns-expiration"].isdigit():
            return error(400, "BadExpirationDate")
        if len(h.get("apns-collapse-id", "").encode()) > 64:
            return error(400, "BadCollapseId")
        if len(request.body) > 4096:
            return error(413, "PayloadTooLarge")
        try:
            payload = json.loads(request.body)
        except ValueError:
            return error(400, "PayloadEmpty")
        aps = payload.get("aps") if isinstance(payload, dict) else None
        if not isinstance(aps, dict):
            return error(400, "PayloadEmpty")
        if push_type == "background" and aps.get("content-available") != 1:
            return error(400, "PayloadEmpty")
        if push_type == "alert" and not ({"alert", "badge", "sound"} & aps.keys()):
            return error(400, "PayloadEmpty")
        if not APNS_HEX.fullmatch(token.lower()):
            return error(400, "BadDeviceToken")
        armed = self.armed.pop(token, None)
        if armed is not None:
            return Reply.json(armed.status, armed.body, **armed.headers)
        if token in self.gone:
            return error(410, "Unregistered", timestamp=int(time.time() * 1000))
        apns_id = h.get("apns-id") or str(uuid.uuid4()).upper()
        self.received.append(
            ApnsReceived(
                gateway, token, dict(h), payload, claims, provider_token, request.http_version
            )
        )
        return Reply(200, b"", {"apns-id": apns_id})


# --- FCM ------------------------------------------------------------------------------------------

# The audience of every service-account assertion: Google's token endpoint, wherever it is asked.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
MESSAGE_FIELDS = {
    "token",
    "topic",
    "condition",
    "notification",
    "data",
    "android",
    "apns",
    "webpush",
    "fcm_options",
    "name",
}
ANDROID_FIELDS = {
    "collapse_key",
    "priority",
    "ttl",
    "restricted_package_name",
    "data",
    "notification",
    "fcm_options",
    "direct_boot_ok",
}
ANDROID_NOTIFICATION_FIELDS = {
    "title",
    "body",
    "icon",
    "color",
    "sound",
    "tag",
    "click_action",
    "channel_id",
    "notification_count",
    "image",
}
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class ServiceAccount:
    project_id: str
    client_email: str
    private_key_id: str
    private_pem: str
    public_key: rsa.RSAPublicKey

    @classmethod
    def new(cls, project_id: str = "courier-test") -> ServiceAccount:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        name = f"push-{secrets.token_hex(3)}"
        return cls(
            project_id=project_id,
            client_email=f"{name}@{project_id}.iam.gserviceaccount.com",
            private_key_id=secrets.token_hex(20),
            private_pem=pem,
            public_key=key.public_key(),
        )

    def info(self) -> dict[str, str]:
        """The service-account JSON file as Google's console hands it out."""
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_pem,
            "client_email": self.client_email,
            "client_id": "1" + secrets.token_hex(8),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
        }


@dataclass
class Issued:
    token: str
    account: ServiceAccount
    expires_at: float


@dataclass
class FcmReceived:
    project: str
    message: dict[str, Any]
    bearer: str


@dataclass
class FakeFcm:
    url: str = ""
    accounts: dict[str, ServiceAccount] = field(default_factory=dict)  # by client email
    issued: dict[str, Issued] = field(default_factory=dict)
    token_requests: int = 0
    token_lifetime: int = 3600
    received: list[FcmReceived] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    armed: dict[str, Armed] = field(default_factory=dict)

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def add(self, account: ServiceAccount) -> ServiceAccount:
        self.accounts[account.client_email] = account
        return account

    def revoke_all(self) -> None:
        self.issued.clear()

    def to(self, token: str) -> list[FcmReceived]:
        return [r for r in self.received if r.message.get("token") == token]

    @staticmethod
    def error(status: int, message: str, code: str | None = None, **headers: str) -> Reply:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": GOOGLE_STATUS.get(status, "UNKNOWN"),
        }
        if code:
            error["details"] = [{"@type": FCM_ERROR, "errorCode": code}]
        return Reply.json(status, {"error": error}, **headers)

    def handle(self, request: Request) -> Reply:
        if request.path == "/token":
            return self.token_endpoint(request)
        match = re.fullmatch(r"/v1/projects/([^/]+)/messages:send", request.path)
        if match is None or request.method != "POST":
            return self.error(404, "Not Found")
        return self.send(match.group(1), request)

    def token_endpoint(self, request: Request) -> Reply:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}

        def refuse(error: str, description: str) -> Reply:
            return Reply.json(400, {"error": error, "error_description": description})

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return refuse("unsupported_grant_type", "Invalid grant_type")
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return refuse("invalid_grant", "Invalid JWT")
        account = self.accounts.get(str(unverified.get("iss")))
        if account is None or header.get("kid") != account.private_key_id:
            return refuse("invalid_grant", "Invalid JWT Signature.")
        try:
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as exc:
            return refuse("invalid_grant", f"Invalid JWT: {exc}")
        if (
            claims["exp"] - claims["iat"] > 3600
            or FCM_SCOPE not in str(claims.get("scope", "")).split()
        ):
            return refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token = "ya29." + secrets.token_urlsafe(32)
        self.issued[token] = Issued(token, account, time.time() + self.token_lifetime)
        return Reply.json(
            200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    def send(self, project: str, request: Request) -> Reply:
        authorization = request.headers.get("authorization", "")
        issued = self.issued.get(authorization.removeprefix("Bearer "))
        if (
            not authorization.startswith("Bearer ")
            or issued is None
            or issued.expires_at < time.time()
        ):
            return self.error(401, "Request had invalid authentication credentials.")
        if issued.account.project_id != project:
            return self.error(403, "Permission denied on the project.", "SENDER_ID_MISMATCH")
        try:
            body = json.loads(request.body)
            message = body["message"]
        except (ValueError, KeyError, TypeError):
            return self.error(400, "Invalid JSON payload received.")
        problem = self.check(message)
        if problem:
            return self.error(400, problem, "INVALID_ARGUMENT")
        token = message["token"]
        armed = self.armed.pop(token, None)
        if armed is not None:
            return Reply.json(armed.status, armed.body, **armed.headers)
        if token in self.gone:
            return self.error(404, "Requested entity was not found.", "UNREGISTERED")
        self.received.append(FcmReceived(project, message, issued.token))
        return Reply.json(200, {"name": f"projects/{project}/messages/0:{secrets.token_hex(8)}"})

    @staticmethod
    def check(message: Any) -> str | None:
        """What FCM's request validation would refuse, if anything."""
        if not isinstance(message, dict):
            return "message must be an object"
        unknown = set(message) - MESSAGE_FIELDS
        if unknown:
            return f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r}"
        if [k for k in ("token", "topic", "condition") if k in message] != ["token"]:
            return "exactly one of token, topic, condition"
        if not isinstance(message["token"], str) or not message["token"]:
            return "The registration token is not a valid FCM registration token"
        notification = message.get("notification", {})
        if set(notification) - {"title", "body", "image"} or not all(
            isinstance(v, str) for v in notification.values()
        ):
            return "notification fields are strings"
        data = message.get("data", {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            return "Invalid value at 'message.data': values must be strings"
        if any(
            k in {"from", "notification", "message_type"} or k.startswith(("google", "gcm"))
            for k in data
        ):
            return "Invalid data payload key"
        android = message.get("android", {})
        if set(android) - ANDROID_FIELDS:
            return "Unknown name in message.android"
        if "priority" in android and android["priority"] not in {
            "normal",
            "high",
            "NORMAL",
            "HIGH",
        }:
            return "Invalid value at 'message.android.priority'"
        if "ttl" in android and not re.fullmatch(r"\d+(\.\d{1,9})?s", str(android["ttl"])):
            return "Invalid value at 'message.android.ttl'"
        note = android.get("notification", {})
        if set(note) - ANDROID_NOTIFICATION_FIELDS:
            return "Unknown name in message.android.notification"
        if "notification_count" in note and not isinstance(note["notification_count"], int):
            return "Invalid value at 'message.android.notification.notification_count'"
        apns = message.get("apns", {})
        if set(apns) - {"headers", "payload", "fcm_options", "live_activity_token"}:
            return "Unknown name in message.apns"
        if not all(isinstance(v, str) for v in apns.get("headers", {}).values()):
            return "apns headers are strings"
        webpush = message.get("webpush", {})
        if not all(isinstance(v, str) for v in webpush.get("headers", {}).values()):
            return "webpush headers are strings"
        return None


# --- Web Push -------------------------------------------------------------------------------------


@dataclass
class Subscription:
    """A browser's push subscription: what it hands the site, and what it keeps to decrypt."""

    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    server_key: str | None  # the applicationServerKey it was made with (base64url)

    @property
    def keys(self) -> dict[str, str]:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}


@dataclass
class WebReceived:
    subscription: str
    headers: dict[str, str]
    payload: dict[str, Any]
    claims: dict[str, Any]
    vapid_key: str
    body: bytes  # as it travelled (encrypted)


def vapid_pair() -> tuple[str, str]:
    """A VAPID key pair: (private key as base64url of 32 bytes, public key as base64url point)."""
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(raw), b64url(point)


@dataclass
class WebPushService:
    url: str = ""
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    received: list[WebReceived] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    armed: dict[str, Armed] = field(default_factory=dict)

    def subscribe(self, server_key: str | None) -> Subscription:
        sub_id = secrets.token_urlsafe(12)
        subscription = Subscription(
            sub_id,
            f"{self.url}/push/{sub_id}",
            ec.generate_private_key(ec.SECP256R1()),
            secrets.token_bytes(16),
            server_key,
        )
        self.subscriptions[sub_id] = subscription
        return subscription

    def by_endpoint(self, endpoint: str) -> str:
        return endpoint.rsplit("/", 1)[-1]

    def to(self, endpoint: str) -> list[WebReceived]:
        sub_id = self.by_endpoint(endpoint)
        return [r for r in self.received if r.subscription == sub_id]

    def handle(self, request: Request) -> Reply:
        match = re.fullmatch(r"/push/([^/]+)", request.path)
        if match is None or request.method != "POST":
            return Reply(404)
        subscription = self.subscriptions.get(match.group(1))
        if subscription is None or subscription.id in self.gone:
            return Reply(410 if subscription else 404)
        h = request.headers
        armed = self.armed.pop(subscription.id, None)
        if armed is not None:
            return Reply(armed.status, json.dumps(armed.body).encode(), armed.headers)
        if "ttl" not in h or not h["ttl"].isdigit():
            return Reply(400, b"TTL header required")
        if h.get("urgency", "normal") not in {"very-low", "low", "normal", "high"}:
            return Reply(400, b"bad Urgency")
        if "topic" in h and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", h["topic"]):
            return Reply(400, b"bad Topic")
        match = re.fullmatch(r"vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)", h.get("authorization", ""))
        if match is None:
            return Reply(401, b"VAPID authorization required")
        token, vapid_key = match.groups()
        if subscription.server_key is not None and vapid_key != subscription.server_key:
            return Reply(403, b"not the key the subscription was made with")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), unb64url(vapid_key)
            )
            claims = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                audience=request.base,
                options={"require": ["aud", "exp", "sub"]},
            )
        except (ValueError, jwt.PyJWTError):
            return Reply(401, b"bad VAPID token")
        if claims["exp"] > time.time() + 24 * 3600:
            return Reply(401, b"VAPID token lives too long")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return Reply(401, b"bad VAPID subject")
        if len(request.body) > 4096:
            return Reply(413, b"payload too large")
        if h.get("content-encoding") != "aes128gcm":
            return Reply(415, b"aes128gcm only")
        try:
            plain = http_ece.decrypt(
                request.body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth,
                version="aes128gcm",
            )
            payload = json.loads(plain)
        except Exception:
            return Reply(400, b"cannot decrypt")
        self.received.append(
            WebReceived(subscription.id, dict(h), payload, claims, vapid_key, request.body)
        )
        return Reply(201, b"", {"location": f"{self.url}/m/{uuid.uuid4()}"})


# --- all of them --------------------------------------------------------------------------------


@dataclass
class PushServices:
    ca_file: Path
    apns: FakeApns
    fcm: FakeFcm
    web: WebPushService

    def settings(self) -> dict[str, Any]:
        """Courier settings that point the adapters at these services."""
        return {
            "apns_url": self.apns.production_url,
            "apns_sandbox_url": self.apns.sandbox_url,
            "fcm_url": self.fcm.url,
            "fcm_token_url": self.fcm.token_url,
            "push_ca_file": self.ca_file,
            "webpush_allow_private": True,
            "webpush_vapid_subject": "mailto:push@courier.test",
        }


@contextmanager
def push_services(tmp: Path) -> Iterator[PushServices]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file = tmp / "push-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    apns, fcm, web = FakeApns(), FakeFcm(), WebPushService()
    with (
        served(apns.handler("production"), cert, tmp, alpn=["h2"]) as production,
        served(apns.handler("sandbox"), cert, tmp, alpn=["h2"]) as sandbox,
        served(fcm.handle, cert, tmp, alpn=["h2", "http/1.1"]) as fcm_url,
        served(web.handle, cert, tmp, alpn=["http/1.1"]) as web_url,
    ):
        apns.production_url, apns.sandbox_url = production, sandbox
        fcm.url, web.url = fcm_url, web_url
        yield PushServices(ca_file, apns, fcm, web)
