"""The one error body of CONVENTIONS.md, and the exceptions that produce it.

Services raise these; the handlers in :mod:`courier.core.handlers` render them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True)
class ErrorItem:
    detail: str
    code: str
    pointer: str | None = None
    parameter: str | None = None

    def source(self) -> dict[str, str] | None:
        if self.pointer is not None:
            return {"pointer": self.pointer}
        if self.parameter is not None:
            return {"parameter": self.parameter}
        return None


@dataclass
class ApiError(Exception):
    """An error a client should see. ``items`` become the JSON:API ``errors`` list."""

    status: int
    items: list[ErrorItem]
    headers: dict[str, str] = field(default_factory=dict)
    as_list: bool = False  # ``message`` as an array (validation errors: one per field)

    def __str__(self) -> str:
        return "; ".join(i.detail for i in self.items)


def _error(
    status: int,
    detail: str,
    code: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
    headers: dict[str, str] | None = None,
) -> ApiError:
    return ApiError(status, [ErrorItem(detail, code, pointer, parameter)], headers or {})


def bad_request(
    detail: str,
    code: str = "bad-request",
    *,
    pointer: str | None = None,
    parameter: str | None = None,
) -> ApiError:
    return _error(400, detail, code, pointer=pointer, parameter=parameter)


def invalid_attribute(name: str, detail: str, code: str = "invalid-attribute") -> ApiError:
    return ApiError(
        400, [ErrorItem(f"{name} {detail}", code, pointer=f"/data/attributes/{name}")], {}, True
    )


def invalid_parameter(name: str, detail: str, code: str = "invalid-parameter") -> ApiError:
    return ApiError(400, [ErrorItem(f"{name} {detail}", code, parameter=name)], {}, True)


WWW_AUTHENTICATE = 'Bearer realm="courier", Basic realm="courier"'


def unauthorized(detail: str = "missing or invalid credentials") -> ApiError:
    return _error(401, detail, "unauthorized", headers={"WWW-Authenticate": WWW_AUTHENTICATE})


def forbidden(detail: str = "these credentials do not allow this operation") -> ApiError:
    return _error(403, detail, "forbidden")


def not_found(what: str = "resource") -> ApiError:
    return _error(404, f"{what} not found", "not-found")


def conflict(detail: str, code: str = "conflict", pointer: str | None = None) -> ApiError:
    return _error(409, detail, code, pointer=pointer)


def precondition_failed(detail: str = "If-Match does not match the current ETag") -> ApiError:
    return _error(412, detail, "precondition-failed")


def unprocessable(detail: str, code: str = "unprocessable") -> ApiError:
    return _error(422, detail, code)


def too_many_requests(retry_after: int, headers: dict[str, str]) -> ApiError:
    return _error(
        429,
        "rate limit exceeded; retry later",
        "rate-limited",
        headers={"Retry-After": str(retry_after), **headers},
    )


def service_unavailable(detail: str, retry_after: int = 5) -> ApiError:
    return _error(503, detail, "unavailable", headers={"Retry-After": str(retry_after)})


def error_body(error: ApiError, request_id: str | None = None) -> dict[str, Any]:
    """The body shape that satisfies every seed (see CONVENTIONS.md, Errors)."""
    phrase = HTTPStatus(error.status).phrase
    messages = [i.detail for i in error.items]
    objects: list[dict[str, Any]] = []
    for item in error.items:
        obj: dict[str, Any] = {
            "status": str(error.status),
            "code": item.code,
            "title": phrase,
            "detail": item.detail,
        }
        source = item.source()
        if source:
            obj["source"] = source
        objects.append(obj)
    body: dict[str, Any] = {
        "statusCode": error.status,
        "error": phrase,
        "message": messages if (error.as_list or len(messages) > 1) else messages[0],
        "errors": objects,
    }
    if request_id is not None and error.status >= 500:
        body["requestId"] = request_id
    return body
