"""One ASGI layer writes the response headers of every feature that adds some (issue 17): the
rate-limit headers and the console's security headers, in the order the features were
installed, and leaves a response no feature changes as it was."""

from __future__ import annotations

from typing import Any

from courier.app import create_app
from courier.config import Settings
from courier.console import console_headers
from courier.core.http import Headers, Message, ResponseHeadersMiddleware, Scope
from courier.core.ratelimit import rate_limit_headers


def test_the_app_has_one_header_layer_for_rate_limits_and_the_console() -> None:
    app = create_app(Settings(), start_background=False)
    layers = [m for m in app.user_middleware if m.cls is ResponseHeadersMiddleware]
    assert len(layers) == 1
    assert layers[0].kwargs["rewrites"] == [rate_limit_headers, console_headers]


async def _answer(rewrites: list[Any], path: str) -> list[Message]:
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        scope["state"]["seen"] = True
        await send(start)
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    layer = ResponseHeadersMiddleware(app, rewrites=rewrites)
    await layer({"type": "http", "path": path, "state": {}}, None, send)  # type: ignore[arg-type]
    return sent


async def test_rewrites_apply_in_order_on_the_path_the_request_arrived_with() -> None:
    def first(scope: Scope, path: str, headers: Headers) -> Headers:
        return [*headers, (b"x-first", path.encode())]

    def second(scope: Scope, path: str, headers: Headers) -> Headers:
        assert scope["state"]["seen"]
        return [(k, v) for k, v in headers if k != b"x-a"] + [(b"x-second", b"2")]

    sent = await _answer([first, second], "/v1/things/")
    assert sent[0]["headers"] == [(b"x-first", b"/v1/things/"), (b"x-second", b"2")]
    assert sent[1] == {"type": "http.response.body", "body": b"{}"}


async def test_a_response_no_rewrite_changes_is_sent_as_it_was() -> None:
    sent = await _answer([lambda scope, path, headers: None], "/healthz")
    assert sent[0] == {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]}
