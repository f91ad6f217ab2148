"""The recorder: an ASGI middleware that logs the requests of sniffed credentials.

Cost. The active sniffers of every organization are kept in memory for a few seconds
(:data:`CACHE_SECONDS`; a sniffer created or deleted in this process is seen at once, other
replicas see it within that time). With no active sniffer the middleware only looks at that
cache. With some, it first guesses from the ``Authorization`` header, without any database
work, whether the request could be a sniffed one (the subject of an individual token, the key
id of Basic credentials, the hash of a Bearer key), and only then captures bodies. The verified
principal (``request.state.principal``, set by authentication) decides in the end.

Safety. Recording never changes the response, and never breaks it: the log rows are written
after the response has been sent, in a session of their own; any error is logged (without
patient data) and swallowed. Requests to the sniffers API itself are never recorded, so reading
the logs does not record them again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from fastapi import FastAPI

from courier.core.auth import Principal, PrincipalKind
from courier.core.db import Database
from courier.core.http import ASGIApp, Message, Receive, Scope, Send
from courier.core.time import utcnow
from courier.domains.sniffers.redaction import redact_body, redact_query, truncate
from courier.domains.sniffers.repository import active_sniffers
from courier.models.sniffer import SnifferLog

log = logging.getLogger("courier.sniffers")

CACHE_SECONDS = 5.0
CAPTURE_BYTES = 64 * 1024  # parsed for field-by-field redaction; kept: 8 KiB
NOT_RECORDED_PREFIXES = ("/v1/sniffers/", "/v2/sniffers/")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True)
class Target:
    """An active sniffer, as the recorder matches it."""

    sniffer_id: uuid.UUID
    organization_id: uuid.UUID
    valid_until: datetime
    individual_id: uuid.UUID | None  # the primary individual of the sniffed user
    api_key_id: uuid.UUID | None


@dataclass(frozen=True)
class Snapshot:
    by_individual: dict[uuid.UUID, tuple[Target, ...]] = field(default_factory=dict)
    by_key: dict[uuid.UUID, tuple[Target, ...]] = field(default_factory=dict)
    key_hashes: frozenset[str] = frozenset()  # secret hashes of sniffed keys (Bearer guess)

    @property
    def empty(self) -> bool:
        return not self.by_individual and not self.by_key

    def could_match(self, authorization: str | None) -> bool:
        """A cheap guess from the credentials, before they are verified."""
        if not authorization:
            return False
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        scheme = scheme.lower()
        if scheme == "bearer":
            if credential.count(".") == 2:
                subject = _unverified_subject(credential)
                return subject is not None and subject in self.by_individual
            digest = hashlib.sha256(credential.encode("utf-8")).hexdigest()
            return digest in self.key_hashes
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credential, validate=True).decode("utf-8")
                return uuid.UUID(decoded.partition(":")[0]) in self.by_key
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return False
        return False

    def targets(self, principal: Principal, at: datetime) -> list[Target]:
        """The active sniffers that record this (verified) principal's request."""
        found: tuple[Target, ...] = ()
        if principal.kind is PrincipalKind.INDIVIDUAL and principal.individual_id is not None:
            found = self.by_individual.get(principal.individual_id, ())
        elif principal.kind is PrincipalKind.API_KEY and principal.key_id is not None:
            found = self.by_key.get(principal.key_id, ())
        return [
            t
            for t in found
            if t.organization_id == principal.organization_id and t.valid_until > at
        ]


def _unverified_subject(token: str) -> uuid.UUID | None:
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return uuid.UUID(str(claims["sub"]))
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error, orjson.JSONDecodeError):
        return None


class SnifferRecorder:
    """This process's cache of active sniffers."""

    def __init__(self, database: Database, *, ttl: float = CACHE_SECONDS) -> None:
        self.database = database
        self.ttl = ttl
        self._snapshot = Snapshot()
        self._expires = 0.0
        self._generation = 0
        self._lock: asyncio.Lock | None = None

    def invalidate(self) -> None:
        self._generation += 1
        self._expires = 0.0

    async def snapshot(self) -> Snapshot:
        """The active sniffers, refreshed at most every ``ttl`` seconds; never raises."""
        if time.monotonic() < self._expires:
            return self._snapshot
        if self._lock is None:
            self._lock = asyncio.Lock()
        if self._lock.locked():
            return self._snapshot  # another request is refreshing: don't queue behind it
        async with self._lock:
            if time.monotonic() < self._expires:
                return self._snapshot
            generation = self._generation
            try:
                self._snapshot = await self._load()
            except Exception:
                log.exception("could not load the active sniffers; keeping the previous ones")
            if generation == self._generation:
                self._expires = time.monotonic() + self.ttl
        return self._snapshot

    async def _load(self) -> Snapshot:
        async with self.database.sessionmaker() as session:
            rows = await active_sniffers(session)
            await session.rollback()
        by_individual: dict[uuid.UUID, list[Target]] = {}
        by_key: dict[uuid.UUID, list[Target]] = {}
        hashes: set[str] = set()
        for sniffer_id, org, valid_until, key_id, individual_id, secret_hash in rows:
            target = Target(sniffer_id, org, valid_until, individual_id, key_id)
            if individual_id is not None:
                by_individual.setdefault(individual_id, []).append(target)
            if key_id is not None:
                by_key.setdefault(key_id, []).append(target)
                if secret_hash:
                    hashes.add(secret_hash)
        return Snapshot(
            {k: tuple(v) for k, v in by_individual.items()},
            {k: tuple(v) for k, v in by_key.items()},
            frozenset(hashes),
        )


