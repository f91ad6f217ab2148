"""Annotated field types shared by every schema: timestamps, phones, zones, ``extended``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BeforeValidator, PlainSerializer, StrictInt, WithJsonSchema

from courier.core.phone import E164_SCHEMA, E164_US_SCHEMA, check_e164
from courier.core.time import check_timezone, format_timestamp, parse_timestamp, to_utc


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return to_utc(value, bounded=False)
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time string")
    return parse_timestamp(value)


# Out: "2024-01-15T10:00:00.000Z". In: ISO 8601 with an offset; naive times are refused.
Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_time),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "example": "2024-01-15T10:00:00.000Z"}
    ),
]


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # JSON Schema's integer: 3037.0 is one
    return value


# A JSON integer: 5 or 5.0; never "5", true or 5.5 (400 "must be an integer").
WholeNumber = Annotated[StrictInt, BeforeValidator(_whole)]

PhoneE164 = Annotated[
    str,
    AfterValidator(check_e164),
    WithJsonSchema(E164_SCHEMA),
]

PhoneE164US = Annotated[
    str,
    AfterValidator(lambda v: check_e164(v, us_only=True)),
    WithJsonSchema(E164_US_SCHEMA),
]

# A name of the IANA time zone database (what ``zoneinfo`` knows), e.g. America/New_York.
TIME_ZONE_FORMAT = "iana-time-zone"

TimeZoneName = Annotated[
    str,
    AfterValidator(check_timezone),
    WithJsonSchema({"type": "string", "format": TIME_ZONE_FORMAT, "example": "America/New_York"}),
]

EXTENDED_MAX_BYTES = 64 * 1024
# Free-form JSON (``extended``, plugin ``args`` …) nests at most this deep. Request bodies are
# bounded as a whole too (courier.core.http.MAX_BODY_DEPTH); this bound also holds for values
# that reach a schema another way.
FREE_JSON_MAX_DEPTH = 20


def json_depth(value: Any) -> int:
    """How deep ``value`` nests (a scalar: 0, ``{}``: 1, ``{"a": []}``: 2), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def check_free_json(value: Any) -> Any:
    if json_depth(value) > FREE_JSON_MAX_DEPTH:
        raise ValueError(f"must not nest deeper than {FREE_JSON_MAX_DEPTH} levels")
    return value


def _check_extended(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    check_free_json(value)
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:
        raise ValueError("must be a JSON object") from exc
    if size > EXTENDED_MAX_BYTES:
        raise ValueError("must be at most 64 KiB of JSON")
    return value


# Free-form integration data (seed 000): any JSON object up to 64 KiB, 20 levels deep.
Extended = Annotated[
    dict[str, Any],
    BeforeValidator(_check_extended),
    WithJsonSchema({"type": "object", "additionalProperties": True}),
]
