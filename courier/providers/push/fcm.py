"""The ``fcm`` push adapter: Firebase Cloud Messaging, HTTP v1 API.

Each send is one ``POST <COURIER_FCM_URL>/v1/projects/<project>/messages:send`` with the message
FCM documents (``token``; ``notification`` title and body; ``data`` as a map of strings;
``android``, ``apns`` and ``webpush`` overrides for badge, sound, category, collapse key, TTL
and priority), authorised by an OAuth 2.0 access token that ``google-auth`` obtains for the
organization's service account (a JWT assertion signed with its key, exchanged at
``COURIER_FCM_TOKEN_URL``). The token is kept until shortly before it expires, and obtained
anew (and the send tried once more) when FCM answers 401 ``UNAUTHENTICATED``.

Credentials (``PushCredentials.data`` of platform ``fcm``): the service-account JSON file's
content itself, or under ``service-account`` (an object or its JSON text); ``project-id``
overrides the file's ``project_id``.

Replies, classified on FCM's ``errorCode`` (else the error's ``status``): ``UNREGISTERED`` or
404 → :class:`RecipientGone`; ``UNAVAILABLE``, ``INTERNAL``, ``QUOTA_EXCEEDED`` (429, 500, 503)
→ :class:`NotSent`, honouring ``Retry-After``; ``INVALID_ARGUMENT``, ``SENDER_ID_MISMATCH``,
``THIRD_PARTY_AUTH_ERROR`` and the rest → :class:`Permanent`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import google.auth.exceptions
import google.auth.transport
import httpx
import orjson
from google.oauth2 import service_account

from courier.config import Settings
from courier.core.time import utcnow
from courier.providers.common import NotSent, Permanent, RecipientGone, SendResult
from courier.providers.push import transport
from courier.providers.push.base import MAX_PAYLOAD_BYTES, PushCredentials, PushDevice, PushMessage

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,99}")
RETRY_CODES = frozenset({"UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED"})
RETRY_STATUSES = frozenset({429, 500, 503})


# --- OAuth 2.0: google-auth's service-account flow over httpx ----------------------------------


class _Response(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class HttpxRequest(google.auth.transport.Request):
    """google-auth's transport interface over a (synchronous) httpx client."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        try:
            response = self.client.request(
                method,
                url,
                content=body,
                headers=headers,
                timeout=timeout or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise google.auth.exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return _Response(response)


@dataclass
class _Account:
    """A service account's credentials, refreshed by one thread at a time."""

    credentials: service_account.Credentials
    project: str
    lock: threading.Lock = field(default_factory=threading.Lock)


def service_account_info(credentials: PushCredentials | None) -> tuple[dict[str, Any], str]:
    """The service-account JSON and the project to send for."""
    data: Mapping[str, Any] = credentials.data if credentials else {}
    info: Any = data.get("service-account", data)
    if isinstance(info, str):
        try:
            info = orjson.loads(info)
        except orjson.JSONDecodeError as exc:
            raise Permanent("THIRD_PARTY_AUTH_ERROR", "service-account is not JSON") from exc
    if (
        credentials is None
        or credentials.platform != "fcm"
        or not isinstance(info, dict)
        or not all(isinstance(info.get(k), str) for k in ("client_email", "private_key"))
    ):
        raise Permanent(
            "THIRD_PARTY_AUTH_ERROR",
            "FCM credentials need a service account (client_email, private_key, project_id)",
        )
    project = data.get("project-id") or info.get("project_id")
    if not isinstance(project, str) or not PROJECT_ID.fullmatch(project):
        raise Permanent("INVALID_ARGUMENT", "FCM credentials need a valid project id")
    return info, project


# --- the message --------------------------------------------------------------------------------


def _string(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def message_of(token: str, message: PushMessage) -> dict[str, Any]:
    """The ``message`` object of FCM's v1 send request."""
    shown = {k: v for k, v in (("title", message.title), ("body", message.body)) if v}
    body: dict[str, Any] = {"token": token}
    if shown:
        body["notification"] = shown
    if message.data:
        body["data"] = {str(k): _string(v) for k, v in message.data.items()}
    size = len(orjson.dumps({"notification": shown, "data": body.get("data", {})}))
    if size > MAX_PAYLOAD_BYTES:
        raise Permanent("PayloadTooLarge", f"payload over {MAX_PAYLOAD_BYTES} bytes")
    urgent = bool(shown) or message.badge is not None or bool(message.sound)
    android: dict[str, Any] = {"priority": "high" if urgent else "normal"}
    android_note: dict[str, Any] = {}
    aps: dict[str, Any] = {}
    apns_headers = {"apns-priority": "10" if urgent else "5"}
    webpush_headers = {"Urgency": "high" if urgent else "normal"}
    if message.badge is not None:
        android_note["notification_count"] = message.badge
        aps["badge"] = message.badge
    if message.sound:
        android_note["sound"] = message.sound
        aps["sound"] = message.sound
    if message.category:
        android_note["click_action"] = message.category
        aps["category"] = message.category
    if not urgent:
        aps["content-available"] = 1
    if message.collapse_key:
        android["collapse_key"] = message.collapse_key
        apns_headers["apns-collapse-id"] = message.collapse_key
    if message.ttl_seconds is not None:
        ttl = max(0, message.ttl_seconds)
        android["ttl"] = f"{ttl}s"
        apns_headers["apns-expiration"] = str(0 if ttl == 0 else int(utcnow().timestamp()) + ttl)
        webpush_headers["TTL"] = str(ttl)
    if android_note:
        android["notification"] = android_note
    body["android"] = android
    body["apns"] = {"headers": apns_headers, "payload": {"aps": aps}}
    body["webpush"] = {"headers": webpush_headers}
    return body


# --- the adapter -------------------------------------------------------------------------------


class FcmPush:
    """Sends to FCM registration tokens (Android, and iOS and web apps using Firebase)."""

    name = "fcm"
    platforms: frozenset[str] = frozenset({"fcm"})

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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
        self._token_client = httpx.Client(
            verify=tls,
            timeout=settings.push_timeout_seconds,
            trust_env=False,
            follow_redirects=False,
        )
        self._accounts: dict[str, _Account] = {}

    # --- access tokens ---------------------------------------------------------------------

    def account(self, credentials: PushCredentials | None) -> _Account:
        info, project = service_account_info(credentials)
        # The account's identity and key (not the whole file, whose other fields may vary).
        identity = [info["client_email"], info.get("private_key_id"), info["private_key"], project]
        fingerprint = hashlib.sha256(orjson.dumps(identity)).hexdigest()
        found = self._accounts.get(fingerprint)
        if found is None:
            try:
                google_credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                    {**info, "token_uri": self.settings.fcm_token_url}, scopes=[SCOPE]
                )
            except (ValueError, TypeError, KeyError) as exc:
                raise Permanent(
                    "THIRD_PARTY_AUTH_ERROR", f"the FCM service account is unusable: {exc}"
                ) from exc
            found = self._accounts[fingerprint] = _Account(google_credentials, project)
        return found

    def _refresh(self, account: _Account, rejected: str | None) -> str:
        """(In a thread.) The account's access token: the kept one while valid and not the
        one FCM just ``rejected``, else a new one from the token endpoint."""
        with account.lock:
            credentials = account.credentials
            if not credentials.valid or (rejected and credentials.token == rejected):
                credentials.refresh(HttpxRequest(self._token_client))  # type: ignore[no-untyped-call]
            return str(credentials.token)

    async def access_token(self, account: _Account, *, rejected: str | None = None) -> str:
        credentials = account.credentials
        if credentials.valid and credentials.token != rejected:
            return str(credentials.token)
        try:
            return await asyncio.to_thread(self._refresh, account, rejected)
        except google.auth.exceptions.RefreshError as exc:
            details = exc.args[1] if len(exc.args) > 1 else None
            code = details.get("error") if isinstance(details, dict) else None
            message = f"the OAuth token endpoint refused the service account: {exc.args[0]}"
            if exc.retryable:
                raise NotSent(message, code=str(code or "oauth-unavailable")) from exc
            raise Permanent(str(code or "THIRD_PARTY_AUTH_ERROR"), message) from exc
        except google.auth.exceptions.TransportError as exc:
            raise NotSent(f"the OAuth token endpoint is unreachable: {exc}") from exc

    # --- sending -------------------------------------------------------------------------------

    async def send(
        self,
        device: PushDevice,
        message: PushMessage,
        *,
        delivery_id: uuid.UUID,
        credentials: PushCredentials | None = None,
    ) -> SendResult:
        if device.platform != "fcm":
            raise Permanent("unsupported-platform", f"FCM cannot send to {device.platform!r}")
        if not device.token:
            raise RecipientGone("UNREGISTERED", "empty registration token")
        account = self.account(credentials)
        body = orjson.dumps({"message": message_of(device.token, message)})
        base = self.settings.fcm_url.rstrip("/")
        url = f"{base}/v1/projects/{account.project}/messages:send"
        client = self.clients.get(base)

        async def post(token: str) -> httpx.Response:
            headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
            return await transport.call(
                "FCM", functools.partial(client.post, url, content=body, headers=headers)
            )

        token = await self.access_token(account)
        response = await post(token)
        if response.status_code == 401 and error_code(response) == "UNAUTHENTICATED":
            # FCM no longer takes the kept token: a new one, and the send once more.
            response = await post(await self.access_token(account, rejected=token))
        if response.status_code == 200:
            try:
                name = orjson.loads(response.content).get("name")
            except (orjson.JSONDecodeError, AttributeError):
                name = None
            return SendResult(
                vendor_id=str(name or delivery_id), vendor_status="accepted", accepted_at=utcnow()
            )
        raise classify(response)

    async def close(self) -> None:
        await self.clients.close()
        self._token_client.close()


def error_code(response: httpx.Response) -> str:
    """FCM's ``errorCode`` detail, else the error's canonical ``status``, else the HTTP one."""
    try:
        error = orjson.loads(response.content).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    for detail in error.get("details") or []:
        is_fcm = isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE
        if is_fcm and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status") or response.status_code)


def classify(response: httpx.Response) -> Exception:
    """What an FCM error reply means for the delivery."""
    status, code = response.status_code, error_code(response)
    message = f"FCM answered {status} {code}"
    if code == "UNREGISTERED" or status == 404:
        return RecipientGone(code, message)
    if code in RETRY_CODES or status in RETRY_STATUSES:
        return NotSent(message, retry_after=transport.retry_after(response), code=code)
    return Permanent(code, message)
