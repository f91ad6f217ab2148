"""A world for the provider kinds' contract tests: Courier's app (for the sandbox control
surface, over HTTP) configured with a public URL that points at a local receiver, which stands
in for Courier's webhook endpoints: it records every signed callback the sandboxes send and
answers with what a test scripted (TwiML for the voice sandbox)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from courier.app import create_app
from courier.config import Settings
from courier.providers.common import RawRequest
from tests.conftest import Org, create_org, make_settings


@dataclass
class Received:
    path: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))

    def raw(self) -> RawRequest:
        return RawRequest(
            method="POST",
            url=self.url,
            headers=self.headers,
            body=self.body,
            form=parse_qsl(self.body.decode(), keep_blank_values=True),
        )


@dataclass
class Receiver:
    base: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # path → response body (TwiML)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            path = urlsplit(self.path).path
            state.requests.append(
                Received(
                    path,
                    state.base + self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
            )
            answer = state.answers.get(path, "").encode()
            self.send_response(200)
            self.send_header("content-type", "text/xml" if answer else "text/plain")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class World:
    settings: Settings
    http: httpx.AsyncClient
    org: Org
    receiver: Receiver

    async def control(
        self, kind: str, path: str, method: str = "POST", **params: Any
    ) -> httpx.Response:
        """Act as the outside world through the sandbox control surface."""
        if method == "GET":
            return await self.http.get(
                f"/sandbox/{kind}/{path}", params=params, headers=self.org.admin
            )
        return await self.http.post(f"/sandbox/{kind}/{path}", json=params, headers=self.org.admin)

    async def act(self, kind: str, path: str, method: str = "POST", **params: Any) -> Any:
        response = await self.control(kind, path, method, **params)
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture(scope="module")
async def world(database_url: str, data_dir: Path, receiver: Receiver) -> AsyncIterator[World]:
    settings = make_settings(
        database_url, data_dir, public_url=receiver.base, sandbox_delay_seconds=0
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            yield World(settings, http, await create_org(http), receiver)
