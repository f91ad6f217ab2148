"""Exception handlers: every error, whatever raised it, leaves in the one error body."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from courier.core.errors import ApiError, ErrorItem, error_body
from courier.core.http import unexpected_error

log = logging.getLogger("courier.errors")


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def render_error(request: Request, error: ApiError) -> Response:
    return JsonResponse(
        error_body(error, _request_id(request)), status_code=error.status, headers=error.headers
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return parts[-1] if parts else "body"


_PYDANTIC_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known attribute",
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a list",
    "date_from_datetime_parsing": "must be a date such as 2019-08-24",
    "date_parsing": "must be a date such as 2019-08-24",
    "date_type": "must be a date such as 2019-08-24",
}


def validation_items(errors: Any) -> list[ErrorItem]:
    items: list[ErrorItem] = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        where, rest = (loc[0], loc[1:]) if loc else ("body", ())
        kind = err.get("type", "")
        message = _PYDANTIC_MESSAGES.get(kind)
        if message is None:
            message = str(err.get("msg", "is invalid"))
            message = message.removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
        name = _field_name(rest) if rest else str(where)
        if where == "body":
            pointer = "/" + "/".join(str(p) for p in rest) if rest else ""
            items.append(
                ErrorItem(
                    f"{name} {message}",
                    f"invalid-{kind or 'value'}".replace("_", "-"),
                    pointer=pointer or "/",
                )
            )
        else:
            items.append(
                ErrorItem(
                    f"{name} {message}",
                    f"invalid-{kind or 'value'}".replace("_", "-"),
                    parameter=name,
                )
            )
    return items


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return render_error(request, ApiError(400, validation_items(exc.errors()), {}, True))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            item = ErrorItem(f"no route for {request.url.path}", "not-found")
        elif exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            item = ErrorItem(
                f"method {request.method} is not served on this path; allowed: "
                f"{', '.join(allowed)}",
                "method-not-allowed",
            )
        else:
            item = ErrorItem(str(exc.detail), "http-error")
        return render_error(request, ApiError(exc.status_code, [item], headers))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return render_error(request, unexpected_error(exc, _request_id(request)))


def _allowed_methods(request: Request) -> list[str]:
    """Methods some route serves on this path (routers may be nested, so ask each route)."""
    allowed: list[str] = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        probe = {**request.scope, "method": method, "type": "http"}
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed
