"""When an auto-responder is active: wall-clock rules in an IANA time zone. Pure functions.

A rule is a day (``everyday``, ``weekdays``, ``weekends``, ``monday`` … ``sunday``) and a span
of local wall-clock time, ``start-time`` to ``end-time`` (``HH:MM`` or ``HH:MM:SS``; the end is
excluded; ``24:00`` may end a span at midnight):

- ``start < end``: that day, from start until end (``09:00`` to ``17:00``);
- ``start > end``: overnight, from start on that day until end on the next (``18:00`` to ``08:00``
  on a Friday covers Friday evening and Saturday morning);
- ``start == end``: the whole 24 hours from start.

An instant is converted to the zone's wall clock (``zoneinfo``) and compared there, so the rules
follow daylight-saving changes: "18:00" is 18:00 on the clocks of the clinic on both sides of a
change, whatever the UTC offset; a wall time skipped by a spring-forward simply never occurs,
and one repeated by a fall-back occurs twice (both inside or both outside a span).
``start_at``/``end_at`` (instants, end excluded) bound the whole schedule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_SETS: dict[str, frozenset[int]] = {
    "everyday": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    **{name: frozenset({index}) for index, name in enumerate(DAYS)},
}
DAY_NAMES = tuple(DAY_SETS)

WALL_CLOCK_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"  # what the schema says
_WALL_CLOCK = re.compile(r"(?P<h>[01]\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?")
MIDNIGHT_END = "24:00"


def parse_wall_clock(text: str, *, end: bool = False) -> time:
    """``HH:MM`` or ``HH:MM:SS`` as a wall-clock time (``24:00`` too, for an end: midnight).

    A time with an offset or ``Z`` is refused: the rule's times are the clinic's clocks in its
    ``timezone``, which moves with daylight saving; a fixed offset would not."""
    if end and text in (MIDNIGHT_END, MIDNIGHT_END + ":00"):
        return time(0, 0)
    match = _WALL_CLOCK.fullmatch(text)
    if not match:
        raise ValueError(
            "must be a local wall-clock time HH:MM or HH:MM:SS, without offset or Z (the "
            "calendar's timezone says where)"
        )
    return time(int(match["h"]), int(match["m"]), int(match["s"] or 0))


@dataclass(frozen=True)
class Rule:
    day: str
    start: time
    end: time

    def __post_init__(self) -> None:
        if self.day not in DAY_SETS:
            raise ValueError(f"day must be one of {', '.join(DAY_NAMES)}")

    @classmethod
    def parse(cls, value: Mapping[str, Any]) -> Rule:
        return cls(
            str(value["day"]),
            parse_wall_clock(str(value["start-time"])),
            parse_wall_clock(str(value["end-time"]), end=True),
        )

    def covers(self, weekday: int, wall: time) -> tuple[bool, bool]:
        """(active on a span starting ``weekday``, active on one that started the day before)
        at local wall-clock time ``wall``."""
        days = DAY_SETS[self.day]
        if self.start < self.end:
            return weekday in days and self.start <= wall < self.end, False
        # Overnight (or the whole day when start == end): from start until end tomorrow.
        return (
            weekday in days and wall >= self.start,
            (weekday - 1) % 7 in days and wall < self.end,
        )


@dataclass(frozen=True)
class Schedule:
    rules: tuple[Rule, ...]
    timezone: str
    start_at: datetime | None = None
    end_at: datetime | None = None

    @classmethod
    def of(
        cls,
        calendar_args: Mapping[str, Any],
        *,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        default_timezone: str = "UTC",
    ) -> Schedule:
        rules: Iterable[Mapping[str, Any]] = calendar_args.get("rules") or ()
        return cls(
            tuple(Rule.parse(rule) for rule in rules),
            str(calendar_args.get("timezone") or default_timezone),
            start_at,
            end_at,
        )


def is_active(schedule: Schedule, instant: datetime) -> bool:
    """Whether ``schedule`` is active at ``instant`` (an aware datetime, any zone)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be an aware datetime")
    if schedule.start_at is not None and instant < schedule.start_at:
        return False
    if schedule.end_at is not None and instant >= schedule.end_at:
        return False
    local = instant.astimezone(ZoneInfo(schedule.timezone))
    wall = local.time()  # naive: the clinic's wall clock
    weekday = local.weekday()
    return any(any(rule.covers(weekday, wall)) for rule in schedule.rules)
