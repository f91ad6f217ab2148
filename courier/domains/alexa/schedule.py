"""When a reminder is due: a local wall-clock time in an IANA zone, repeated by an RFC 5545
RRULE, expanded with python-dateutil in local time so that a weekly 08:30 stays 08:30 across
daylight-saving changes (its UTC instant moves instead).

Rules are checked and expanded by the bounded recurrence of appointments
(:mod:`courier.domains.appointments.recurrence`): FREQ DAILY or coarser, no rule that can never
happen, COUNT at most 1000, a start in 1970 or later, and every expansion looks at most ten
years ahead. Without these bounds one reminder (FREQ=MINUTELY from 2020, or a day that never
exists) made every list of reminders spend seconds to minutes in dateutil.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from courier.domains.appointments import recurrence

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


class ScheduleError(ValueError):
    """A reminder's time and rule do not make a schedule; ``attribute`` names the culprit."""

    def __init__(self, attribute: str, detail: str) -> None:
        super().__init__(detail)
        self.attribute = attribute


def _for_reminders(error: ValueError) -> str:
    """The recurrence module's message in the words of a reminder's attributes."""
    text = str(error).replace("an appointment's rule", "a reminder's rule")
    text = text.replace("a recurring appointment", "a recurring reminder")
    return text.replace("start-time", "reminder-time-local")


def normalise_rule(text: str) -> str:
    """The rule as the Reminders API takes it (``FREQ=...``, no ``RRULE:`` prefix), checked:
    RFC 5545 (by dateutil), one rule, no DTSTART (the local time is the start), within the
    bounds of :mod:`courier.domains.appointments.recurrence`."""
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
        return recurrence.normalise_rule(rule)
    except ValueError as error:
        raise ValueError(_for_reminders(error)) from None


def _start(time_local: str, tz_info: str) -> datetime:
    return parse_local_time(time_local).replace(tzinfo=ZoneInfo(tz_info))


def check_schedule(time_local: str, tz_info: str, rule: str | None) -> None:
    """A recurring reminder starts in 1970 or later and its rule has an occurrence within ten
    years of the start (all of them, with COUNT); :class:`ScheduleError` (400) otherwise."""
    if not rule:
        return
    start = _start(time_local, tz_info)
    if start < recurrence.EARLIEST_SERIES:
        raise ScheduleError("reminder-time-local", "must be in 1970 or later for a recurring rule")
    try:
        recurrence.check_rule(rule, start, tz_info)
    except ValueError as error:
        raise ScheduleError("reminder-rrule", _for_reminders(error)) from None


def next_occurrences(
    time_local: str,
    tz_info: str,
    rule: str | None,
    *,
    after: datetime,
    count: int = SHOWN_OCCURRENCES,
) -> list[datetime]:
    """The next ``count`` times (aware, UTC) the reminder is due after ``after``."""
    start = _start(time_local, tz_info)
    if not rule:
        instant = start.astimezone(UTC)
        return [instant] if instant > after else []
    found = recurrence.occurrences(rule, start, tz_info, after=after, count=count + 1)
    return [instant for instant in found if instant > after][:count]
