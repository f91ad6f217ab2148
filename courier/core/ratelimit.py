"""Request budgets per API key and per individual token (CONVENTIONS.md, 429).

The budget (``COURIER_RATE_LIMIT``, limits syntax such as ``600/minute`` or
``20/second;600/minute``) is spent after authentication, in ``app.state.rate_limit_hook``.
Counters live in process memory, or in Redis when ``COURIER_REDIS_URL`` is set, so that every
replica spends the same budget. Moving windows: a burst at the edge of a fixed window cannot
double the budget.

Every response to an authenticated request carries ``RateLimit-Limit``, ``RateLimit-Remaining``
and ``RateLimit-Reset`` (seconds). The hook runs inside a FastAPI dependency, which cannot touch
the response, so it leaves the headers in the request's ASGI state and
:func:`rate_limit_headers` writes them onto whatever response leaves.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

from courier.config import Settings
from courier.core.auth import Principal
from courier.core.errors import too_many_requests
from courier.core.http import Headers, Scope, add_header_rewrite

log = logging.getLogger("courier.ratelimit")

STATE_KEY = "rate_limit_headers"
HEADER_NAMES = (b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset")
DEFAULT_PREFIX = "courier"


@dataclass(frozen=True)
class Budget:
    """What one limit has left for one principal after this request."""

    limit: int
    remaining: int
    reset: int  # whole seconds until the window frees a request
    exceeded: bool

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.reset),
        }


def redis_storage_uri(redis_url: str) -> tuple[str, str]:
    """The limits storage URI for a ``redis://`` URL, and the key prefix it names.

    ``?key_prefix=NAME`` on the URL lets several deployments (or test runs) share one Redis
    without sharing budgets; the Redis client never sees that parameter.
    """
    parts = urlsplit(redis_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "key_prefix" and v), DEFAULT_PREFIX)
    rest = urlencode([(k, v) for k, v in query if k != "key_prefix"])
    scheme = parts.scheme if parts.scheme.startswith("async+") else f"async+{parts.scheme}"
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), prefix


class WindowMemory(MemoryStorage):
    """limits' in-process storage, its expired entries dropped at most once a second, inline.

    The library's own storage starts a task on every request that hands each key's entries to
    a thread (``asyncio.to_thread``) to find the expired ones: a task, a thread hand-off and a
    contended GIL per request, about 5% of a cheap request's CPU. Dropping expired entries is
    only housekeeping (the moving window compares each entry's time with the clock anyway), so
    doing it once a second on the event loop counts exactly as before."""

    PRUNE_SECONDS = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.pruned_at = 0.0

    # The name the library's ``__schedule_expiry`` has inside MemoryStorage (name mangling):
    # every hit, increment and decrement calls it.
    async def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802
        now = time.time()
        if now - self.pruned_at >= self.PRUNE_SECONDS:
            self.prune(now)

    def prune(self, now: float) -> None:
        """Drop the entries and counters that expired by ``now`` (no await: atomic on the
        event loop, as the library's locks were for)."""
        self.pruned_at = now
        for key, entries in list(self.events.items()):
            # newest first, so expiries descend: keep those still ahead of ``now``
            kept = entries[: bisect.bisect_left(entries, -now, key=lambda entry: -entry.expiry)]
            if kept:
                self.events[key] = kept
            else:
                del self.events[key]
                self.locks.pop(key, None)
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.items: list[RateLimitItem] = parse_many(settings.rate_limit)
        self.storage: Storage
        self.pool: aioredis.ConnectionPool | None = None
        if settings.redis_url:
            # Imported here: a process without Redis never loads its client (~20 MB).
            import redis.asyncio as aioredis
            from limits.aio.storage import RedisStorage

            uri, prefix = redis_storage_uri(settings.redis_url)
            # A pool of our own, so that shutdown can close its connections.
            self.pool = aioredis.ConnectionPool.from_url(uri.removeprefix("async+"))
            self.storage = RedisStorage(
                uri,
                wrap_exceptions=True,  # one except clause covers every Redis client failure
                implementation="redispy",
                key_prefix=prefix,
                connection_pool=self.pool,  # type: ignore[arg-type]  # documented option
            )
        else:
            self.storage = WindowMemory()
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.disconnect()

    async def spend(self, rate_key: str) -> Budget | None:
        """Spend one request of every limit; the tightest limit's budget (None: store down)."""
        try:
            budgets = [await self._spend_one(item, rate_key) for item in self.items]
        except StorageError:
            # Failing open: an unreachable Redis must not take the whole API down with it.
            log.warning("rate-limit storage unreachable; request not counted", exc_info=True)
            return None
        exceeded = [b for b in budgets if b.exceeded]
        if exceeded:
            return max(exceeded, key=lambda b: b.reset)
        return min(budgets, key=lambda b: (b.remaining, b.limit))

    async def _spend_one(self, item: RateLimitItem, rate_key: str) -> Budget:
        allowed = await self.strategy.hit(item, rate_key)
        stats = await self.strategy.get_window_stats(item, rate_key)
        reset = max(math.ceil(stats.reset_time - time.time()), 0)
        if not allowed:
            reset = max(reset, 1)  # "retry in 0 seconds" would invite a hot loop
        return Budget(item.amount, stats.remaining, reset, not allowed)

    async def hook(self, request: Request, principal: Principal) -> None:
        """Spend the principal's budget; 429 once it is gone. Called after authentication."""
        budget = await self.spend(principal.rate_key)
        if budget is None:
            return
        headers = budget.headers()
        request.scope.setdefault("state", {})[STATE_KEY] = headers
        if budget.exceeded:
            raise too_many_requests(budget.reset, headers)


def rate_limit_headers(scope: Scope, _path: str, headers: Headers) -> Headers | None:
    """Writes the headers the hook left in the request state onto the response (a
    :data:`~courier.core.http.HeaderRewrite`)."""
    found: dict[str, str] | None = scope.get("state", {}).get(STATE_KEY)
    if not found:
        return None
    kept = [(k, v) for k, v in headers if k.lower() not in HEADER_NAMES]
    return kept + [(k.lower().encode(), v.encode()) for k, v in found.items()]


def chain_hook(app: FastAPI, hook: Any) -> None:
    """Run ``hook`` after whatever post-authentication hook is already installed."""
    previous = getattr(app.state, "rate_limit_hook", None)
    if previous is None:
        app.state.rate_limit_hook = hook
        return

    async def chained(request: Request, principal: Principal) -> None:
        await previous(request, principal)
        await hook(request, principal)

    app.state.rate_limit_hook = chained


def install(app: FastAPI) -> None:
    limiter = RateLimiter(app.state.settings)
    app.state.rate_limiter = limiter
    # The budget is spent before any other post-authentication work: a refused request does none.
    previous = getattr(app.state, "rate_limit_hook", None)
    app.state.rate_limit_hook = None
    chain_hook(app, limiter.hook)
    if previous is not None:
        chain_hook(app, previous)
    add_header_rewrite(app, rate_limit_headers)

    async def close(_app: FastAPI) -> None:
        await limiter.close()

    app.state.shutdown_hooks.append(close)
