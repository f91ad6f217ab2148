"""Recurring appointments: an RFC 5545 RRULE expanded with python-dateutil in the
appointment's time zone.

The rule is expanded from the first start as an aware local time (``ZoneInfo``): dateutil adds
days and weeks to the wall-clock time, so a weekly 09:00 in New York stays 09:00 across a
daylight-saving change and its UTC instant moves instead. ``UNTIL``, when given, is in UTC
(RFC 5545: the start carries a time zone).

Every expansion is bounded, so that no rule makes a request slow: ``FREQ`` is ``DAILY`` or
coarser and the time of day is the start's (no ``BYHOUR``/``BYMINUTE``/``BYSECOND``), so there
is at most one occurrence a day; a rule must have an occurrence within ``HORIZON`` of its
start, and one with ``COUNT`` must end within it; each expansion looks at most ``HORIZON``
past the later of the start and the time asked about, and a daily or weekly rule without
``COUNT`` is expanded from a start moved forward by whole periods (the same occurrences).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, WEEKLY, rrulestr  # type: ignore[import-untyped]

RULE_PREFIX = "RRULE:"
HORIZON = timedelta(days=3653)  # ten years
MAX_COUNT = 1000
NEXT_SHOWN = 10
ALLOWED_FREQ = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
ALLOWED_PARTS = (
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
)
MAX_INTERVAL = 99
EARLIEST_SERIES = datetime(1970, 1, 1, tzinfo=UTC)
WEEKDAY = re.compile(r"^([+-]?[1-5])?(MO|TU|WE|TH|FR|SA|SU)$")
# Days of each month in a leap year: a (month, day) pair outside them never happens.
LEAP_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _parts(rule: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for part in rule.split(";"):
        name, _, value = part.partition("=")
        parts[name.strip().upper()] = value.strip()
    return parts


def _numbers(value: str, low: int, high: int, name: str) -> list[int]:
    numbers = []
    for item in value.split(","):
        text = item.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,3}", text) or not low <= int(text) <= high:
            raise ValueError(f"{name} takes numbers from {low} to {high}")
        if int(text) == 0:
            raise ValueError(f"{name} takes no 0")
        numbers.append(int(text))
    return numbers


def normalise_rule(text: str) -> str:
    """``FREQ=...`` (an ``RRULE:`` prefix is dropped), checked by dateutil and the bounds
    above; ValueError (400) saying why otherwise.

    The parts an appointment needs are taken (FREQ, INTERVAL, COUNT, UNTIL, BYDAY,
    BYMONTHDAY, BYMONTH, BYSETPOS, WKST), in combinations that always happen in some month
    (``BYSETPOS`` only on ``MONTHLY`` with plain ``BYDAY`` weekdays; ``BYDAY`` ordinals only on
    ``MONTHLY`` or ``YEARLY``, and not with ``BYMONTHDAY``): a rule that can never happen is
    refused here, before dateutil would look for its first occurrence until the year 9999.
    """
    rule = text.strip()
    if rule.upper().startswith(RULE_PREFIX):
        rule = rule[len(RULE_PREFIX) :]
    if not rule or "\n" in rule or "\r" in rule or ":" in rule:
        raise ValueError(
            "must be one RFC 5545 recurrence rule such as FREQ=WEEKLY;COUNT=10, without "
            "DTSTART (start-time is the first occurrence)"
        )
    parts = _parts(rule)
    unknown = [name for name in parts if name not in ALLOWED_PARTS]
    if unknown:
        raise ValueError(
            f"may not use {', '.join(sorted(unknown))}; an appointment's rule takes "
            + ", ".join(ALLOWED_PARTS)
            + " (start-time gives the first occurrence and its time of day)"
        )
    freq = parts.get("FREQ", "").upper()
    if freq not in ALLOWED_FREQ:
        raise ValueError("must have FREQ=DAILY, WEEKLY, MONTHLY or YEARLY")
    if "COUNT" in parts:
        _numbers(parts["COUNT"], 1, MAX_COUNT, "COUNT")
    if "INTERVAL" in parts:
        _numbers(parts["INTERVAL"], 1, MAX_INTERVAL, "INTERVAL")
    months = _numbers(parts["BYMONTH"], 1, 12, "BYMONTH") if "BYMONTH" in parts else []
    monthdays = (
        _numbers(parts["BYMONTHDAY"], -31, 31, "BYMONTHDAY") if "BYMONTHDAY" in parts else []
    )
    days = [d.strip().upper() for d in parts["BYDAY"].split(",")] if "BYDAY" in parts else []
    matches = [WEEKDAY.match(day) for day in days]
    if any(m is None for m in matches):
        raise ValueError("BYDAY takes MO, TU, WE, TH, FR, SA, SU, with an ordinal -5 to 5")
    ordinals = any(m is not None and m.group(1) for m in matches)
    if ordinals and (freq not in ("MONTHLY", "YEARLY") or monthdays):
        raise ValueError(
            "BYDAY ordinals (1MO, -1FR) only with MONTHLY or YEARLY, without BYMONTHDAY"
        )
    if "BYSETPOS" in parts:
        if freq != "MONTHLY" or not days or ordinals or monthdays:
            raise ValueError("BYSETPOS only with FREQ=MONTHLY and plain BYDAY weekdays")
        _numbers(parts["BYSETPOS"], -4 * len(set(days)), 4 * len(set(days)), "BYSETPOS")
    if monthdays and not any(
        abs(day) <= LEAP_MONTH_DAYS[month - 1]
        for month in months or range(1, 13)
        for day in monthdays
    ):
        raise ValueError("BYMONTH and BYMONTHDAY name no day that exists")
    try:
        rrulestr(rule, dtstart=datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC")))
    except (ValueError, TypeError, OverflowError, KeyError, IndexError) as error:
        raise ValueError(f"is not an RFC 5545 recurrence rule: {error}") from None
    return rule


def _default_day_possible(rule: str, first: datetime) -> bool:
    """A MONTHLY or YEARLY rule without BYDAY or BYMONTHDAY repeats the start's day of the
    month (and a YEARLY one without BYMONTH, its month): does that day exist?"""
    parts = _parts(rule)
    freq = parts.get("FREQ", "").upper()
    if freq not in ("MONTHLY", "YEARLY") or "BYDAY" in parts or "BYMONTHDAY" in parts:
        return True
    if "BYMONTH" in parts:
        months = _numbers(parts["BYMONTH"], 1, 12, "BYMONTH")
    elif freq == "YEARLY":
        months = [first.month]
    else:
        months = list(range(1, 13))
    return any(first.day <= LEAP_MONTH_DAYS[month - 1] for month in months)


def check_rule(rule: str, start: datetime, time_zone: str) -> None:
    """The rule has an occurrence within ``HORIZON`` of ``start`` and, with ``COUNT``, all of
    them; ValueError (400) otherwise."""
    if start < EARLIEST_SERIES:
        raise ValueError("a recurring appointment starts in 1970 or later")
    first = start.astimezone(ZoneInfo(time_zone))
    if not _default_day_possible(rule, first):
        raise ValueError(
            "repeats start-time's day of the month, which the months of the rule do not have"
        )
    try:
        parsed = rrulestr(rule, dtstart=first)
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"cannot start at start-time: {error}") from None
    starts = list(_expand(parsed, first, None))
    if not starts:
        raise ValueError("has no occurrence within ten years of start-time")
    if parsed._count and len(starts) < parsed._count:
        raise ValueError("must end within ten years of start-time (fewer COUNT, or UNTIL)")


def _expand(parsed: Any, first: datetime, after: datetime | None) -> Iterator[datetime]:
    """The occurrences (aware, local) of ``parsed`` from ``first``, at or after ``after``,
    looking at most ``HORIZON`` past the later of the two."""
    count = parsed._count
    own_until = parsed._until
    anchor = first if after is None or after < first else after.astimezone(first.tzinfo)
    start = first
    if not count and parsed._freq in (DAILY, WEEKLY) and anchor > first:
        # Move the start forward by whole periods: the same occurrences from there on.
        period = timedelta(days=parsed._interval * (7 if parsed._freq == WEEKLY else 1))
        skipped = (anchor.replace(tzinfo=None) - first.replace(tzinfo=None)) // period - 1
        if skipped > 0:
            start = (first.replace(tzinfo=None) + skipped * period).replace(tzinfo=first.tzinfo)
    try:
        bound = anchor + HORIZON
    except OverflowError:
        bound = datetime.max.replace(tzinfo=UTC) - timedelta(days=2)
    until = bound if own_until is None or own_until > bound else own_until
    try:
        bounded = parsed.replace(dtstart=start, count=None, until=until)
    except (ValueError, OverflowError):
        return iter(())
    found: Iterator[datetime] = iter(bounded)
    if count:
        found = islice(found, count)
    if after is not None:
        found = (local for local in found if local >= after)
    return found


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
    if not rule:
        return [start] if after is None or start >= after else []
    first = start.astimezone(ZoneInfo(time_zone))
    found: list[datetime] = []
    try:
        parsed = rrulestr(rule, dtstart=first)
        for local in islice(_expand(parsed, first, after), 0, count):
            found.append(local.astimezone(UTC))
    except (ValueError, OverflowError):  # the calendar's end
        pass
    return found


def series_end(rule: str | None, start: datetime, end: datetime, time_zone: str) -> datetime | None:
    """The end of the last occurrence; None when the rule has no ``COUNT`` and no ``UNTIL``
    within ``HORIZON`` (an open series)."""
    if not rule:
        return end
    first = start.astimezone(ZoneInfo(time_zone))
    try:
        parsed = rrulestr(rule, dtstart=first)
        if not parsed._count and (parsed._until is None or parsed._until > first + HORIZON):
            return None
        starts = list(_expand(parsed, first, None))
        return (starts[-1] if starts else start).astimezone(UTC) + (end - start)
    except (ValueError, OverflowError):
        return None
