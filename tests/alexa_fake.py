"""A local HTTP server on 127.0.0.1 that answers as Amazon's Login with Amazon token endpoint and
the Alexa Reminders, Proactive Events and Skill Messaging REST APIs do, for the amazon alexa
adapter's tests (``COURIER_ALEXA_LWA_URL=<fake.url>/auth/o2/token``,
``COURIER_ALEXA_API_URL=<fake.url>``):

- ``POST /auth/o2/token``: the client credentials grant (form ``grant_type``, ``client_id``,
  ``client_secret``, ``scope``) → ``{"access_token", "scope", "token_type", "expires_in"}``;
  wrong credentials 401 ``invalid_client``, an unknown scope 400 ``invalid_scope``.
  Tokens expire (``lwa_lifetime`` seconds) and can be revoked.
- ``/v1/alerts/reminders`` (POST, PUT, DELETE, GET ``/{alertToken}``): only with a user's API
  token (what a skill request carries as ``apiAccessToken``; :meth:`FakeAmazon.user_token`
  issues one); any other bearer 401. Bodies are checked as the API checks them (400 with
  ``{"code", "message"}``); another user's reminder or an unknown id: 404.
- ``POST /v1/proactiveEvents/`` and ``/v1/proactiveEvents/stages/development``: an LWA token
  of scope ``alexa::proactive_events`` (else 403, as the API answers a bad token); expiry 5
  minutes to 24 hours ahead; the same ``referenceId`` for the same audience again: 409; 202.
- ``POST /v1/skillmessages/users/{userId}``: an LWA token of scope ``alexa:skill_messaging``;
  202. The test then plays Alexa delivering it (a ``Messaging.MessageReceived`` request).
- Failures on demand (:meth:`FakeAmazon.fail_next`): the next matching request is answered
  with a status, Amazon's error body and, for 429, ``Retry-After``.
"""

from __future__ import annotations

import http.server
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from dateutil.rrule import rrulestr  # type: ignore[import-untyped]

PROACTIVE_SCOPE = "alexa::proactive_events"
SKILL_MESSAGING_SCOPE = "alexa:skill_messaging"
REMINDERS_SCOPE = "alexa::alerts:reminders:skill:readwrite"
SCOPES = {PROACTIVE_SCOPE, SKILL_MESSAGING_SCOPE, REMINDERS_SCOPE}
EVENT_NAME = re.compile(r"^AMAZON\.[A-Za-z]+\.[A-Za-z]+$")
Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Fault:
    path: str
    status: int
    code: str
    retry_after: str | None


