"""Every response the test suite sees is checked against the OpenAPI document (as Zulip does).

``ResponseChecker(app)`` finds the documented operation of a request (path template and method,
after the conventions' trailing slash and method override) and checks its response: the status
is documented (exactly, or by its ``4XX``/``5XX`` range, or ``default``), the content type is one
the operation documents for that status, and a JSON body validates against the response schema
with the OpenAPI 3.1 dialect (``openapi-schema-validator``'s ``OAS31Validator``, formats
included). Paths or methods the document does not describe are not checked.

The ``client`` fixture of ``conftest.py`` runs it on every response; a test that must see an
undocumented answer on purpose marks itself ``@pytest.mark.no_openapi_check``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS31Validator

METHODS = ("get", "post", "put", "patch", "delete")
# CONVENTIONS.md: every JSON response comes in the media type the Accept header asks for among
# these; the document names application/json for all of them.
JSON_FAMILY = {"application/json", "application/vnd.api+json", "text/json"}


class OpenAPIMismatchError(AssertionError):
    """A response the OpenAPI document does not describe."""


@dataclass
class _Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    responses: dict[str, Any]
    validators: dict[tuple[str, str], Any] = field(default_factory=dict)


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(f"^{regex}$")


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


class ResponseChecker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = document.get("components", {})
        self.operations: list[_Operation] = []
        for template, item in document.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    self.operations.append(
                        _Operation(
                            method.upper(),
                            template,
                            _compile(template),
                            item[method].get("responses", {}),
                        )
                    )
        # Literal paths before templated ones (e.g. /x/{id}/ must not swallow /x/sub/).
        self.operations.sort(key=lambda op: op.template.count("{"))

    @staticmethod
    def effective(request: httpx.Request) -> tuple[str, str]:
        """The method and path the server routes (CONVENTIONS.md: trailing slash, override)."""
        path = request.url.path
        if path.startswith(("/v1/", "/v2/")) and not path.endswith("/"):
            path += "/"
        method = request.method.upper()
        override = request.headers.get("x-http-method-override") or request.url.params.get("method")
        if method == "POST" and override:
            method = override.strip().upper()
        return method, path

    def operation(self, method: str, path: str) -> _Operation | None:
        for op in self.operations:
            if op.method == method and op.pattern.match(path):
                return op
        return None

    def _validator(self, op: _Operation, status: str, media: str, schema: dict[str, Any]) -> Any:
        key = (status, media)
        if key not in op.validators:
            # The schema's own $refs (#/components/...) resolve against this root.
            root = {**schema, "components": self.components}
            op.validators[key] = OAS31Validator(root, format_checker=OAS31Validator.FORMAT_CHECKER)
        return op.validators[key]

    def problems(self, response: httpx.Response, body: bytes | None) -> list[str]:
        """What does not match the document; empty when the response is documented."""
        method, path = self.effective(response.request)
        op = self.operation(method, path)
        if op is None:
            return []
        status = str(response.status_code)
        where = f"{method} {op.template} -> {status}"
        documented = (
            op.responses.get(status)
            or op.responses.get(f"{status[0]}XX")
            or op.responses.get("default")
        )
        if documented is None:
            return [f"{where}: status not documented (documented: {sorted(op.responses)})"]
        content: dict[str, Any] = documented.get("content") or {}
        raw_type = response.headers.get("content-type")
        if not content:
            if body and response.status_code not in (204, 304):
                return [f"{where}: documented without a body, but {raw_type} was sent"]
            return []
        if raw_type is None:
            if not body:
                return []
            return [f"{where}: no content type (documented: {sorted(content)})"]
        media = _media(raw_type)
        documented_types = {_media(name): value for name, value in content.items()}
        entry = documented_types.get(media)
        if entry is None and media in JSON_FAMILY:
            entry = next((documented_types[m] for m in JSON_FAMILY if m in documented_types), None)
        if entry is None:
            return [f"{where}: content type {raw_type} not documented ({sorted(content)})"]
        schema = entry.get("schema")
        if schema is None or body is None or media not in JSON_FAMILY:
            return []
        try:
            instance = orjson.loads(body)
        except orjson.JSONDecodeError:
            return [f"{where}: body is not JSON"]
        validator = self._validator(op, status, media, schema)
        error = best_match(validator.iter_errors(instance))
        if error is None:
            return []
        at = "/" + "/".join(str(p) for p in error.absolute_path)
        return [f"{where}: body at {at}: {error.message[:300]}"]


def needs_body(response: httpx.Response) -> bool:
    """Whether the body should be read to be checked (never an event stream)."""
    return _media(response.headers.get("content-type", "")) in JSON_FAMILY
