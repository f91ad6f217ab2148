"""Times: aware UTC inside, ISO 8601 with milliseconds and ``Z`` outside (CONVENTIONS.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import available_timezones


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_timestamp(value: datetime) -> str:
    if value.tzinfo is None:  # stored naive by SQLite: it was written as UTC
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if value.year >= 1000:
        # "2024-01-15T10:00:00.000+00:00" -> "...000Z": isoformat is twice as fast as
        # strftime, and a page of messages formats hundreds of times.
        return value.isoformat(timespec="milliseconds")[:-6] + "Z"
    # strftime's %Y does not pad years before 1000 on every platform ("1-01-02"): pad here.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


class NaiveTimeError(ValueError):
    pass


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 time that carries ``Z`` or an offset; naive times are refused."""
    candidate = text.strip()
    if candidate.endswith(("z", "Z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 time, e.g. 2024-01-15T10:00:00.000Z") from exc
    return to_utc(value)


# Times a request may carry: a day inside the calendar's ends, so that moving one to any time
# zone (offsets stay under 24 hours) never leaves the calendar (OverflowError, a 500).
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
_OUT_OF_RANGE = "must lie between 0001-01-02T00:00:00Z and 9999-12-30T23:59:59Z"


def to_utc(value: datetime, *, bounded: bool = True) -> datetime:
    """``value`` moved to UTC; 400-worthy ValueErrors for naive times and for times that leave
    the calendar once moved (``9999-12-31T23:59:59-14:00``, ``0001-01-01T00:00:00+14:00``).

    ``bounded``: also refuse times within a day of the calendar's ends (what clients send);
    values read back from the database are only moved.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveTimeError("must carry a time zone offset (Z or ±HH:MM)")
    try:
        moved = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(_OUT_OF_RANGE) from exc
    if bounded and not EARLIEST <= moved <= LATEST:
        raise ValueError(_OUT_OF_RANGE)
    return moved


# Files of the system's zoneinfo directory that are not IANA zones: the host's own setting and
# tzdata's placeholders. available_timezones() lists them when the system database is used.
_NOT_ZONES = frozenset({"", "localtime", "posixrules", "Factory"})


def check_timezone(name: str) -> str:
    """An IANA zone name such as ``America/New_York``."""
    if name in _NOT_ZONES or name.startswith(("posix/", "right/")) or name not in _zones():
        raise ValueError("must be an IANA time zone such as America/New_York")
    return name


_ZONES: set[str] | None = None


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones() | {"UTC"}
    return _ZONES


def now_ms() -> datetime:
    """Now, to the millisecond: the precision the API shows, so what a client reads back
    compares exactly in ``filter[cmp-...]`` (``<=`` a shown time includes that row)."""
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
