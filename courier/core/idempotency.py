"""``Idempotency-Key`` on POST: a retried request replays the first response (CONVENTIONS.md).

How a key is used, per credential (the authenticated principal) and key string:

1. Before the request runs, a claim row is inserted and committed in its own short transaction.
   The unique constraint on (scope, key) decides a race: exactly one request holds the claim,
   with a random lease token; the others wait for its response and replay it.
2. The request's own transaction marks the claim ``committed`` just before it commits
   (``before_commit``), and only while the lease is still its own; so the change and the marker
   land together or not at all, and a request whose claim was taken over cannot commit.
3. Once the response has been sent, it is stored (status, content type, body) and the key is
   complete. Later requests with the same key and body replay it with ``Idempotent-Replayed``.

A 5xx, 401 or 429 (nothing happened, the retry should run) releases an uncommitted claim. A claim
neither committed nor complete whose lease is older than ``lease`` belonged to a request that died
before its change committed, so another request may take it over. Keys live 24 hours.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import anyio
import orjson
from fastapi import FastAPI, Request
from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal, authenticate
from courier.core.db import Database, before_commit
from courier.core.errors import (
    ApiError,
    ErrorItem,
    bad_request,
    conflict,
    error_body,
    unprocessable,
)
from courier.core.handlers import render_error
from courier.core.http import ASGIApp, Message, Receive, Scope, Send
from courier.core.ratelimit import chain_hook
from courier.core.time import utcnow
from courier.models.idempotency_key import IdempotencyKey

log = logging.getLogger("courier.idempotency")

HEADER = "idempotency-key"
HEADER_BYTES = HEADER.encode()
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
STATE_KEY = "idempotency_claim"
# Response headers worth replaying besides the body; the rest (request id, rate limits) are
# the new request's own.
KEPT_HEADERS = ("content-type", "location")
# Outcomes after which nothing happened and the client is expected to retry.
RELEASED_STATUSES = frozenset({401, 429})
INTERNAL_ERROR = ApiError(
    500,
    [
        ErrorItem(
            "an unexpected error occurred; quote the request id when reporting it",
            "internal-error",
        )
    ],
)


@dataclass(frozen=True)
class Claim:
    """This request holds the key."""

    id: uuid.UUID
    lease: str


@dataclass(frozen=True)
class Stored:
    """The key's request has completed: replay its response."""

    status: int
    headers: dict[str, str]
    body: bytes


def _response_lost() -> ApiError:
    return conflict(
        "the request with this Idempotency-Key made its change but its response was lost; "
        "check the resource before retrying with a new key",
        "idempotency-response-lost",
    )


def error_response(error: ApiError, request_id: str | None) -> Stored:
    """An error in the one error body, as the handlers would have rendered it."""
    return Stored(
        error.status,
        {"content-type": "application/json"},
        orjson.dumps(error_body(error, request_id)),
    )


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))  # length-prefixed: no ambiguous joins
        digest.update(part)
    return digest.hexdigest()


def credential_scope(principal: Principal) -> str:
    """Whose keys these are: each API key, each individual, the master key apart."""
    return principal.rate_key


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