async def write_logs(database: Database, rows: list[dict[str, Any]]) -> None:
    """Write recorded requests in a session of their own."""
    async with database.sessionmaker() as session:
        session.add_all([SnifferLog(**row) for row in rows])
        await session.commit()


class _Capture:
    """Up to CAPTURE_BYTES of a body, and whether that was all of it."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.overflow = False

    def add(self, chunk: bytes) -> None:
        room = CAPTURE_BYTES - self.size
        if len(chunk) > room:
            self.overflow = True
            chunk = chunk[: max(room, 0)]
        if chunk:
            self.chunks.append(chunk)
            self.size += len(chunk)

    def text(self) -> str:
        return redact_body(b"".join(self.chunks), complete=not self.overflow)


class SnifferMiddleware:
    def __init__(self, app: ASGIApp, recorder: SnifferRecorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(("/v1/", "/v2/")):
            await self.app(scope, receive, send)
            return
        try:
            snapshot = await self.recorder.snapshot()
            candidate = (
                not snapshot.empty
                and not scope["path"].startswith(NOT_RECORDED_PREFIXES)
                and snapshot.could_match(_header(scope, b"authorization"))
            )
        except Exception:
            log.exception("sniffer matching failed; the request is not recorded")
            candidate = False
        if not candidate:
            await self.app(scope, receive, send)
            return
        await self._recorded(scope, receive, send, snapshot)

    async def _recorded(
        self, scope: Scope, receive: Receive, send: Send, snapshot: Snapshot
    ) -> None:
        arrived = utcnow()
        started = time.perf_counter()
        request_body = _Capture()
        response_body = _Capture()
        response: dict[str, Any] = {"status": None, "content_type": None}

        async def capture_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.add(message.get("body", b""))
            return message

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        response["content_type"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                response_body.add(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, capture_receive, capture_send)
        except Exception:
            if response["status"] is None:
                response["status"] = 500
            await self._record(
                scope, snapshot, arrived, started, request_body, response_body, response
            )
            raise
        await self._record(scope, snapshot, arrived, started, request_body, response_body, response)

    async def _record(
        self,
        scope: Scope,
        snapshot: Snapshot,
        arrived: datetime,
        started: float,
        request_body: _Capture,
        response_body: _Capture,
        response: dict[str, Any],
    ) -> None:
        """Write the log rows (after the response went out); never raises."""
        try:
            principal = scope.get("state", {}).get("principal")
            if not isinstance(principal, Principal):
                return  # not authenticated: nobody's request
            targets = snapshot.targets(principal, arrived)
            if not targets:
                return
            duration_ms = round((time.perf_counter() - started) * 1000)
            status = int(response["status"] or 500)
            method = str(scope["method"])
            path = str(scope["path"])
            values = {
                "created_at": arrived,
                "method": method,
                "path": truncate(path, 2048),
                "query_string": redact_query(scope.get("query_string", b"").decode("latin-1")),
                "status_code": status,
                "request_body": request_body.text(),
                "response_body": response_body.text(),
                "content_type": _clip(_header(scope, b"content-type"), 255),
                "response_content_type": _clip(response["content_type"], 255),
                "request_id": _clip(scope.get("state", {}).get("request_id"), 64),
                "trace_id": _trace_id(_header(scope, b"traceparent")),
                "user_agent": _clip(_header(scope, b"user-agent"), 512),
                "duration_ms": duration_ms,
                "message": truncate(f"{method} {path} {status} in {duration_ms} ms", 512),
                "individual_id": principal.individual_id if principal.is_individual else None,
                "api_key_id": principal.key_id if principal.kind is PrincipalKind.API_KEY else None,
            }
            rows = [
                {
                    **values,
                    "id": uuid.uuid4(),
                    "organization_id": t.organization_id,
                    "sniffer_id": t.sniffer_id,
                }
                for t in targets
            ]
            await write_logs(self.recorder.database, rows)
        except Exception:
            log.exception(
                "could not record a sniffed request",
                extra={"request_id": scope.get("state", {}).get("request_id")},
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


def _trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header (version-traceid-spanid-flags)."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip().lower())
    return match.group(1) if match else None


def install(app: FastAPI) -> None:
    """Add the recorder (an ``EXTENSIONS`` entry of :mod:`courier.app`)."""
    recorder = SnifferRecorder(app.state.database)
    app.state.sniffer_recorder = recorder
    app.add_middleware(SnifferMiddleware, recorder=recorder)
