"""Event type patterns: which event types a webhook subscribes to, or a stream's ``filter[type]``.

A pattern is one of

- ``*``: every event;
- an event type, ``api-keys.created``: exactly that type;
- a resource type, ``api-keys``: every event of that resource (``api-keys.created``,
  ``api-keys.deleted`` ...);
- a prefix ending in ``*``, ``api-keys.*`` or ``messaging-*``: every type that starts with the
  part before the ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_PATTERN_LENGTH = 96
MAX_PATTERNS = 50
_PATTERN = re.compile(r"^(?:[a-z0-9][a-z0-9.-]*)?\*?$")
PATTERN_REGEX = _PATTERN.pattern  # for the OpenAPI document (with minLength 1)


def check_pattern(value: str) -> str:
    """``value`` if it is a well-formed pattern, else ValueError saying why."""
    if not value or len(value) > MAX_PATTERN_LENGTH:
        raise ValueError(f"an event type pattern is 1 to {MAX_PATTERN_LENGTH} characters")
    if not _PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not an event type pattern: use a type (api-keys.created), a resource "
            "type (api-keys), a prefix ending in * (api-keys.*) or * for every event"
        )
    return value


def check_patterns(values: Iterable[str]) -> list[str]:
    """Distinct well-formed patterns, in the order given."""
    checked = list(dict.fromkeys(check_pattern(value) for value in values))
    if not checked:
        raise ValueError("name at least one event type, or * for every event")
    if len(checked) > MAX_PATTERNS:
        raise ValueError(f"at most {MAX_PATTERNS} event type patterns")
    return checked


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether ``event_type`` is selected by any of ``patterns``."""
    for pattern in patterns:
        if pattern.endswith("*"):
            if event_type.startswith(pattern[:-1]):
                return True
        elif event_type == pattern or event_type.startswith(pattern + "."):
            return True
    return False
