"""The rules of texting that need no database: segments, keywords, destinations, quiet hours.

Segments follow 3GPP TS 23.038 as carriers count them: a text made only of GSM-7 characters
(basic table, plus the extension table's characters at two septets each) is one segment up to
160 septets, else 153 per segment (an escape pair is never split across two); any other text
is UCS-2: 70 UTF-16 units in one segment, else 67 per segment (a surrogate pair is never split).
"""

from __future__ import annotations

import enum
import functools
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers

MAX_SEGMENTS = 10

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


class Encoding(enum.StrEnum):
    GSM7 = "gsm-7"
    UCS2 = "ucs-2"


@dataclass(frozen=True)
class SegmentCount:
    encoding: Encoding
    segments: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def count_segments(message: str) -> SegmentCount:
    """How many SMS segments ``message`` takes, and in which encoding."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in message):
        widths = [2 if ch in GSM7_EXTENSION else 1 for ch in message]
        return SegmentCount(Encoding.GSM7, _pack(widths, 160, 153), sum(widths))
    widths = [2 if ord(ch) > 0xFFFF else 1 for ch in message]
    return SegmentCount(Encoding.UCS2, _pack(widths, 70, 67), sum(widths))


def _pack(widths: list[int], single: int, per_part: int) -> int:
    total = sum(widths)
    if total == 0:
        return 1
    if total <= single:
        return 1
    parts, used = 1, 0
    for width in widths:  # an escape or surrogate pair stays in one part
        if used + width > per_part:
            parts += 1
            used = 0
        used += width
    return parts


# --- keywords --------------------------------------------------------------------------------


class Keyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
ACCEPT_WORDS = frozenset(
    {"YES", "Y", "YEAH", "YEP", "OK", "OKAY", "SURE", "ACCEPT", "AGREE", "I AGREE", "START"}
)
DECLINE_WORDS = frozenset({"NO", "N", "NOPE", "DECLINE", "DENY"})

_TRIM = string.whitespace + string.punctuation + "\u00a1\u00bf\u201c\u201d\u2018\u2019"


def normalize_reply(body: str) -> str:
    """A reply as keywords are matched: surrounding spaces and punctuation removed, inner runs
    of spaces made one, upper case."""
    return " ".join(body.strip(_TRIM).split()).upper()


def keyword_of(body: str) -> Keyword | None:
    word = normalize_reply(body)
    if word in STOP_WORDS:
        return Keyword.STOP
    if word in START_WORDS:
        return Keyword.START
    if word in HELP_WORDS:
        return Keyword.HELP
    return None


def matches_expected(body: str, expected: Iterable[str]) -> str | None:
    """The expected response ``body`` is (case- and space-insensitively), if any."""
    key = "".join(body.split()).casefold()
    for candidate in expected:
        if "".join(candidate.split()).casefold() == key:
            return candidate
    return None


# --- destinations (telephony config, seed 001) ----------------------------------------------

DEFAULT_ALLOWED_COUNTRIES = ("US", "CA")


@functools.lru_cache(maxsize=4096)
def country_of(target: str) -> str:
    """The region ``target`` (E.164) belongs to; remembered, as parsing it costs about as much
    as a statement (a clinic texts the same phones again and again)."""
    number = phonenumbers.parse(target, None)
    return phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code or 0
    )


def destination_refusal(target: str, config: dict[str, list[str]]) -> str | None:
    """Why the telephony config does not allow texting ``target``, or None when it does.

    A destination is allowed when its country is among ``allowed-countries`` (default US and
    CA) or it starts with one of ``allowed-prefixes``, and it starts with none of
    ``blocked-prefixes`` (which win).
    """
    country = country_of(target)
    blocked = [p for p in config.get("blocked-prefixes", []) if target.startswith(p)]
    if blocked:
        return (
            f"destination {target} matches the blocked prefix {blocked[0]} of the telephony config"
        )
    countries = config.get("allowed-countries", list(DEFAULT_ALLOWED_COUNTRIES))
    if country in countries:
        return None
    if any(target.startswith(p) for p in config.get("allowed-prefixes", [])):
        return None
    return (
        f"destination country {country} is not enabled in the organization's telephony config "
        "(allowed-countries / allowed-prefixes)"
    )


# --- quiet hours -------------------------------------------------------------------------


def quiet_hours_end(now: datetime, start: time, end: time, zone: str) -> datetime | None:
    """When the quiet hours that ``now`` falls in end (UTC), or None outside them.

    ``start``/``end`` are wall-clock times in ``zone``; a window may cross midnight
    (21:00-08:00). The end is computed on the local calendar, so a daylight-saving change
    inside the window still ends it at the right wall-clock time.
    """
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start == end:
        return None
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    wall = datetime.combine(end_day, end, tzinfo=tz)
    return wall.astimezone(ZoneInfo("UTC"))
