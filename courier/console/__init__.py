"""The web console at ``/console/``: Jinja2 pages, htmx fragments and live hints (SSE).

Everything the console serves (templates, the vendored htmx and its SSE extension) is inside
this package, so the wheel carries it and nothing is fetched from elsewhere. See
docs/CONSOLE.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent / "static"
PREFIX = "/console"

# No inline script or style anywhere in the console; htmx is told not to inject its own.
SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
        b"object-src 'none'",
    ),
]


class ConsoleHeadersMiddleware:
    """``Cache-Control: no-store`` (and the security headers) on every console response:
    pages show patient data, which must not stay in a browser's or proxy's cache."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": headers + SECURITY_HEADERS}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: Any) -> None:
    """Mount the console's routes and static files, and its response headers."""
    from courier.console import admin, operations, people, template_previews
    from courier.console.routes import router

    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.include_router(router)
    app.include_router(operations.router)
    app.include_router(people.router)
    app.include_router(template_previews.router)
    app.include_router(admin.router)
    app.add_middleware(ConsoleHeadersMiddleware)