class IdempotencyStore:
    def __init__(
        self,
        database: Database,
        *,
        lease: timedelta = timedelta(seconds=60),
        wait: float = 20.0,
    ) -> None:
        self.database = database
        self.lease = lease  # after this, an uncommitted claim is presumed dead
        self.wait = wait  # how long a duplicate waits for the first response (then 409)
        self._last_purge = 0.0

    async def claim(self, scope: str, key: str, print_: str) -> Claim | Stored | ApiError:
        """Hold the key, or wait for the holder's response; an error when neither is possible."""
        deadline = time.monotonic() + self.wait
        delay = 0.01
        while True:
            found = await self._try_claim(scope, key, print_)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                return conflict(
                    "a request with this Idempotency-Key is still in progress; retry later",
                    "idempotency-key-in-progress",
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _try_claim(
        self, scope: str, key: str, print_: str
    ) -> Claim | Stored | ApiError | None:
        """One attempt; None means another request holds the key right now."""
        async with self.database.sessionmaker() as session:
            stmt = select(IdempotencyKey).where(
                IdempotencyKey.scope == scope, IdempotencyKey.key == key
            )
            row = (await session.execute(stmt)).scalar_one_or_none()
            now = utcnow()
            if row is not None and row.created_at <= now - RETENTION:
                await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
                row = None
            if row is None:
                claim = Claim(uuid.uuid4(), secrets.token_hex(16))
                session.add(
                    IdempotencyKey(
                        id=claim.id,
                        scope=scope,
                        key=key,
                        fingerprint=print_,
                        lease=claim.lease,
                        created_at=now,
                        claimed_at=now,
                    )
                )
                try:
                    await session.commit()
                except IntegrityError:
                    # Another request inserted the same key first: it runs, this one waits.
                    await session.rollback()
                    return None
                await self._purge_now_and_then()
                return claim
            if row.fingerprint != print_:
                return unprocessable(
                    "this Idempotency-Key was already used with a different request",
                    "idempotency-key-reused",
                )
            if row.completed_at is not None and row.response_status is not None:
                return Stored(
                    row.response_status, row.response_headers or {}, row.response_body or b""
                )
            if row.claimed_at > now - self.lease:
                return None
            if row.committed:
                return _response_lost()
            # The holder died before its change committed: take the key over.
            lease = secrets.token_hex(16)
            taken = await session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.id == row.id,
                    IdempotencyKey.lease == row.lease,
                    IdempotencyKey.committed.is_(False),
                    IdempotencyKey.completed_at.is_(None),
                )
                .values(lease=lease, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return Claim(row.id, lease) if _rowcount(taken) == 1 else None

    async def mark_committed(self, session: AsyncSession, claim: Claim) -> None:
        """Inside the request's transaction: its change and the marker commit together."""
        marked = await session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == claim.id,
                IdempotencyKey.lease == claim.lease,
                IdempotencyKey.committed.is_(False),
                IdempotencyKey.completed_at.is_(None),
            )
            .values(committed=True)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(marked) != 1:
            raise conflict(
                "this request took too long and a retry with the same Idempotency-Key took "
                "over; nothing was changed",
                "idempotency-key-superseded",
            )

    async def finish(self, claim: Claim, response: Stored | None, request_id: str) -> None:
        """Store the response, or give the key back when the request achieved nothing.

        ``response`` is None when the request ended without a whole response (it raised, or
        was cancelled).
        """
        async with self.database.sessionmaker() as session:
            ours = (IdempotencyKey.id == claim.id, IdempotencyKey.lease == claim.lease)
            if response is None or response.status >= 500 or response.status in RELEASED_STATUSES:
                released = await session.execute(
                    delete(IdempotencyKey)
                    .where(*ours, IdempotencyKey.committed.is_(False))
                    .execution_options(synchronize_session=False)
                )
                await session.commit()
                if _rowcount(released) == 1:
                    return
                # The change committed although the request then failed: a retry must not run
                # it again, so it replays the failure (or, lacking one, says the response is
                # lost) instead.
                if response is None:
                    response = error_response(_response_lost(), request_id)
            await session.execute(
                update(IdempotencyKey)
                .where(*ours, IdempotencyKey.completed_at.is_(None))
                .values(
                    completed_at=utcnow(),
                    response_status=response.status,
                    response_headers=response.headers,
                    response_body=response.body,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    async def _purge_now_and_then(self) -> None:
        if time.monotonic() - self._last_purge < 600:
            return
        self._last_purge = time.monotonic()
        try:
            async with self.database.sessionmaker() as session:
                await session.execute(
                    delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - RETENTION)
                )
                await session.commit()
        except Exception:
            log.warning("could not purge expired idempotency keys", exc_info=True)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay_receive(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # the client's disconnect, when it comes

    return replay


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of the request header ``name`` (ASGI names are lower-case), as
    Starlette's ``Request.headers.get`` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, store: IdempotencyStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = _header(scope, HEADER_BYTES)
        if key is None:  # most posts: nothing to claim, no Request built
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        body = await _read_body(receive)
        receive = _replay_receive(body, receive)
        principal = await self._principal(request)
        if principal is None:  # the route answers 401 as usual
            await self.app(scope, receive, send)
            return
        found: Claim | Stored | ApiError
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            found = bad_request(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
                "invalid-idempotency-key",
            )
        else:
            query: bytes = scope.get("query_string", b"")
            print_ = fingerprint(scope["method"], scope["path"], query, body)
            found = await self.store.claim(credential_scope(principal), key, print_)
        if isinstance(found, Claim):
            await self._run(found, scope, receive, send)
            return
        # Answers given here, without running the route, spend the budget like any request.
        limiter = getattr(scope["app"].state, "rate_limiter", None)
        try:
            if limiter is not None:
                await limiter.hook(request, principal)
        except ApiError as exc:
            found = exc
        if isinstance(found, ApiError):
            await render_error(request, found)(scope, receive, send)
            return
        await self._replay(found, send)

    async def _principal(self, request: Request) -> Principal | None:
        settings = request.app.state.settings
        async with self.store.database.sessionmaker() as session:
            try:
                principal = await authenticate(
                    session,
                    settings,
                    request.headers.get("authorization"),
                    request.app.state.key_cache,
                )
            except ApiError:
                return None
            await session.commit()
        return principal

    async def _run(self, claim: Claim, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})[STATE_KEY] = claim
        status: int | None = None
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        complete = False

        async def capture(message: Message) -> None:
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    text = name.decode("latin-1").lower()
                    if text in KEPT_HEADERS:
                        headers[text] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        request_id: str = scope["state"].get("request_id", "")
        failure: Stored | None = None
        try:
            await self.app(scope, receive, capture)
        except Exception:
            # The server-error handler, further out, answers 500 with this very body.
            failure = error_response(INTERNAL_ERROR, request_id)
            raise
        finally:
            response = Stored(status, headers, b"".join(chunks)) if status and complete else None
            # Shielded: a client that hangs up must not leave the key held until the lease ends.
            with anyio.CancelScope(shield=True):
                await self.store.finish(claim, response or failure, request_id)

    @staticmethod
    async def _replay(stored: Stored, send: Send) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers.items()]
        headers += [
            (b"content-length", str(len(stored.body)).encode()),
            (b"idempotent-replayed", b"true"),
        ]
        await send({"type": "http.response.start", "status": stored.status, "headers": headers})
        await send({"type": "http.response.body", "body": stored.body})


def _marker_hook(store: IdempotencyStore) -> Callable[[Request, Principal], Awaitable[None]]:
    async def register(request: Request, principal: Principal) -> None:
        claim: Claim | None = request.scope.get("state", {}).get(STATE_KEY)
        session: AsyncSession | None = getattr(request.state, "session", None)
        if claim is None or session is None or session.info.get(STATE_KEY):
            return
        session.info[STATE_KEY] = True

        async def mark() -> None:
            await store.mark_committed(session, claim)

        before_commit(session, mark)

    return register


def install(app: FastAPI) -> None:
    store = IdempotencyStore(app.state.database)
    app.state.idempotency = store
    # After authentication, the request's own session learns to mark the claim at commit.
    chain_hook(app, _marker_hook(store))
    app.add_middleware(IdempotencyMiddleware, store=store)
