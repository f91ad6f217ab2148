"""What the OpenAPI document says about every operation at once.

The route factory and the hand-written endpoints describe their own successes; the answers every
operation shares are added here, once, so the document tells the truth everywhere: the one error
body of CONVENTIONS.md on every 4XX (and the 503 of an unreachable database), `304 Not Modified`
on every JSON GET (ETag / If-None-Match), and the two ways to authenticate. An optional request
body is documented as the object it must be when sent (never ``null``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.utils import create_model_field
from pydantic import BaseModel
from starlette.responses import Response
from starlette.routing import BaseRoute

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The one error body (CONVENTIONS.md, Errors)",
    "required": ["statusCode", "error", "message", "errors"],
    "properties": {
        "statusCode": {"type": "integer", "minimum": 400, "maximum": 599},
        "error": {"type": "string"},
        "message": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["status", "code", "title", "detail"],
                "properties": {
                    "status": {"type": "string"},
                    "code": {"type": "string"},
                    "title": {"type": "string"},
                    "detail": {"type": "string"},
                    "source": {
                        "type": "object",
                        "properties": {
                            "pointer": {"type": "string"},
                            "parameter": {"type": "string"},
                        },
                    },
                },
            },
        },
        "requestId": {"type": "string"},
    },
}

ERROR_CONTENT: dict[str, Any] = {
    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
}

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key's secret, the master key, or an individual access token",
    },
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "An API key: its id as the user name, its secret as the password",
    },
}

# Answered without credentials.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": ERROR_CONTENT}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional body is sent or left out, never ``null`` (a body must be a JSON object)."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) == len(branches):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """Add the shared answers and security to every operation of ``document`` (in place)."""
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = [{"bearer": []}, {"basic": []}]
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for media in operation.get("requestBody", {}).get("content", {}).values():
                if "schema" in media:
                    media["schema"] = _without_null(media["schema"])
            if path in PUBLIC_PATHS:
                operation["security"] = []
            else:
                four = responses.get("4XX", {})
                responses["4XX"] = _error_response(four.get("description", "Error"))
                responses.setdefault(
                    "503", _error_response("The database is unreachable (Retry-After)")
                )
            validation = responses.get("422", {}).get("content", {}).get("application/json", {})
            if "HTTPValidationError" in str(validation.get("schema")):
                del responses["422"]  # FastAPI's default: validation errors answer 400 here
            for status, response in responses.items():
                if str(status).startswith(("4", "5")) and not response.get("content"):
                    response["content"] = ERROR_CONTENT
            ok_content = responses.get("200", {}).get("content", {})
            if method == "get" and "application/json" in ok_content:
                responses.setdefault("304", {"description": "Not modified (If-None-Match)"})
    return document


# The route's attribute holding the response models that only describe its answers in the
# document, built when the document is (issue 17, memory): status → a function building it.
DEFERRED_MODELS = "courier_deferred_models"


def add_documented_route(
    router: APIRouter,
    path: str,
    endpoint: Callable[..., Any],
    *,
    models: Mapping[int | str, Callable[[], type[BaseModel]]],
    responses: Mapping[int | str, dict[str, Any]],
    **options: Any,
) -> None:
    """``router.add_api_route`` with ``responses={status: {"model": factory()}, **responses}``
    for each of ``models`` (status → a function returning the model), each model built only
    when the OpenAPI document is: the document is the same, and a process that is never asked
    for it never builds them (nor FastAPI's fields of them)."""
    placeholders: dict[int | str, dict[str, Any]] = {status: {} for status in models}
    router.add_api_route(path, endpoint, responses={**placeholders, **responses}, **options)
    route = router.routes[-1]
    assert isinstance(route, APIRoute)
    setattr(route, DEFERRED_MODELS, dict(models))


def _api_routers(routes: Iterable[BaseRoute]) -> Iterable[tuple[APIRouter, list[BaseRoute]]]:
    """Every router included (at any depth) among ``routes``, with its own routes."""
    for route in routes:
        original = getattr(route, "original_router", None)  # FastAPI's included router
        if isinstance(original, APIRouter):
            yield original, original.routes
            yield from _api_routers(original.routes)


def _build_deferred(app: FastAPI) -> None:
    """Build the deferred response models of ``app``'s routes, as FastAPI would have at the
    route's creation (its ``responses`` entry and its response field)."""
    for router, routes in [(app.router, app.router.routes), *_api_routers(app.router.routes)]:
        changed = False
        for route in routes:
            if not isinstance(route, APIRoute):
                continue
            models = route.__dict__.pop(DEFERRED_MODELS, None)
            if not models:
                continue
            for status, factory in models.items():
                model = factory()
                route.responses[status]["model"] = model
                route.response_fields[status] = create_model_field(
                    name=f"Response_{status}_{route.unique_id}", type_=model, mode="serialization"
                )
            changed = True
        if changed:
            # An included router's routes are served (and documented) through copies FastAPI
            # builds once per inclusion: they are built again, with the models.
            router._mark_routes_changed()


# The application state's flag of a served worker (courier.cli.app_factory): its document is
# built by ``courier openapi`` in a process of its own (same environment, so same settings).
# Building it builds every pydantic model's schema and validator: 46 MB a worker would keep for
# as long as it lives, for one visit to /docs (issue 17, memory).
BUILT_ELSEWHERE = "openapi_built_elsewhere"
DOCUMENT_PATH = "/openapi.json"
CHILD_TIMEOUT_SECONDS = 120.0

log = logging.getLogger("courier.openapi")


async def built_elsewhere() -> bytes | None:
    """The document as ``courier openapi`` prints it from this process's environment, as
    compact JSON; None (logged) if that process failed or took too long."""
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "courier.cli",
            "openapi",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError:
        log.warning("could not start courier openapi; building the document here", exc_info=True)
        return None
    try:
        async with asyncio.timeout(CHILD_TIMEOUT_SECONDS):
            out, err = await child.communicate()
    except TimeoutError:
        if child.returncode is None:
            child.kill()
        await child.wait()
        log.warning("courier openapi took too long; building the document here")
        return None
    except BaseException:  # cancelled: the child does not outlive the request
        if child.returncode is None:
            child.kill()
        raise
    if child.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        log.warning("courier openapi failed (%s); building the document here", " | ".join(tail))
        return None
    try:
        return orjson.dumps(orjson.loads(out))
    except orjson.JSONDecodeError:
        log.warning("courier openapi printed no JSON document; building the document here")
        return None


def install(app: FastAPI) -> None:
    """Serve the finished document at ``/openapi.json`` (built once, then cached; in a process
    of its own when ``app.state`` says :data:`BUILT_ELSEWHERE`)."""

    served: list[bytes] = []
    building = asyncio.Lock()

    async def document(_request: Request) -> Response:
        if not served:
            async with building:
                if not served:
                    body = None
                    if getattr(app.state, BUILT_ELSEWHERE, False):
                        body = await built_elsewhere()
                    served.append(body if body is not None else orjson.dumps(app.openapi()))
        return Response(served[0], media_type="application/json")

    app.add_route(DOCUMENT_PATH, document, include_in_schema=False)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _build_deferred(app)
            app.openapi_schema = finish(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
