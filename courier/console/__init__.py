"""The web console at ``/console/``: Jinja2 pages, htmx fragments and live hints (SSE).

Everything the console serves (templates, the vendored htmx and its SSE extension) is inside
this package, so the wheel carries it and nothing is fetched from elsewhere. See
docs/CONSOLE.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.staticfiles import StaticFiles

from courier.core.http import Headers, Scope, add_header_rewrite

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


_SECURITY_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


def console_headers(_scope: Scope, path: str, headers: Headers) -> Headers | None:
    """``Cache-Control: no-store`` (and the security headers) on every console response:
    pages show patient data, which must not stay in a browser's or proxy's cache (a
    :data:`~courier.core.http.HeaderRewrite`)."""
    if not (path == PREFIX or path.startswith(PREFIX + "/")):
        return None
    kept = [(k, v) for k, v in headers if k.lower() not in _SECURITY_NAMES]
    return kept + SECURITY_HEADERS


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
    add_header_rewrite(app, console_headers)
