"""HTTP conventions applied to every request, once, before routing (CONVENTIONS.md).

Request id, trailing slashes, ``?format=``, method override, content negotiation (406), body
decoding (charsets, form-encoded ``json=``, 413, 415, malformed JSON), ETag / If-None-Match.
Bodies reach the endpoints as UTF-8 ``application/json`` whatever the client sent.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import orjson

from courier.core.db import is_database_unavailable
from courier.core.errors import ApiError, ErrorItem, error_body, service_unavailable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_TYPES = ("application/json", "application/vnd.api+json", "text/json")
DEFAULT_TYPE = "application/json"
EVENT_STREAM = "text/event-stream"
# Paths that answer with Server-Sent Events (``Accept: text/event-stream``) instead of JSON.
EVENT_STREAM_PATHS = frozenset({"/v1/events/"})
CHARSETS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "iso-8859-1": "iso-8859-1",
    "latin1": "iso-8859-1",
    "latin-1": "iso-8859-1",
    "us-ascii": "ascii",
    "ascii": "ascii",
}
OVERRIDABLE = {"GET", "POST", "PUT", "PATCH", "DELETE"}
log = logging.getLogger("courier.errors")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def json_error_response(status: int, detail: str, code: str, **kw: Any) -> ApiError:
    return ApiError(
        status,
        [ErrorItem(detail, code, kw.get("pointer"), kw.get("parameter"))],
        kw.get("headers", {}),
    )


def unexpected_error(exc: Exception, request_id: str | None) -> ApiError:
    """What a client gets for an exception nobody handled (and the log line it leaves):
    503 with ``Retry-After`` when the database cannot be reached, else 500."""
    if is_database_unavailable(exc):
        log.warning(
            "database unavailable",
            extra={"request_id": request_id, "error_type": type(exc).__name__},
        )
        return service_unavailable("the database is unavailable; retry later", retry_after=5)
    log.exception("unhandled error", extra={"request_id": request_id})
    return ApiError(
        500,
        [
            ErrorItem(
                "an unexpected error occurred; quote the request id when reporting it",
                "internal-error",
            )
        ],
    )


def host_allowed(allowed_hosts: str, hostname: str | None) -> bool:
    """Whether ``hostname`` (a request's Host, without port) is one of ``allowed_hosts``."""
    host = (hostname or "").lower().rstrip(".")
    allowed = {h.strip().lower().strip("[]") for h in allowed_hosts.split(",") if h.strip()}
    return (
        "*" in allowed
        or host in allowed
        or any(p.startswith(".") and (host.endswith(p) or host == p[1:]) for p in allowed)
    )


def list_links_base(public_url: str | None, allowed_hosts: str, request_url: str) -> str:
    """What a list's ``links`` start with: the configured public URL, else the request's own
    scheme and host if its Host is allowed, else nothing (the links are relative,
    ``/v1/...?page[offset]=...``). A forged Host (``evil.example``) never becomes a link a
    client follows with its credentials; the list itself is still served."""
    if public_url:
        return public_url.rstrip("/")
    parts = urlsplit(request_url)
    if host_allowed(allowed_hosts, parts.hostname):
        return f"{parts.scheme}://{parts.netloc}"
    return ""


def link_base_url(public_url: str | None, allowed_hosts: str, request_base_url: str) -> str:
    """The base of links given to a client: the configured public URL, else the request's own
    URL if its Host is allowed. A forged Host (``evil.example``) must not turn upload and
    download links into links to another server: 400 naming the settings."""
    if public_url:
        return public_url
    if host_allowed(allowed_hosts, urlsplit(request_base_url).hostname):
        return request_base_url
    raise json_error_response(
        400,
        "the Host header names a host this server does not answer for links; set "
        "COURIER_PUBLIC_URL, or add the host to COURIER_ALLOWED_HOSTS",
        "host-not-allowed",
    )


def _parse_media(value: str) -> tuple[str, dict[str, str]]:
    main, *params = value.split(";")
    parsed: dict[str, str] = {}
    for param in params:
        key, _, val = param.partition("=")
        parsed[key.strip().lower()] = val.strip().strip('"').lower()
    return main.strip().lower(), parsed


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when nothing it allows is served."""
    if not accept or not accept.strip():
        return DEFAULT_TYPE
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(accept.split(",")):
        if not item.strip():
            continue
        media, params = _parse_media(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality <= 0:
            continue
        if media in ("*/*", "application/*"):
            choice = DEFAULT_TYPE
        elif media == "text/*":
            choice = "text/json"
        elif media in JSON_TYPES:
            choice = media
        else:
            continue
        ranked.append((-quality, index, choice))
    if not ranked:
        return None
    ranked.sort()
    return ranked[0][2]


def accepts_event_stream(accept: str | None) -> bool:
    """Whether an Accept header allows ``text/event-stream`` (no header allows anything)."""
    if not accept or not accept.strip():
        return True
    for item in accept.split(","):
        media, params = _parse_media(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0 and media in (EVENT_STREAM, "text/*", "*/*"):
            return True
    return False


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return etag in candidates


class ConventionsMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        raw_body_prefixes: tuple[str, ...] = (),
        raw_body_suffixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.raw_body_prefixes = raw_body_prefixes
        self.raw_body_suffixes = raw_body_suffixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        media_type = DEFAULT_TYPE

        async def reply_error(error: ApiError) -> None:
            body = orjson.dumps(error_body(error, request_id))
            out = [
                (b"content-type", media_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ]
            out += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
            await send({"type": "http.response.start", "status": error.status, "headers": out})
            await send({"type": "http.response.body", "body": body})

        try:
            app_state = getattr(scope.get("app"), "state", None)
            if getattr(app_state, "shutting_down", False) and scope["path"].startswith(
                ("/v1/", "/v2/")
            ):
                raise service_unavailable("the server is shutting down")
            path: str = scope["path"]
            if "\x00" in path:
                raise json_error_response(
                    400, "the path must not contain NUL characters", "nul-character"
                )
            if path.startswith(("/v1/", "/v2/")) and not path.endswith("/"):
                scope["path"] = path + "/"
                scope["raw_path"] = scope["path"].encode()
            query = parse_qs(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            )
            check_query(query)
            fmt = query.get("format")
            if fmt is not None and [v.lower() for v in fmt] != ["json"]:
                raise json_error_response(
                    400, "format must be json", "invalid-format", parameter="format"
                )
            chosen = negotiate(headers.get("accept"))
            if chosen is None and not scope["path"].startswith(("/v1/", "/v2/")):
                chosen = DEFAULT_TYPE  # operational endpoints (metrics, docs) answer anyone
            if (
                chosen is None
                and scope["path"] in EVENT_STREAM_PATHS
                and accepts_event_stream(headers.get("accept"))
            ):
                chosen = DEFAULT_TYPE  # the stream itself; its errors are JSON
            if chosen is None:
                raise json_error_response(
                    406, "Accept allows none of: " + ", ".join(JSON_TYPES), "not-acceptable"
                )
            media_type = chosen
            self._override_method(scope, headers, query)
            path = scope["path"]
            raw = path.startswith(self.raw_body_prefixes) or (
                bool(self.raw_body_suffixes) and path.rstrip("/").endswith(self.raw_body_suffixes)
            )
            if scope["method"] in {"POST", "PUT", "PATCH", "DELETE"} and not raw:
                receive = await self._normalized_body(scope, headers, receive)
        except ApiError as error:
            await reply_error(error)
            return

        writer = _ResponseWriter(send, scope, headers, media_type, request_id)
        try:
            await self.app(scope, receive, writer)
        except Exception as exc:
            # Anything unhandled still leaves in the one error body, with the request id,
            # and nothing of the server's internals.
            answer = unexpected_error(exc, request_id)
            if writer.started:
                raise
            await reply_error(answer)

    @staticmethod
    def _override_method(
        scope: Scope, headers: dict[str, str], query: dict[str, list[str]]
    ) -> None:
        override = headers.get("x-http-method-override")
        if override is None and query.get("method"):
            override = query["method"][0]
        if override is None:
            return
        wanted = override.strip().upper()
        if scope["method"] != "POST":
            raise json_error_response(
                400,
                "method override is honoured on POST only",
                "method-override-not-allowed",
                parameter="method",
            )
        if wanted not in OVERRIDABLE:
            raise json_error_response(
                400, f"cannot override to method {override}", "invalid-method", parameter="method"
            )
        scope["method"] = wanted
        if "method" in query:  # consumed here; endpoints never see it
            pairs = parse_qsl(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            )
            scope["query_string"] = urlencode([(k, v) for k, v in pairs if k != "method"]).encode()

    async def _normalized_body(
        self, scope: Scope, headers: dict[str, str], receive: Receive
    ) -> Receive:
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise json_error_response(
                413, f"request body exceeds {self.max_body_bytes} bytes", "payload-too-large"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise json_error_response(
                    413, f"request body exceeds {self.max_body_bytes} bytes", "payload-too-large"
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if not raw.strip():
            return _replay(b"")
        media, params = _parse_media(headers.get("content-type") or DEFAULT_TYPE)
        charset = CHARSETS.get(params.get("charset", "utf-8"))
        if charset is None:
            raise json_error_response(
                415,
                f"charset {params.get('charset')} is not supported; use utf-8 or iso-8859-1",
                "unsupported-charset",
            )
        if media in JSON_TYPES:
            text = _decode(raw, charset)
        elif media == "application/x-www-form-urlencoded":
            form = parse_qs(_decode(raw, charset), keep_blank_values=True)
            if "json" not in form or len(form["json"]) != 1:
                raise json_error_response(
                    400, "a form-encoded body needs exactly one field json", "invalid-form-body"
                )
            text = form["json"][0]
        else:
            raise json_error_response(
                415,
                "Content-Type must be application/json, application/vnd.api+json, "
                "text/json or application/x-www-form-urlencoded",
                "unsupported-media-type",
            )
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise json_error_response(400, f"malformed JSON: {exc.msg}", "malformed-json") from exc
        if not isinstance(document, dict):
            raise json_error_response(
                400, "the request body must be a JSON object", "body-not-object"
            )
        check_document(document)
        body = orjson.dumps(document)
        scope["headers"] = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in (b"content-type", b"content-length")
        ] + [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        return _replay(body)


# A request document nests at most this deep (``{"data": {"attributes": {"extended": …}}}`` is
# 3): every free-form field (``extended``, plugin ``args`` …) is bounded by it on input, and
# anything stored can be written out again (orjson refuses to encode past 254 levels).
MAX_BODY_DEPTH = 32


def check_document(document: Any) -> None:
    """400 for a body nested deeper than :data:`MAX_BODY_DEPTH`, or a NUL in any string or key.

    PostgreSQL refuses NUL in text and JSON, SQLite stores it: refusing it here, once, for
    every field of every body, keeps the two databases alike and no field a 500.
    """
    stack: list[tuple[Any, str, int]] = [(document, "", 1)]
    while stack:
        value, pointer, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_BODY_DEPTH:
                raise _too_deep(pointer)
            for key, item in value.items():
                where = f"{pointer}/{_escape_pointer(key)}"
                if "\x00" in key:
                    raise _nul(where)
                stack.append((item, where, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_BODY_DEPTH:
                raise _too_deep(pointer)
            stack.extend(
                (item, f"{pointer}/{index}", depth + 1) for index, item in enumerate(value)
            )
        elif isinstance(value, str) and "\x00" in value:
            raise _nul(pointer)


def _escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _too_deep(pointer: str) -> ApiError:
    return json_error_response(
        400,
        f"the JSON document nests deeper than {MAX_BODY_DEPTH} levels",
        "json-too-deep",
        pointer=pointer or "/",
    )


def _nul(pointer: str) -> ApiError:
    name = pointer.rsplit("/", 1)[-1] or "body"
    return ApiError(
        400,
        [ErrorItem(f"{name} must not contain NUL characters", "nul-character", pointer=pointer)],
        {},
        True,
    )


def check_query(query: dict[str, list[str]]) -> None:
    """400 for a NUL character in any query parameter's name or value (see check_document)."""
    for name, values in query.items():
        if "\x00" in name or any("\x00" in value for value in values):
            shown = name.replace("\x00", "")
            raise ApiError(
                400,
                [
                    ErrorItem(
                        f"{shown} must not contain NUL characters",
                        "nul-character",
                        parameter=shown,
                    )
                ],
                {},
                True,
            )


def _decode(raw: bytes, charset: str) -> str:
    try:
        return raw.decode(charset)
    except UnicodeDecodeError as exc:
        raise json_error_response(
            400, f"the body is not valid {charset}", "invalid-encoding"
        ) from exc


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class _ResponseWriter:
    """Sets the negotiated media type and the request id; turns GET bodies into ETags / 304."""

    def __init__(
        self, send: Send, scope: Scope, headers: dict[str, str], media_type: str, request_id: str
    ) -> None:
        self.send = send
        self.scope = scope
        self.if_none_match = headers.get("if-none-match")
        self.media_type = media_type
        self.request_id = request_id
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = [
                (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
            ]
            headers.append((b"x-request-id", self.request_id.encode()))
            content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
            if content_type.startswith(b"application/json"):
                headers = [(k, v) for k, v in headers if k.lower() != b"content-type"]
                headers.append((b"content-type", self.media_type.encode()))
                if self.scope["method"] in ("GET", "HEAD") and message["status"] == 200:
                    self.start = {**message, "headers": headers}
                    return
            await self.send({**message, "headers": headers})
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self.chunks)
        etag = etag_for(body)
        headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"etag"]
        headers.append((b"etag", etag.encode()))
        if etag_matches(self.if_none_match, etag):
            headers = [
                (k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")
            ]
            await self.send({"type": "http.response.start", "status": 304, "headers": headers})
            await self.send({"type": "http.response.body", "body": b""})
            return
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})


