"""Recurring appointments: an RFC 5545 RRULE expanded with python-dateutil in the
appointment's time zone.

The rule is expanded from the first start as an aware local time (``ZoneInfo``): dateutil adds
days and weeks to the wall-clock time, so a weekly 09:00 in New York stays 09:00 across a
daylight-saving change and its UTC instant moves instead. ``UNTIL``, when given, is in UTC
(RFC 5545: the start carries a time zone).
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr  # type: ignore[import-untyped]

RULE_PREFIX = "RRULE:"
# Occurrences looked at to find a series' last end; a rule with more (or none) is open-ended.
MAX_COUNTED = 5000
NEXT_SHOWN = 10


def normalise_rule(text: str) -> str:
    """``FREQ=...`` (an ``RRULE:`` prefix is dropped), checked by dateutil; ValueError (400)
    saying why otherwise."""
    rule = text.strip()
    if rule.upper().startswith(RULE_PREFIX):
        rule = rule[len(RULE_PREFIX) :]
    upper = rule.upper()
    if not rule or "\n" in rule or "\r" in rule or "DTSTART" in upper or "RRULE" in upper:
        raise ValueError(
            "must be one RFC 5545 recurrence rule such as FREQ=WEEKLY;COUNT=10, without "
            "DTSTART (start-time is the first occurrence)"
        )
    if "FREQ=" not in upper:
        raise ValueError("must name FREQ (RFC 5545), e.g. FREQ=WEEKLY")
    try:
        _expand(rule, datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC")))
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"is not an RFC 5545 recurrence rule: {error}") from None
    return rule


def _expand(rule: str, start_local: datetime) -> rrule:
    return rrulestr(rule, dtstart=start_local)


def occurrences(
    rule: str | None,
    start: datetime,
    time_zone: str,
    *,
    after: datetime | None = None,
    count: int = NEXT_SHOWN,
) -> list[datetime]:
    """The starts (aware, UTC) of the next ``count`` occurrences at or after ``after`` (default:
    from the first). A single appointment has one occurrence, its start."""
    zone = ZoneInfo(time_zone)
    first = start.astimezone(zone)
    if not rule:
        return [start] if after is None or start >= after else []
    expanded = _expand(rule, first)
    found: list[datetime] = []
    try:
        candidates = (
            expanded if after is None else expanded.xafter(after.astimezone(zone), inc=True)
        )
        for local in islice(candidates, 0, count):
            found.append(local.astimezone(UTC))
    except (ValueError, OverflowError):  # the calendar's end
        pass
    return found


def series_end(rule: str | None, start: datetime, end: datetime, time_zone: str) -> datetime | None:
    """The end of the last occurrence; None when the rule never ends (or has more than
    ``MAX_COUNTED`` occurrences)."""
    if not rule:
        return end
    upper = rule.upper()
    if "COUNT=" not in upper and "UNTIL=" not in upper:
        return None
    starts = occurrences(rule, start, time_zone, count=MAX_COUNTED + 1)
    if not starts or len(starts) > MAX_COUNTED:
        return None if starts else end
    return starts[-1] + (end - start)