@dataclass
class FakeAmazon:
    client_id: str = field(
        default_factory=lambda: "amzn1.application-oa2-client." + secrets.token_hex(16)
    )
    client_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    url: str = ""
    lwa_lifetime: int = 3600
    lwa_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    user_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    reminders: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    event_references: set[tuple[str, str]] = field(default_factory=set)
    skill_messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what the tests do as Amazon -----------------------------------------------------------

    @property
    def lwa_url(self) -> str:
        return self.url + "/auth/o2/token"

    def user_token(self, user: str, *, lifetime: float = 3600.0) -> str:
        """The API token a skill request of ``user`` would carry (``apiAccessToken``)."""
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
        with self.lock:
            self.user_tokens[token] = {"user": user, "expires": time.time() + lifetime}
        return token

    def held(self, user: str) -> list[dict[str, Any]]:
        """The reminders the user's devices hold, oldest first."""
        with self.lock:
            return [dict(r) for r in self.reminders.values() if r["user"] == user]

    def announced(self, user: str) -> list[dict[str, Any]]:
        """The proactive events announced to the user (or to everybody)."""
        with self.lock:
            return [
                e
                for e in self.events
                if e["relevantAudience"]["type"] == "Multicast"
                or e["relevantAudience"]["payload"].get("user") == user
            ]

    def lwa_issued(self) -> int:
        with self.lock:
            return len(self.lwa_tokens)

    def lwa_scopes(self) -> list[str]:
        """The scope of every LWA token issued, in order."""
        with self.lock:
            return [t["scope"] for t in self.lwa_tokens.values()]

    def lwa_valid(self) -> int:
        now = time.time()
        with self.lock:
            return sum(1 for t in self.lwa_tokens.values() if _good(t, now))

    def revoke_lwa(self) -> int:
        with self.lock:
            for held in self.lwa_tokens.values():
                held["revoked"] = True
            return len(self.lwa_tokens)

    def expire_lwa(self) -> None:
        """Every LWA token issued so far expires now (earlier than it said)."""
        with self.lock:
            for held in self.lwa_tokens.values():
                held["expires"] = time.time() - 1

    def revoke_user_tokens(self, user: str) -> None:
        with self.lock:
            for held in self.user_tokens.values():
                if held["user"] == user:
                    held["expires"] = 0.0

    def fail_next(
        self,
        status: int,
        *,
        path: str = "/v1/",
        code: str = "",
        retry_after: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests under ``path`` with ``status``."""
        with self.lock:
            for _ in range(times):
                self.faults.append(Fault(path, status, code or str(status), retry_after))

    def count(self, method: str, prefix: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))

    # --- the HTTP side ----------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        with self.lock:
            self.requests.append((method, path))
            fault = next((f for f in self.faults if path.startswith(f.path)), None)
            if fault is not None:
                self.faults.remove(fault)
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return _error(fault.status, fault.code, "failure on demand", extra)
            bearer = headers.get("authorization", "")
            token = bearer[7:] if bearer.lower().startswith("bearer ") else ""
            if path == "/auth/o2/token" and method == "POST":
                return self._token(headers, raw)
            if path.rstrip("/") == "/v1/alerts/reminders" or path.startswith(
                "/v1/alerts/reminders/"
            ):
                return self._reminders(method, path, token, raw)
            if method == "POST" and path in (
                "/v1/proactiveEvents/",
                "/v1/proactiveEvents",
                "/v1/proactiveEvents/stages/development",
            ):
                return self._event(path, token, raw)
            if method == "POST" and path.startswith("/v1/skillmessages/users/"):
                return self._skill_message(unquote(path.rsplit("/", 1)[1]), token, raw)
            return _error(404, "NOT_FOUND", f"no such resource {path}")

    def _token(self, headers: dict[str, str], raw: bytes) -> Answer:
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _lwa_error(400, "invalid_request", "the body must be form-encoded")
        form = dict(parse_qsl(raw.decode()))
        if form.get("grant_type") != "client_credentials":
            return _lwa_error(
                400, "unsupported_grant_type", "grant_type must be client_credentials"
            )
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _lwa_error(401, "invalid_client", "Client authentication failed")
        scope = form.get("scope", "")
        if scope not in SCOPES:
            return _lwa_error(400, "invalid_scope", "An unknown scope was requested")
        token = "Atc|" + secrets.token_urlsafe(32)
        self.lwa_tokens[token] = {
            "scope": scope,
            "expires": time.time() + self.lwa_lifetime,
            "revoked": False,
        }
        return _json(
            200,
            {
                "access_token": token,
                "scope": scope,
                "token_type": "bearer",
                "expires_in": self.lwa_lifetime,
            },
        )

    def _lwa_scope(self, token: str) -> str | None:
        held = self.lwa_tokens.get(token)
        return held["scope"] if held is not None and _good(held, time.time()) else None

    def _reminders(self, method: str, path: str, token: str, raw: bytes) -> Answer:
        user_token = self.user_tokens.get(token)
        if user_token is None or user_token["expires"] <= time.time():
            return _error(401, "UNAUTHORIZED", "Request is not authorized/authenticated")
        user = str(user_token["user"])
        alert_token = unquote(path.removeprefix("/v1/alerts/reminders").strip("/"))
        if method == "POST" and not alert_token:
            problem = _reminder_problem(raw)
            if problem is not None:
                return _error(400, *problem)
            alert_token = str(uuid.uuid4())
            now = _stamp()
            self.reminders[alert_token] = {
                "alertToken": alert_token,
                "user": user,
                "createdTime": now,
                "updatedTime": now,
                "status": "ON",
                "version": 1,
                **orjson.loads(raw),
            }
            return _json(200, _reminder_answer(self.reminders[alert_token]))
        held = self.reminders.get(alert_token)
        if not alert_token or held is None or held["user"] != user:
            return _error(404, "NOT_FOUND", "Reminder not found")
        if method == "GET":
            return _json(200, _reminder_answer(held))
        if method == "DELETE":
            del self.reminders[alert_token]
            return 200, {}, b""
        if method == "PUT":
            problem = _reminder_problem(raw)
            if problem is not None:
                return _error(400, *problem)
            held.update(orjson.loads(raw))
            held["version"] = int(held["version"]) + 1
            held["updatedTime"] = _stamp()
            return _json(200, _reminder_answer(held))
        return _error(405, "METHOD_NOT_ALLOWED", method)

    def _event(self, path: str, token: str, raw: bytes) -> Answer:
        if self._lwa_scope(token) != PROACTIVE_SCOPE:
            return _error(
                403, "INVALID_ACCESS_TOKEN", "The authentication token is invalid or expired"
            )
        try:
            body = orjson.loads(raw)
            stamp = _parse(body["timestamp"])
            expiry = _parse(body["expiryTime"])
            name = body["event"]["name"]
            reference = body["referenceId"]
            audience = body["relevantAudience"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return _error(400, "INVALID_REQUEST", "a required parameter is missing or malformed")
        if not isinstance(reference, str) or not 1 <= len(reference) <= 100:
            return _error(400, "INVALID_REFERENCE_ID", "referenceId is 1 to 100 characters")
        if not isinstance(name, str) or not EVENT_NAME.match(name):
            return _error(400, "INVALID_EVENT_NAME", f"{name!r} is not an event schema")
        if not timedelta(minutes=5) <= expiry - stamp <= timedelta(hours=24):
            return _error(400, "INVALID_EXPIRY", "expiryTime is 5 minutes to 24 hours ahead")
        if audience.get("type") == "Unicast" and audience.get("payload", {}).get("user"):
            target = str(audience["payload"]["user"])
        elif audience.get("type") == "Multicast":
            target = "*"
        else:
            return _error(400, "INVALID_AUDIENCE", "relevantAudience is Unicast or Multicast")
        if (target, reference) in self.event_references:
            return _error(409, "DUPLICATE_REFERENCE_ID", "this referenceId was already sent")
        self.event_references.add((target, reference))
        self.events.append({**body, "stage": "development" if "stages" in path else "live"})
        return 202, {}, b""

    def _skill_message(self, user: str, token: str, raw: bytes) -> Answer:
        if self._lwa_scope(token) != SKILL_MESSAGING_SCOPE:
            return _error(401, "UNAUTHORIZED", "The access token is invalid or expired")
        try:
            body = orjson.loads(raw)
            seconds = int(body.get("expiresAfterSeconds", 3600))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return _error(400, "INVALID_REQUEST", "the body is not a skill message")
        if not isinstance(body.get("data"), dict) or not 60 <= seconds <= 604800:
            return _error(400, "INVALID_REQUEST", "data is an object; 60 to 604800 seconds")
        self.skill_messages.append((user, body))
        return 202, {}, b""


def _hex(size: int) -> str:
    return secrets.token_hex(size)


def _good(held: dict[str, Any], now: float) -> bool:
    return not held["revoked"] and held["expires"] > now


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(text: object) -> datetime:
    if not isinstance(text, str):
        raise ValueError("not a time")
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("no offset")
    return value


def _reminder_problem(raw: bytes) -> tuple[str, str] | None:
    """What the Reminders API would refuse in this body (code, message), if anything."""
    try:
        body = orjson.loads(raw)
        datetime.fromisoformat(body["requestTime"])
        trigger = body["trigger"]
        content = body["alertInfo"]["spokenInfo"]["content"]
        push = body.get("pushNotification", {"status": "ENABLED"})["status"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return "INVALID_REQUEST", "a required parameter is missing or malformed"
    if trigger.get("type") != "SCHEDULED_ABSOLUTE":
        return "INVALID_TRIGGER", "only SCHEDULED_ABSOLUTE triggers are served here"
    try:
        scheduled = datetime.fromisoformat(str(trigger.get("scheduledTime")))
    except ValueError:
        return "INVALID_TRIGGER", "scheduledTime is a local date and time"
    if scheduled.tzinfo is not None:
        return "INVALID_TRIGGER", "scheduledTime carries no offset: timeZoneId says where"
    try:
        ZoneInfo(str(trigger.get("timeZoneId")))
    except (ZoneInfoNotFoundError, ValueError):
        return "INVALID_TIMEZONE", f"unknown time zone {trigger.get('timeZoneId')!r}"
    rules = trigger.get("recurrence", {}).get("recurrenceRules", [])
    for rule in rules:
        try:
            if "DTSTART" in str(rule).upper():
                raise ValueError(rule)
            rrulestr(str(rule), dtstart=scheduled)
        except (ValueError, TypeError):
            return "INVALID_RECURRENCE", f"not an RFC 5545 rule: {rule}"
    if not isinstance(content, list) or not content:
        return "INVALID_TEXT", "spokenInfo.content holds one entry per locale"
    for entry in content:
        text = entry.get("text") if isinstance(entry, dict) else None
        if not isinstance(text, str) or not text.strip() or len(text) > 250:
            return "INVALID_TEXT", "spoken text is 1 to 250 characters"
        if not entry.get("locale"):
            return "INVALID_TEXT", "each spoken text names its locale"
    if push not in ("ENABLED", "DISABLED"):
        return "INVALID_REQUEST", "pushNotification.status is ENABLED or DISABLED"
    return None


def _reminder_answer(held: dict[str, Any]) -> dict[str, Any]:
    return {
        "alertToken": held["alertToken"],
        "createdTime": held["createdTime"],
        "updatedTime": held["updatedTime"],
        "status": held["status"],
        "version": str(held["version"]),
        "href": f"/v1/alerts/reminders/{held['alertToken']}",
    }


def _json(status: int, body: dict[str, Any]) -> Answer:
    return status, {"Content-Type": "application/json"}, orjson.dumps(body)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    answer = _json(status, {"code": code, "message": message})
    return status, {**answer[1], **(headers or {})}, answer[2]


def _lwa_error(status: int, error: str, description: str) -> Answer:
    return _json(status, {"error": error, "error_description": description})


def start_fake_amazon() -> Iterator[FakeAmazon]:
    """Serve a :class:`FakeAmazon` on 127.0.0.1 (a generator for pytest fixtures)."""
    fake = FakeAmazon()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, headers, body = fake.handle(
                self.command,
                urlsplit(self.path).path,
                {k.lower(): v for k, v in self.headers.items()},
                raw,
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
