"""A lean HTTP/1.1 client for the benchmarks' load processes.

On a 2-core machine the load generator shares the cores with the server it measures, so
what it spends per request is taken from the server. ``httpx.AsyncClient`` spends about
1.2 to 1.5 ms of CPU per request (its models, its transport layers); this client writes a
prebuilt request on one kept-alive connection and parses the answer with ``httptools``
(llhttp, which uvicorn's ``[standard]`` extra installs): a tenth of that. It does what the
load processes need and no more: one request at a time per connection, ``Content-Length``
or chunked bodies, a new connection when the server closes one; no redirects, no cookies,
no TLS. Loopback only, as everything the benchmarks run.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import cast
from urllib.parse import urlsplit

import httptools


class WireError(Exception):
    """The connection failed, closed mid-answer, or the answer was not HTTP."""


class _Answer(asyncio.Protocol):
    """One connection: feeds what arrives to the parser, hands each complete answer to the
    request waiting for it."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.chunks: list[bytes] = []
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses, but behave as one)
        self.transport = cast(asyncio.Transport, transport)
        self.open = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(WireError(f"not an HTTP answer: {error}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(WireError(f"connection closed: {exc!r}"))

    # httptools' callbacks
    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        body, self.chunks = b"".join(self.chunks), []
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            status = self.parser.get_status_code()
            waiter.set_result((status, body, self.parser.should_keep_alive()))

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: a loopback address, or ``localhost``."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address
        return host == "localhost"


class Client:
    """One kept-alive connection to ``base_url`` (``http://127.0.0.1:PORT``), sending
    ``headers`` with every request."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"an http://host:port URL, not {base_url!r}")
        # The benchmarks send traffic to this machine's own servers only.
        if not is_loopback(parts.hostname):
            raise ValueError(f"a loopback host (127.0.0.1, ::1, localhost), not {parts.hostname!r}")
        self.host, self.port = parts.hostname, parts.port
        self.timeout = timeout
        fixed = {"host": f"{self.host}:{self.port}", **headers}
        self.head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode()
        self.answer: _Answer | None = None

    async def request(self, method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
        """The status and body of one request."""
        answer = self.answer
        if answer is None or not answer.open:
            answer = self.answer = await self._connect()
        content = body or b""
        data = b"".join(
            (
                f"{method} {url} HTTP/1.1\r\n".encode(),
                self.head,
                f"content-length: {len(content)}\r\n\r\n".encode(),
                content,
            )
        )
        waiter: asyncio.Future[tuple[int, bytes, bool]] = asyncio.get_running_loop().create_future()
        answer.waiter = waiter
        assert answer.transport is not None
        answer.transport.write(data)
        try:
            async with asyncio.timeout(self.timeout):
                status, received, keep_alive = await waiter
        except TimeoutError:
            self.close()
            raise WireError(f"no answer within {self.timeout} s") from None
        if not keep_alive:
            self.close()
        return status, received

    async def _connect(self) -> _Answer:
        loop = asyncio.get_running_loop()
        try:
            _transport, answer = await loop.create_connection(_Answer, self.host, self.port)
        except OSError as error:
            raise WireError(f"cannot connect: {error!r}") from error
        return answer

    def close(self) -> None:
        if self.answer is not None and self.answer.transport is not None:
            self.answer.transport.close()
        self.answer = None
