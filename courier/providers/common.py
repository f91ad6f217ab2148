"""What every provider kind shares: errors, results, raw webhooks, events, the registry.

A *kind* (``sms``, ``email``, ``push``, ``voice``, ``video``, ``storage``, ``speech``,
``alexa``) is a package ``courier/providers/<kind>/`` with a ``base.py`` Protocol, a
``sandbox.py`` twin and one module per real vendor. Its ``__init__.py`` declares the kind once::

    SMS: ProviderKind[SmsProvider] = ProviderKind("sms", setting="sms_provider")

    @SMS.adapter("sandbox")
    def _sandbox(settings: Settings) -> SmsProvider:
        return SandboxSms(settings)

The setting (``COURIER_SMS_PROVIDER=sandbox|twilio``) picks the adapter; adapters are built once
per process (:func:`providers_for`) and reached from a job as ``job.providers.get(SMS)``.
A provider is called only from a job, never while a request waits.

Errors a provider raises say what Courier may do next, classified on the vendor's structured
codes (never on message text):

- :class:`NotSent`: the vendor certainly did not take it (connection refused, 429, SMTP 4xx):
  retry later, possibly elsewhere.
- :class:`Ambiguous`: the request may have been taken (timeout or reset after it was written):
  never resend; reconcile with ``fetch`` or wait for the callback.
- :class:`Permanent`: it will never work (invalid number, opted out, SMTP 5xx).
- :class:`RecipientGone`: a :class:`Permanent` that also says the address is dead for good
  (APNs 410, FCM UNREGISTERED): disable it.

The sandbox control surface: a kind's sandbox declares :class:`SandboxAction` s on its
:class:`ProviderKind` (``SMS.sandbox_action(...)``); the generic layer serves each one as
``/sandbox/<kind>/<path>`` (admin credentials) and as ``courier sandbox <kind> <name>``, both
calling the same handler, and only while that kind's configured adapter is ``sandbox``.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import importlib
import logging
import pkgutil
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlencode

from pydantic import BaseModel

from courier.config import Settings

if TYPE_CHECKING:
    from courier.core.db import Database

log = logging.getLogger("courier.providers")

SANDBOX = "sandbox"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"  # `courier serve`'s default address
CALLBACK_PREFIX = "/providers"
SANDBOX_SIGNATURE_HEADER = "X-Courier-Sandbox-Signature"

# --- errors -------------------------------------------------------------------------------


class ProviderError(Exception):
    """Base of what an adapter raises; ``code`` is the vendor's structured code, if any."""

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or type(self).__name__)
        self.code = code
        self.message = message or type(self).__name__


