"""The ``amazon`` alexa adapter: Amazon's Reminders, Proactive Events and Skill Messaging REST
APIs over httpx, and Amazon's rules for skill requests.

Settings: ``COURIER_ALEXA_CLIENT_ID`` / ``COURIER_ALEXA_CLIENT_SECRET`` (the skill's Alexa
Client Id and Secret, developer console → Permissions), ``COURIER_ALEXA_LWA_URL`` (Login with
Amazon's token endpoint), ``COURIER_ALEXA_API_URL`` (the API host of the skill's region) and
``COURIER_ALEXA_EVENTS_STAGE`` (``live`` or ``development``). Tests point both URLs at a local
server that answers as Amazon does.

Tokens:

- **LWA client credentials** (``POST <lwa>`` form ``grant_type=client_credentials``,
  ``client_id``, ``client_secret``, ``scope``; answer ``{"access_token", "expires_in", ...}``),
  kept per scope until a minute before they expire (:class:`LwaTokenCache`):
  ``alexa::proactive_events`` for ``POST /v1/proactiveEvents/`` and ``alexa:skill_messaging``
  for ``POST /v1/skillmessages/users/{userId}``.
- **The user's API token** (:class:`UserApiAccess`) for ``/v1/alerts/reminders``: Amazon
  creates reminders only with the ``apiAccessToken`` of a request from that user, and updates
  them with it out of session too (Amazon's tutorial "Update a Reminder from Outside of an
  Alexa Skill Session"). When Courier holds none (or Amazon refuses the one it holds), the
  adapter asks Alexa for one through the Skill Messaging API: Alexa then sends the skill a
  ``Messaging.MessageReceived`` request carrying a fresh token, which the skill endpoint keeps
  (``courier/domains/alexa/tokens.py``); meanwhile the call fails with
  ``NotSent(code="awaiting-user-token")`` and is tried again.

Errors are classified on HTTP statuses, with the code of Amazon's body (``{"code",
"message"}``; LWA: ``{"error", "error_description"}``) kept for the record:

- no answer (refused connection, timeout, reset), 429 (``Retry-After`` honoured) and 5xx:
  :class:`NotSent`. Every call here is safe to repeat: Amazon de-duplicates proactive events on
  ``referenceId`` (a repeat answers 409, taken as accepted), updates and deletes are
  idempotent, and a reminder created twice after a lost answer is the at-least-once
  docs/ALEXA.md states.
- 401 (and 403 from the Proactive Events API, which answers 403 to a token it does not take):
  the LWA token is dropped and a new one fetched, once; refused again: ``NotSent("401")``.
- 404: ``Permanent("not-found")`` on update; a delete of a reminder already gone succeeds.
- any other 4xx: :class:`Permanent` with Amazon's code (or the status).
- LWA refusing the credentials (``invalid_client``, ``invalid_scope`` ...): :class:`Permanent`
  with LWA's error: a wrong secret does not fix itself.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from courier.config import Settings
from courier.core.time import format_timestamp, utcnow
from courier.providers.alexa.base import (
    AWAITING_USER_TOKEN,
    PROACTIVE_SCOPE,
    SKILL_MESSAGING_SCOPE,
    AlexaReminder,
    LwaTokenCache,
    ProactiveEvent,
    UserApiAccess,
)
from courier.providers.alexa.signature import SkillRequestVerifier, load_trusted_roots
from courier.providers.common import NotSent, Permanent, RawRequest, SendResult

REQUEST_TIMEOUT_SECONDS = 15.0
TOKEN_MARGIN_SECONDS = 60.0
REMINDERS_PATH = "/v1/alerts/reminders"
LIVE_EVENTS_PATH = "/v1/proactiveEvents/"
DEVELOPMENT_EVENTS_PATH = "/v1/proactiveEvents/stages/development"
SKILL_MESSAGES_PATH = "/v1/skillmessages/users/"
# Amazon's regional API hosts: a user's requests name theirs as apiEndpoint.
AMAZON_API_HOSTS = ("api.amazonalexa.com", "api.eu.amazonalexa.com", "api.fe.amazonalexa.com")
# How long the skill message asking for a user's token stays deliverable, how soon a sync
# waiting for it is tried again, and how long before the same user is asked again.
MESSAGE_EXPIRY_SECONDS = 3600
AWAIT_RETRY_SECONDS = 30.0
ASK_INTERVAL_SECONDS = 60.0
MAX_ASKED = 10_000
MAX_MESSAGE = 300


class AmazonAlexa:
    """The amazon adapter of the alexa kind."""

    name = "amazon"

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.api_url = settings.alexa_api_url.rstrip("/")
        self.tokens = LwaTokenCache(self._fetch_token, margin=TOKEN_MARGIN_SECONDS, clock=clock)
        self.skill_requests = SkillRequestVerifier(
            trusted_roots=load_trusted_roots(settings.alexa_trusted_roots)
        )
        self._clock = clock
        self._transport = transport
        self._clients: dict[int, httpx.AsyncClient] = {}  # one per event loop
        self._asked: dict[str, float] = {}  # Alexa user id → when a token was last asked for

    # --- HTTP -------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        loop = id(asyncio.get_running_loop())
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            # trust_env=False: no proxy from the environment sees the credentials.
            client = httpx.AsyncClient(
                trust_env=False,
                follow_redirects=False,
                timeout=REQUEST_TIMEOUT_SECONDS,
                transport=self._transport,
            )
            self._clients[loop] = client
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def _send(self, method: str, url: str, *, what: str, **options: Any) -> httpx.Response:
        try:
            return await self._http().request(method, url, **options)
        except httpx.TransportError as exc:  # connect, timeout, reset, protocol
            raise NotSent(
                f"{what} did not answer: {type(exc).__name__}", code="unreachable"
            ) from exc

    # --- Login with Amazon ------------------------------------------------------------------

    async def _fetch_token(self, scope: str) -> tuple[str, float]:
        """An LWA access token for ``scope`` (client credentials grant) and its lifetime."""
        client_id, secret = self.settings.alexa_client_id, self.settings.alexa_client_secret
        if not client_id or not secret:
            raise Permanent(
                "no-credentials",
                "no Alexa skill credentials: set COURIER_ALEXA_CLIENT_ID and "
                "COURIER_ALEXA_CLIENT_SECRET (developer console, Permissions)",
            )
        response = await self._send(
            "POST",
            self.settings.alexa_lwa_url,
            what="Login with Amazon",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
                "scope": scope,
            },
            headers={"Accept": "application/json"},
        )
        body = _json(response)
        if response.status_code == 200:
            token, lifetime = body.get("access_token"), body.get("expires_in")
            if (
                isinstance(token, str)
                and token
                and isinstance(lifetime, int | float)
                and not isinstance(lifetime, bool)
            ):
                return token, float(lifetime)
            raise NotSent("Login with Amazon answered without a token", code="lwa-malformed")
        error = str(body.get("error") or response.status_code)
        detail = _text(body.get("error_description")) or error
        if response.status_code == 429 or response.status_code >= 500:
            raise NotSent(
                f"Login with Amazon: {detail}", retry_after=_retry_after(response), code=error
            )
        raise Permanent(error, f"Login with Amazon refused the skill's credentials: {detail}")

    async def _with_token(
        self,
        scope: str,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        refused: tuple[int, ...] = (401,),
    ) -> httpx.Response:
        """Call the API with the scope's LWA token; a token refused (``refused`` statuses) is
        dropped and replaced once. The answer is returned as is (classify it after)."""
        response: httpx.Response | None = None
        for _ in range(2):
            token = await self.tokens.token(scope)
            response = await self._send(
                method,
                self.api_url + path,
                what=what,
                json=json,
                headers=_bearer(token),
            )
            if response.status_code not in refused:
                return response
            self.tokens.invalidate(token)
        assert response is not None
        if response.status_code == 401:
            raise NotSent(f"{what} refused a fresh LWA token twice", code="401")
        return response

    # --- the user's API token ---------------------------------------------------------------

    def _user_api(self, access: UserApiAccess) -> str:
        """The user's region host, when it is Amazon's (or the configured one), else ours."""
        try:
            parts = urlsplit(access.endpoint)
        except ValueError:
            return self.api_url
        configured = urlsplit(self.api_url)
        if (parts.scheme, parts.netloc) == (configured.scheme, configured.netloc):
            return self.api_url
        if parts.scheme == "https" and (parts.hostname or "") in AMAZON_API_HOSTS:
            return f"https://{parts.netloc}"
        return self.api_url

    async def _as_user(
        self,
        access: UserApiAccess | None,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
    ) -> httpx.Response | None:
        """Call the Reminders API with the user's token; None when there is none or Amazon
        refused it (then the caller asks for a new one)."""
        if access is None:
            return None
        response = await self._send(
            method,
            self._user_api(access) + path,
            what=what,
            json=json,
            headers=_bearer(access.token),
        )
        return None if response.status_code == 401 else response

    async def _ask_for_user_token(self, user_id: str) -> NotSent:
        """Ask Alexa (Skill Messaging API) to send the skill a request that carries the user's
        API token, at most once a minute per user; the error for the caller to raise."""
        now = self._clock()
        asked = self._asked.get(user_id)
        if asked is None or now - asked >= ASK_INTERVAL_SECONDS:
            what = "the Skill Messaging API"
            response = await self._with_token(
                SKILL_MESSAGING_SCOPE,
                "POST",
                SKILL_MESSAGES_PATH + quote(user_id, safe=""),
                what=what,
                json={
                    "data": {"courier": "api-access-token"},
                    "expiresAfterSeconds": MESSAGE_EXPIRY_SECONDS,
                },
            )
            _raise_for(response, what)
            if len(self._asked) >= MAX_ASKED:
                self._asked = {
                    u: t for u, t in self._asked.items() if now - t < ASK_INTERVAL_SECONDS
                }
            self._asked[user_id] = now
        return NotSent(
            "Amazon takes reminders only with the Alexa user's own API token; Alexa was asked "
            "for a fresh one (Skill Messaging API) and the call is tried again once it arrives",
            retry_after=AWAIT_RETRY_SECONDS,
            code=AWAITING_USER_TOKEN,
        )

    # --- Reminders API ----------------------------------------------------------------------

    async def create_reminder(
        self, reminder: AlexaReminder, *, user_id: str, access: UserApiAccess | None = None
    ) -> str:
        what = "the Reminders API"
        response = await self._as_user(
            access, "POST", REMINDERS_PATH, what=what, json=reminder.request_body(_local_now())
        )
        if response is None:
            raise await self._ask_for_user_token(user_id)
        _raise_for(response, what)
        alert_token = _json(response).get("alertToken")
        if not isinstance(alert_token, str) or not alert_token:
            raise Permanent("no-alert-token", "the Reminders API answered without an alertToken")
        return alert_token

    async def update_reminder(
        self,
        alexa_reminder_id: str,
        reminder: AlexaReminder,
        *,
        user_id: str,
        access: UserApiAccess | None = None,
    ) -> None:
        what = "the Reminders API"
        response = await self._as_user(
            access,
            "PUT",
            f"{REMINDERS_PATH}/{quote(alexa_reminder_id, safe='')}",
            what=what,
            json=reminder.request_body(_local_now()),
        )
        if response is None:
            raise await self._ask_for_user_token(user_id)
        if response.status_code == 404:
            raise Permanent("not-found", "Alexa has no such reminder for this user")
        _raise_for(response, what)

    async def delete_reminder(
        self, alexa_reminder_id: str, *, user_id: str, access: UserApiAccess | None = None
    ) -> None:
        what = "the Reminders API"
        response = await self._as_user(
            access, "DELETE", f"{REMINDERS_PATH}/{quote(alexa_reminder_id, safe='')}", what=what
        )
        if response is None:
            raise await self._ask_for_user_token(user_id)
        if response.status_code == 404:
            return  # already gone: what a delete wants
        _raise_for(response, what)

    # --- Proactive Events API ---------------------------------------------------------------

    async def send_event(self, event: ProactiveEvent, *, user_id: str | None) -> SendResult:
        now = utcnow()
        body = {
            "timestamp": format_timestamp(now),
            "referenceId": event.reference_id,
            "expiryTime": format_timestamp(event.expires_at),
            "event": {"name": event.name, "payload": dict(event.payload)},
            "localizedAttributes": [dict(a) for a in event.localized_attributes],
            "relevantAudience": (
                {"type": "Unicast", "payload": {"user": user_id}}
                if user_id
                else {"type": "Multicast", "payload": {}}
            ),
        }
        development = self.settings.alexa_events_stage == "development"
        what = "the Proactive Events API"
        response = await self._with_token(
            PROACTIVE_SCOPE,
            "POST",
            DEVELOPMENT_EVENTS_PATH if development else LIVE_EVENTS_PATH,
            what=what,
            json=body,
            refused=(401, 403),
        )
        if response.status_code == 409:
            # The same referenceId for the same audience: Amazon already took this event.
            return SendResult(event.reference_id, "duplicate", now)
        _raise_for(response, what)
        return SendResult(vendor_id=event.reference_id, vendor_status="accepted", accepted_at=now)

    # --- skill requests ---------------------------------------------------------------------

    async def verify_skill_request(self, request: RawRequest) -> Mapping[str, Any]:
        """Amazon's rules only (signature-256 under the certificate chain, 150 seconds)."""
        return await self.skill_requests.verify(request)


# --- helpers ---------------------------------------------------------------------------------


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def _local_now() -> datetime:
    """``requestTime``: Amazon's examples write it without an offset; UTC."""
    return utcnow().astimezone(UTC).replace(tzinfo=None)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _text(value: object) -> str:
    return value[:MAX_MESSAGE] if isinstance(value, str) else ""


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), if the answer gave one."""
    given = response.headers.get("retry-after", "").strip()
    if not given:
        return None
    try:
        return max(0.0, float(given))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(given)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - utcnow()).total_seconds())


def _raise_for(response: httpx.Response, what: str) -> None:
    """Nothing for a 2xx answer; else the kind's error for what Amazon answered."""
    status = response.status_code
    if 200 <= status < 300:
        return
    body = _json(response)
    code = str(body.get("code") or status)
    detail = _text(body.get("message")) or response.reason_phrase or str(status)
    message = f"{what} answered {status} {code}: {detail}"
    if status == 429 or status >= 500:
        raise NotSent(message, retry_after=_retry_after(response), code=code)
    if status == 401:
        raise NotSent(message, code="401")
    raise Permanent(code, message)
