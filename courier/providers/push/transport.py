"""What the real push adapters share: TLS trust, HTTP clients kept per event loop, the
``Retry-After`` header, and the classification of transport failures.

A request to a push service either never left (connection refused, TLS failure, connect
timeout: :class:`NotSent`) or may have been taken (a timeout or a reset after it was written:
:class:`Ambiguous`, never resent; a push ends at ``sent`` and the delivery machine reconciles).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

import certifi
import httpx

from courier.config import Settings
from courier.providers.common import Ambiguous, NotSent

T = TypeVar("T")


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The public roots (certifi's), plus ``COURIER_PUSH_CA_FILE`` when set."""
    context = ssl.create_default_context(cafile=certifi.where())
    if settings.push_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.push_ca_file))
    return context


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the service asks us to wait (``Retry-After``: seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def call(service: str, request: Callable[[], Awaitable[T]]) -> T:
    """Run one request; translate transport failures into the kind's errors."""
    try:
        return await request()
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise NotSent(f"{service} unreachable: {exc!r}") from exc
    except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise Ambiguous(f"no answer from {service} after the request: {exc!r}") from exc
    except httpx.WriteError as exc:
        raise NotSent(f"{service}: the request could not be written: {exc!r}") from exc
    except httpx.HTTPError as exc:
        raise NotSent(f"{service}: {exc!r}") from exc


@dataclass
class ClientCache:
    """HTTP clients kept open and reused, per event loop (a connection belongs to the loop
    that opened it) and per key (a gateway, an account)."""

    make: Callable[[], httpx.AsyncClient]
    _loop: asyncio.AbstractEventLoop | None = None
    _clients: dict[Hashable, httpx.AsyncClient] = field(default_factory=dict)

    def get(self, key: Hashable) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # The clients of another (closed) loop cannot be used or closed from this one.
            self._loop, self._clients = loop, {}
        client = self._clients.get(key)
        if client is None or client.is_closed:
            client = self._clients[key] = self.make()
        return client

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()
