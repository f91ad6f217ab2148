"""Annotated field types shared by every schema: timestamps, phones, zones, ``extended``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

from courier.core.phone import check_e164
from courier.core.time import check_timezone, format_timestamp, parse_timestamp


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("must carry a time zone offset (Z or ±HH:MM)")
        return value
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

PhoneE164 = Annotated[
    str,
    AfterValidator(check_e164),
    WithJsonSchema({"type": "string", "pattern": r"^\+[1-9]\d{1,14}$", "example": "+14155552671"}),
]

PhoneE164US = Annotated[
    str,
    AfterValidator(lambda v: check_e164(v, us_only=True)),
    WithJsonSchema({"type": "string", "pattern": r"^\+1\d{10}$", "example": "+14155552671"}),
]

TimeZoneName = Annotated[
    str,
    AfterValidator(check_timezone),
    WithJsonSchema({"type": "string", "example": "America/New_York"}),
]

EXTENDED_MAX_BYTES = 64 * 1024


def _check_extended(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    if len(orjson.dumps(value)) > EXTENDED_MAX_BYTES:
        raise ValueError("must be at most 64 KiB of JSON")
    return value


# Free-form integration data (seed 000): any JSON object up to 64 KiB.
Extended = Annotated[
    dict[str, Any],
    BeforeValidator(_check_extended),
    WithJsonSchema({"type": "object", "additionalProperties": True}),
]
