"""The ASGI application: conventions middleware, error handlers, every domain's routes."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

import courier.domains
from courier import __version__
from courier.config import Settings
from courier.console import install as install_console
from courier.core.db import Database
from courier.core.dispatch import install as install_route_index
from courier.core.errors import service_unavailable
from courier.core.handlers import JsonResponse, install_handlers
from courier.core.http import ConventionsMiddleware
from courier.core.idempotency import install as install_idempotency
from courier.core.key_cache import KeyCache
from courier.core.observability import REGISTRY, MetricsMiddleware
from courier.core.openapi import install as install_openapi
from courier.core.ratelimit import install as install_rate_limits
from courier.core.tenancy import mark_tenant_tables
from courier.domains.sniffers.recorder import install as install_sniffers
from courier.events.stream import install as install_event_stream
from courier.jobs.worker import install_embedded_worker
from courier.jsonapi.resource import REGISTRY as RESOURCES
from courier.jsonapi.routes import build_router
from courier.providers.common import acquire_providers, release_providers
from courier.providers.control import install_sandbox
from courier.providers.inbound import router as provider_webhooks

DESCRIPTION = """Courier: patient communications behind one JSON:API REST API.

Authenticate with `Authorization: Bearer <api key>`, HTTP Basic (key id : secret), or an
individual access token. Errors share one body (`statusCode`, `error`, `message`, `errors`).
"""

# Swagger UI 5 (renders OpenAPI 3.1), vendored from npm's swagger-ui-dist: see SOURCE.md there.
SWAGGER_UI_DIR = Path(__file__).resolve().parent / "static" / "swagger-ui"

# Paths whose request bodies are not JSON documents (e.g. raw uploads).
# The Alexa skill endpoint verifies its signature over the body exactly as sent.
# The console's forms are its own (courier/console), not JSON documents.
RAW_BODY_PREFIXES: tuple[str, ...] = (
    "/uploads/",
    "/providers/",
    "/v1/ask-entries/",
    "/console/",
)
# Carrier webhooks under /v1 (texts' status callbacks, numbers' inbound texts, the voice IVR's
# call webhook): raw form bodies.
RAW_BODY_SUFFIXES: tuple[str, ...] = ("/callback", "/inbound", "/twiml")


def load_domains() -> list[Any]:
    """Import every domain package; each registers its resources and exposes ``router``s."""
    routers: list[Any] = []
    for module in sorted(pkgutil.iter_modules(courier.domains.__path__), key=lambda m: m.name):
        for part in ("resource", "endpoints"):
            name = f"courier.domains.{module.name}.{part}"
            try:
                loaded = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise
                continue
            router = getattr(loaded, "router", None)
            if router is not None:
                routers.append(router)
    return routers


def create_app(settings: Settings | None = None, *, start_background: bool = True) -> FastAPI:
    settings = settings or Settings()
    database = Database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.shutting_down = False
        acquire_providers(settings)
        for hook in app.state.startup_hooks:
            await hook(app)
        try:
            yield
        finally:
            app.state.shutting_down = True
            try:
                for hook in reversed(app.state.shutdown_hooks):
                    await hook(app)
                await release_providers(settings)
            finally:
                await database.dispose()

    app = FastAPI(
        title="Courier API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by courier.core.openapi.install
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.key_cache = KeyCache()
    app.state.start_background = start_background
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    app.state.shutting_down = False

    install_handlers(app)
    _operational_routes(app, database)
    domain_routers = load_domains()
    mark_tenant_tables()
    api_routers = [build_router(spec) for spec in RESOURCES] + domain_routers
    app.include_router(provider_webhooks)  # signed by providers, not part of the API
    for router in api_routers:
        app.include_router(router)
    # Every API route, flat, for the contract tests that walk them all.
    app.state.api_routes = [route for router in api_routers for route in router.routes]
    for extension in EXTENSIONS:
        extension(app)

    app.add_middleware(
        ConventionsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        raw_body_prefixes=RAW_BODY_PREFIXES,
        raw_body_suffixes=RAW_BODY_SUFFIXES,
    )
    app.add_middleware(MetricsMiddleware)
    install_route_index(app)  # last: every route is added
    return app


# Cross-cutting features (rate limits, idempotency, events, jobs) install themselves here.
# Order matters for middleware: each one added wraps those before it, so the rate-limit header
# writer (installed after idempotency) also sees the responses idempotency replays.
EXTENSIONS: list[Any] = [
    install_idempotency,
    install_rate_limits,
    install_embedded_worker,
    install_event_stream,
    install_sandbox,  # /sandbox/<kind>/... for the kinds configured as sandboxes
    install_console,  # /console/: the web console (pages, fragments, live hints)
    install_sniffers,  # outermost of these: records what they answer too (e.g. 429s)
    install_openapi,  # the shared answers (errors, 304, security) on every operation
]


def _operational_routes(app: FastAPI, database: Database) -> None:
    app.mount("/docs/static", StaticFiles(directory=SWAGGER_UI_DIR), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Interactive API documentation (Swagger UI 5, reads OpenAPI 3.1), served from the
        package: nothing is fetched from elsewhere, so it works offline."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Courier API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )

    @app.get("/healthz", tags=["operations"], summary="The process is up", operation_id="healthz")
    async def healthz() -> JsonResponse:
        return JsonResponse({"status": "ok"})

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database is reachable",
        operation_id="readyz",
        responses={503: {"description": "Shutting down, or the database is unreachable"}},
    )
    async def readyz(request: Request) -> JsonResponse:
        if request.app.state.shutting_down:
            raise service_unavailable("the server is shutting down")
        try:
            await database.ping()
        except Exception as exc:
            raise service_unavailable("the database is unreachable") from exc
        return JsonResponse({"status": "ready"})

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        operation_id="metrics",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
