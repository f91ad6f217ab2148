"""Prometheus metrics and structured JSON logs (request id, route, status; no patient data)."""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from courier.core.http import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "courier_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "courier_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

access_log = logging.getLogger("courier.access")


def describe_exception(exc: BaseException) -> str:
    """An exception as a log may show it: its type and, from a database driver, its SQLSTATE or
    SQLite error name; never its message, which drivers, validators and parsers fill with the
    values they were given (a duplicate key's email, a refused birth date, bound parameters)."""
    kind = type(exc)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    for source in (exc, getattr(exc, "orig", None)):
        code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
        code = code or getattr(source, "sqlite_errorname", None)
        if isinstance(code, str) and code:
            return f"{name} [{code}]"
    return name


def format_exception_safely(exc: BaseException) -> str:
    """A traceback (where it happened: files, lines, code) with every message in its chain
    replaced by :func:`describe_exception`."""
    lines: list[str] = []
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    for position, link in enumerate(reversed(chain)):
        if position:
            lines.append("\nwhich led to:\n")
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_list(traceback.extract_tb(link.__traceback__)))
        lines.append(describe_exception(link) + "\n")
    return "".join(lines).rstrip("\n")


def safe_message(record: logging.LogRecord) -> str:
    """The record's message, with any exception among its arguments shown by type only
    (third-party loggers such as SQLAlchemy's pool interpolate driver errors)."""
    args = record.args
    if isinstance(args, tuple) and any(isinstance(a, BaseException) for a in args):
        args = tuple(describe_exception(a) if isinstance(a, BaseException) else a for a in args)
    elif isinstance(args, dict) and any(isinstance(a, BaseException) for a in args.values()):
        args = {
            k: describe_exception(a) if isinstance(a, BaseException) else a for k, a in args.items()
        }
    message = str(record.msg)
    if args:
        try:
            message = message % args
        except (TypeError, ValueError, KeyError):
            message = f"{message} (unformattable arguments)"
    return message


class JsonFormatter(logging.Formatter):
    """One JSON object per line; exceptions without their messages (see describe_exception)."""

    converter = staticmethod(time.gmtime)
    _RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": safe_message(record),
        }
        for key, value in record.__dict__.items():
            if key not in self._RESERVED and not key.startswith("_"):
                entry[key] = (
                    describe_exception(value) if isinstance(value, BaseException) else value
                )
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = format_exception_safely(record.exc_info[1])
        return json.dumps(entry, default=str)


# Libraries whose logs below WARNING carry data: statements with their bound values
# (aiosqlite, sqlalchemy.engine), result rows (sqlalchemy.engine at DEBUG), request URLs with
# their query strings (httpx, httpcore, uvicorn's access log). They stay at WARNING whatever
# COURIER_LOG_LEVEL says; their warnings and errors go through the scrubbing formatter.
DATA_LOGGERS = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy.engine",
    "sqlalchemy.orm",
    "httpx",
    "httpcore",
    "uvicorn.access",
)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in DATA_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True


class MetricsMiddleware:
    """Counts and times each request by its route template (never by raw path: no ids, no PII)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            LATENCY.labels(scope["method"], template).observe(elapsed)
            access_log.info(
                "request",
                extra={
                    "request_id": scope.get("state", {}).get("request_id"),
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