# --- response headers written by features (one layer for all of them) -------------------------

Headers = list[tuple[bytes, bytes]]
# A feature's change to a response's headers: given the request's scope, the path it arrived
# with and the headers so far, the headers to send instead, or None to leave them as they are.
HeaderRewrite = Callable[[Scope, str, Headers], "Headers | None"]
REWRITES_STATE = "response_header_rewrites"


class ResponseHeadersMiddleware:
    """Applies every feature's :data:`HeaderRewrite` (rate-limit headers, the console's
    security headers), in the order they were added, to the response's start message: one
    layer and one ``send`` wrapper instead of one per feature."""

    def __init__(self, app: ASGIApp, *, rewrites: list[HeaderRewrite]) -> None:
        self.app = app
        self.rewrites = rewrites

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        rewrites = self.rewrites

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: Headers = message.get("headers", [])
                changed = False
                for rewrite in rewrites:
                    rewritten = rewrite(scope, path, headers)
                    if rewritten is not None:
                        headers = rewritten
                        changed = True
                if changed:
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_header_rewrite(app: Any, rewrite: HeaderRewrite) -> None:
    """Have ``rewrite`` applied to every response: the first feature to add one installs the
    :class:`ResponseHeadersMiddleware` (at its place among the middleware), later ones join it."""
    rewrites: list[HeaderRewrite] | None = getattr(app.state, REWRITES_STATE, None)
    if rewrites is None:
        rewrites = []
        setattr(app.state, REWRITES_STATE, rewrites)
        app.add_middleware(ResponseHeadersMiddleware, rewrites=rewrites)
    rewrites.append(rewrite)
