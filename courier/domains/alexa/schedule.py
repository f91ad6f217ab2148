"""When a reminder is due: a local wall-clock time in an IANA zone, repeated by an RFC 5545
RRULE, expanded with python-dateutil in local time so that a weekly 08:30 stays 08:30 across
daylight-saving changes (its UTC instant moves instead)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr  # type: ignore[import-untyped]

LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")
SHOWN_OCCURRENCES = 5
RULE_PREFIX = "RRULE:"


def parse_local_time(text: str) -> datetime:
    """``YYYY-MM-DDTHH:MM[:SS]``, a wall-clock time without offset (its zone is tz-info)."""
    if not LOCAL_TIME.match(text):
        raise ValueError(
            "must be a local date and time without offset, YYYY-MM-DDTHH:MM[:SS] "
            "(e.g. 2030-03-04T08:30); its time zone is tz-info"
        )
    try:
        return datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"is not a real date and time: {error}") from None


def normalise_rule(text: str) -> str:
    """The rule as the Reminders API takes it (``FREQ=...``, no ``RRULE:`` prefix), checked:
    RFC 5545 (by dateutil), one rule, no DTSTART (the local time is the start)."""
    rule = text.strip()
    if rule.upper().startswith(RULE_PREFIX):
        rule = rule[len(RULE_PREFIX) :]
    upper = rule.upper()
    if not rule or "\n" in rule or "DTSTART" in upper or "RRULE" in upper:
        raise ValueError(
            "must be one RFC 5545 recurrence rule such as FREQ=WEEKLY;BYDAY=MO, "
            "without DTSTART (reminder-time-local is the start)"
        )
    if "FREQ=" not in upper:
        raise ValueError("must name FREQ (RFC 5545), e.g. FREQ=DAILY")
    try:
        rrulestr(rule, dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError) as error:
        raise ValueError(f"is not an RFC 5545 recurrence rule: {error}") from None
    return rule


def next_occurrences(
    time_local: str,
    tz_info: str,
    rule: str | None,
    *,
    after: datetime,
    count: int = SHOWN_OCCURRENCES,
) -> list[datetime]:
    """The next ``count`` times (aware, UTC) the reminder is due after ``after``."""
    zone = ZoneInfo(tz_info)
    start = parse_local_time(time_local)
    local_after = after.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    found: list[datetime] = []
    # Search in local time from a day before ``after`` (a zone's offset is under a day).
    candidates: Iterator[datetime]
    if rule:
        expanded: rrule = rrulestr(rule, dtstart=start)
        candidates = (
            d for d in expanded.xafter(max(local_after, start - timedelta(seconds=1)), inc=True)
        )
    else:
        candidates = iter([start])
    for local in islice(candidates, 0, 10_000):
        instant = local.replace(tzinfo=zone).astimezone(UTC)
        if instant > after:
            found.append(instant)
            if len(found) >= count:
                break
    return found