class NotSent(ProviderError):  # noqa: N818 (the names of PROVIDERS.md)
    """The vendor did not take the request: safe to retry (after ``retry_after`` seconds)."""

    def __init__(
        self, message: str = "", *, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Ambiguous(ProviderError):  # noqa: N818
    """The vendor may have taken the request: do not resend, reconcile."""


class Permanent(ProviderError):  # noqa: N818
    """Retrying cannot help; ``code`` (the vendor's error code) is recorded on the delivery."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message, code=code)
        self.code: str = code


class RecipientGone(Permanent):
    """The address (device token, number) no longer exists: disable it."""


# --- results and events -------------------------------------------------------------------


class DeliveryStatus(enum.StrEnum):
    """Courier's delivery states; ``RANK`` orders them (terminal states share the top rank)."""

    ACCEPTED = "accepted"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return RANK[self]

    @property
    def terminal(self) -> bool:
        return RANK[self] == TERMINAL_RANK


TERMINAL_RANK = 4
RANK: dict[DeliveryStatus, int] = {
    DeliveryStatus.ACCEPTED: 0,
    DeliveryStatus.QUEUED: 1,
    DeliveryStatus.SENDING: 2,
    DeliveryStatus.SENT: 3,
    DeliveryStatus.DELIVERED: TERMINAL_RANK,
    DeliveryStatus.UNDELIVERED: TERMINAL_RANK,
    DeliveryStatus.FAILED: TERMINAL_RANK,
}


@dataclass(frozen=True)
class SendResult:
    """What a vendor answered when it took a send: its id for it and its own status word."""

    vendor_id: str
    vendor_status: str
    accepted_at: datetime


@dataclass(frozen=True)
class VendorStatus:
    """What ``fetch`` reports about an earlier send (reconciliation)."""

    vendor_id: str
    status: DeliveryStatus
    vendor_status: str
    vendor_code: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class RawRequest:
    """A vendor's webhook as received, for ``verify`` and ``parse``.

    ``url`` is the public URL the vendor called, built from ``COURIER_PUBLIC_URL`` and the
    path and query (never from ``Host`` or ``X-Forwarded-*``, which a forger controls).
    ``headers`` have lower-case names; ``form`` holds the form-encoded parameters in order
    (empty for other bodies).
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    form: Sequence[tuple[str, str]] = ()
    hook: str = ""  # the last path segment: /providers/<kind>/<hook> (status, inbound ...)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def form_dict(self) -> dict[str, list[str]]:
        params: dict[str, list[str]] = {}
        for key, value in self.form:
            params.setdefault(key, []).append(value)
        return params

    def param(self, name: str) -> str | None:
        for key, value in self.form:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class InboundEvent:
    """One thing a vendor told us, parsed (pure) from a webhook.

    ``dedupe_key`` is unique per vendor for this event (Twilio sends no event id: e.g.
    ``MessageSid:MessageStatus``). ``delivery_id`` is Courier's id when the vendor echoed it
    (``?d=`` on the status callback URL, a Message-ID ...). ``status`` is a Courier
    :class:`DeliveryStatus` for delivery events, ``None`` for events that change no delivery
    (``sending``/``sent``/``read`` receipts are events only). ``type`` names the event for the
    apply hooks: ``status`` for delivery receipts, else a kind's own (``message``, ``bounce``).
    """

    dedupe_key: str
    vendor_id: str
    delivery_id: uuid.UUID | None
    status: DeliveryStatus | None
    vendor_code: str | None
    occurred_at: datetime | None
    raw: dict[str, Any]
    type: str = "status"
    vendor_status: str | None = None


# --- what every adapter offers ---------------------------------------------------------------


@runtime_checkable
class Provider(Protocol):
    """The part of every adapter the generic layer uses (webhooks, registry)."""

    name: str

    def verify(self, request: RawRequest) -> bool:
        """True when the webhook carries this vendor's valid signature."""
        ...

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        """The events a verified webhook reports (pure: no I/O)."""
        ...


# --- the sandbox control surface -----------------------------------------------------------


@dataclass
class SandboxContext:
    """What a sandbox control handler gets, whether called over HTTP or from the CLI."""

    settings: Settings
    database: Database
    adapter: Any  # the kind's configured (sandbox) adapter


SandboxHandler = Callable[[SandboxContext, Any], Awaitable[Any]]


@dataclass(frozen=True)
class SandboxAction:
    """One control of a kind's sandbox: served as ``<method> /sandbox/<kind>/<path>`` and as
    ``courier sandbox <kind> <name> --<param> ...``. ``params`` (a pydantic model) is the JSON
    body (POST) or the query (GET), and the CLI options; the handler's JSON-able result is
    the response's ``data`` and the CLI's output."""

    name: str
    path: str
    method: Literal["GET", "POST"]
    params: type[BaseModel]
    handler: SandboxHandler
    summary: str


# --- kinds and their registry ---------------------------------------------------------------

P = TypeVar("P")
Factory = Callable[[Settings], Any]


class UnknownAdapterError(ValueError):
    """A kind's setting names an adapter no module registered."""


class ProviderKind(Generic[P]):
    """A kind of external system: its setting, its adapters, its sandbox controls."""

    def __init__(self, name: str, *, setting: str) -> None:
        if setting not in Settings.model_fields:
            raise ValueError(f"Settings has no field {setting!r} for provider kind {name!r}")
        self.name = name
        self.setting = setting
        self.factories: dict[str, Factory] = {}
        self.sandbox_actions: list[SandboxAction] = []
        KINDS[name] = self

    def adapter(self, name: str) -> Callable[[Callable[[Settings], P]], Callable[[Settings], P]]:
        """Register the factory of adapter ``name`` (the value of the kind's setting)."""

        def decorate(factory: Callable[[Settings], P]) -> Callable[[Settings], P]:
            self.factories[name] = factory
            return factory

        return decorate

    def adapter_in(self, name: str, target: str) -> None:
        """Register adapter ``name`` as ``"package.module:Class"``, imported when it is first
        built: a process loads a vendor's client library (twilio, google-auth, pywebpush ...)
        only when its settings choose that adapter."""
        module_name, _, attribute = target.partition(":")

        def factory(settings: Settings) -> P:
            built: P = getattr(importlib.import_module(module_name), attribute)(settings)
            return built

        self.factories[name] = factory

    def sandbox_action(
        self,
        name: str,
        *,
        path: str,
        method: Literal["GET", "POST"] = "POST",
        params: type[BaseModel],
        summary: str,
    ) -> Callable[[SandboxHandler], SandboxHandler]:
        """Declare a control of this kind's sandbox (see :class:`SandboxAction`)."""

        def decorate(handler: SandboxHandler) -> SandboxHandler:
            self.sandbox_actions.append(
                SandboxAction(name, path.strip("/"), method, params, handler, summary)
            )
            return handler

        return decorate

    def configured(self, settings: Settings) -> str:
        """The adapter name the settings choose for this kind."""
        return str(getattr(settings, self.setting))

    def is_sandbox(self, settings: Settings) -> bool:
        return self.configured(settings) == SANDBOX

    def build(self, settings: Settings) -> P:
        name = self.configured(settings)
        factory = self.factories.get(name)
        if factory is None:
            known = ", ".join(sorted(self.factories)) or "none"
            raise UnknownAdapterError(
                f"COURIER_{self.setting.upper()}={name!r} is not a {self.name} provider "
                f"(known: {known})"
            )
        adapter: P = factory(settings)
        return adapter

    def __repr__(self) -> str:
        return f"ProviderKind({self.name!r})"


KINDS: dict[str, ProviderKind[Any]] = {}


def load_provider_kinds() -> list[ProviderKind[Any]]:
    """Import every ``courier.providers.<kind>`` package (each declares its kind)."""
    import courier.providers

    for module in sorted(pkgutil.iter_modules(courier.providers.__path__), key=lambda m: m.name):
        if module.ispkg:
            importlib.import_module(f"courier.providers.{module.name}")
    return list(KINDS.values())


@dataclass
class Providers:
    """The adapters of one process, built on first use from its settings and then kept until
    :func:`close_providers`; the sandboxes' records go through one database engine of their
    own (:meth:`sandbox_database`), whatever the number of sandboxed kinds."""

    settings: Settings
    _built: dict[str, Any] = field(default_factory=dict)
    _sandbox_database: Database | None = None
    users: int = 0  # the apps running on these settings (acquire_providers)

    def get(self, kind: ProviderKind[P]) -> P:
        if kind.name not in self._built:
            self._built[kind.name] = kind.build(self.settings)
        adapter: P = self._built[kind.name]
        return adapter

    def by_name(self, kind: str) -> Any:
        """The adapter of a kind named at run time (webhooks: ``/providers/<kind>/...``)."""
        load_provider_kinds()
        found = KINDS.get(kind)
        if found is None:
            raise KeyError(kind)
        return self.get(found)

    def sandboxed(self) -> list[ProviderKind[Any]]:
        """The kinds whose configured adapter is the sandbox (their controls are served)."""
        return [kind for kind in load_provider_kinds() if kind.is_sandbox(self.settings)]

    def sandbox_database(self) -> Database:
        """The engine the sandboxes keep their records through, opened on first use: never
        the caller's session, so a sandbox reads and writes while a job's transaction is open
        and calls back into Courier holding none."""
        if self._sandbox_database is None:
            from courier.core.db import Database

            self._sandbox_database = Database(self.settings)
        return self._sandbox_database

    async def close(self) -> None:
        """Close what the adapters hold (HTTP clients, SMTP connections, a sandbox's
        callbacks still in flight), all at once and each even if another fails; then the
        sandboxes' engine. An adapter a closing callback built is closed too."""
        while self._built:
            built, self._built = list(self._built.values()), {}
            closers = [closer for a in built if (closer := getattr(a, "close", None)) is not None]
            results = await asyncio.gather(
                *(closer() for closer in closers), return_exceptions=True
            )
            for closer, result in zip(closers, results, strict=True):
                if isinstance(result, Exception):
                    log.warning(
                        "a provider adapter did not close cleanly",
                        extra={"adapter": type(getattr(closer, "__self__", closer)).__name__},
                        exc_info=result,
                    )
        database, self._sandbox_database = self._sandbox_database, None
        if database is not None:
            await database.dispose()


_PROCESS: dict[int, Providers] = {}


def providers_for(settings: Settings) -> Providers:
    """This process's adapters for ``settings`` (one :class:`Providers` per settings object)."""
    found = _PROCESS.get(id(settings))
    if found is None or found.settings is not settings:
        found = Providers(settings)
        _PROCESS[id(settings)] = found
    return found


async def close_providers(settings: Settings) -> None:
    """Close and forget this process's adapters for ``settings`` (a worker's or a command's
    end); a later :func:`providers_for` builds new ones. They are forgotten once closed, so
    that a callback finishing during the close uses them, not new ones nobody closes."""
    found = _PROCESS.get(id(settings))
    if found is None or found.settings is not settings:
        return
    await found.close()
    if _PROCESS.get(id(settings)) is found:
        del _PROCESS[id(settings)]


def acquire_providers(settings: Settings) -> Providers:
    """An app starting on ``settings``: its adapters stay open until every app using them
    has released them (two apps of one process may share a settings object)."""
    found = providers_for(settings)
    found.users += 1
    return found


async def release_providers(settings: Settings) -> None:
    """An app on ``settings`` stopping: the adapters are closed when it was the last."""
    found = _PROCESS.get(id(settings))
    if found is None or found.settings is not settings:
        return
    found.users -= 1
    if found.users <= 0:
        await close_providers(settings)


# --- URLs and the sandboxes' signature ----------------------------------------------------------


def public_base(settings: Settings) -> str:
    """Where vendors reach this Courier: ``COURIER_PUBLIC_URL``, else ``courier serve``'s
    default address (never a request's Host header)."""
    return (settings.public_url or DEFAULT_PUBLIC_URL).rstrip("/")


def callback_url(
    settings: Settings, kind: str, hook: str, *, delivery_id: uuid.UUID | None = None
) -> str:
    """The public URL of the inbound webhook ``POST /providers/<kind>/<hook>``; with a
    ``delivery_id`` it carries ``?d=<id>`` (covered by the vendor's signature)."""
    url = f"{public_base(settings)}{CALLBACK_PREFIX}/{kind}/{hook}"
    if delivery_id is not None:
        url += "?" + urlencode({"d": str(delivery_id)})
    return url


def sandbox_signing_key(settings: Settings) -> bytes:
    """The key every sandbox signs its webhooks with (``COURIER_SANDBOX_SECRET``, else derived
    from the token secret, which every process of one installation shares)."""
    if settings.sandbox_secret:
        return settings.sandbox_secret.encode()
    from courier.core.auth import token_secret

    return hmac.new(token_secret(settings).encode(), b"courier-sandbox", hashlib.sha256).digest()


def sandbox_token(
    settings: Settings, *, issuer: str, subject: str, ttl: timedelta, **claims: Any
) -> tuple[str, datetime]:
    """An access token a sandbox engine (video, voice) issues: an HS256 JWT signed with the
    sandbox key, so anyone holding that key can verify it; and when it expires."""
    import jwt

    from courier.core.time import utcnow

    now = utcnow()
    expires = now + ttl
    payload = {
        "iss": issuer,
        "sub": subject,
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        **claims,
    }
    return jwt.encode(payload, sandbox_signing_key(settings), algorithm="HS256"), expires


def check_sandbox_token(
    settings: Settings, token: str, *, issuer: str, rejected: type[Permanent] = Permanent
) -> dict[str, Any]:
    """The claims of a token :func:`sandbox_token` issued for ``issuer`` and still valid;
    else ``rejected`` with Twilio's codes (20104 expired, 20101 not valid)."""
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            sandbox_signing_key(settings),
            algorithms=["HS256"],
            issuer=issuer,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise rejected("20104", "the access token has expired") from error
    except jwt.InvalidTokenError as error:
        raise rejected("20101", "the access token is not valid") from error
    return claims


def sandbox_signature(key: bytes, url: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256 of the URL, a newline and the raw body>``."""
    mac = hmac.new(key, url.encode() + b"\n" + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def verify_sandbox_signature(key: bytes, request: RawRequest) -> bool:
    given = request.header(SANDBOX_SIGNATURE_HEADER) or ""
    return hmac.compare_digest(given, sandbox_signature(key, request.url, request.body))
