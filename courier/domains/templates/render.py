"""Checking and rendering notification templates: the one place other domains call.

A template's texts are Jinja2 in the messaging plugins' locked-down sandbox
(:class:`~courier.domains.messaging_plugins.template.MessageSandbox`: no loops, imports or
unsafe attributes, bounded output), with :class:`~jinja2.StrictUndefined`: a name that is
not a declared data key or one of the context's (``individual``, ``organization``, ``now``)
is refused when the template is saved, and a missing value fails the rendering instead of
printing nothing. Email ``html`` is rendered with autoescaping, the other texts as plain text.

- :func:`check_text` (create/update): parse, the allowed nodes and names, a trial render over
  sample values; :class:`TextError` saying why, naming no field (the service points at it).
- :func:`check_data`: every missing or mistyped key of ``required-data``, one line each.
- :func:`render`: ``{channel: rendering}`` for one recipient's locale (falling back to the
  organization's locale, then to the template's default bodies) and data. A sensitive
  template's push (``apn``, ``fcm``, ``web``) and ``sms`` renderings carry only its neutral
  line and deep link; ``email`` and ``app`` (what the app shows once opened) keep the full text.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import StrictUndefined, TemplateError, meta, nodes

from courier.domains.messaging_plugins.template import (
    ALLOWED_NODES,
    CONTEXT_KEYS,
    MAX_TEMPLATE_DEPTH,
    NOW_ATTRIBUTES,
    MessageSandbox,
    render_source,
    too_deep,
)
from courier.domains.messaging_plugins.types import RenderError
from courier.models.template import Template

PUSH_CHANNELS = ("apn", "fcm", "web")
CHANNELS = (*PUSH_CHANNELS, "sms", "email")
DATA_TYPES = ("string", "number", "boolean", "date")
# Names every template sees besides its data keys; a data key may not take one of them.
CONTEXT_NAMES = ("individual", "organization", "now")
INDIVIDUAL_KEYS = CONTEXT_KEYS["individual"] or frozenset()
ORGANIZATION_KEYS = CONTEXT_KEYS["organization"] or frozenset()

__all__ = [
    "CHANNELS",
    "DATA_TYPES",
    "PUSH_CHANNELS",
    "DataError",
    "Recipient",
    "RenderError",
    "Renderer",
    "TextError",
    "check_data",
    "check_text",
    "render",
]


class TextError(ValueError):
    """A template text that cannot be saved (the detail says why, without the field)."""


class DataError(ValueError):
    """The data does not satisfy ``required-data``: one line per missing or mistyped key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class NotificationSandbox(MessageSandbox):
    """The plugins' sandbox with strict undefined values (and autoescape for email html)."""

    def __init__(self, *, html: bool = False) -> None:
        super().__init__()
        self.undefined = StrictUndefined
        self.autoescape = html


TEXT = NotificationSandbox()
HTML = NotificationSandbox(html=True)


@lru_cache(maxsize=1024)
def _compile_text(source: str) -> Any:
    return TEXT.from_string(source)


@lru_cache(maxsize=256)
def _compile_html(source: str) -> Any:
    return HTML.from_string(source)


@dataclass(frozen=True)
class Recipient:
    """Who a template is rendered for, as plain values: the ``individual`` and
    ``organization`` the template may show (the keys of the plugins' context), the time zone
    dates are shown in, and the organization's locale (the fallback of every rendering)."""

    individual: Mapping[str, Any] = field(default_factory=dict)
    organization: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    organization_locale: str = "en"


# --- checking what is saved ----------------------------------------------------------------


def check_text(source: str, required: Mapping[str, str], *, html: bool = False) -> None:
    """Refuse a text that is not a valid template over ``required`` (data key -> type)."""
    environment = HTML if html else TEXT
    try:
        tree = environment.parse(source)
        if too_deep(tree):
            raise TextError(
                f"nests more than {MAX_TEMPLATE_DEPTH} levels deep (parentheses, chained "
                "filters or operators)"
            )
        _check_tree(tree, required)
        (_compile_html if html else _compile_text)(source)  # unknown filters and tests
    except RecursionError as exc:
        raise TextError("nests too deeply") from exc
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TextError(f"is not a valid template{where}: {exc.message or exc}") from exc
    try:
        # A trial render over sample values finds what only the sandbox sees at run time.
        _render_text(source, _values(_samples_for(required), _SAMPLE_RECIPIENT), html=html)
    except RenderError as exc:
        raise TextError(f"cannot be rendered: {exc}") from exc


def _check_tree(tree: nodes.Template, required: Mapping[str, str]) -> None:
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, ALLOWED_NODES):
            raise TextError(
                f"uses {type(node).__name__.lower()} (line {node.lineno}), which templates do "
                "not allow: use expressions, filters and {% if %}"
            )
        if (
            isinstance(node, nodes.Name)
            and node.ctx == "load"
            and node.name not in required
            and node.name not in CONTEXT_NAMES
        ):
            known = [*sorted(required), *CONTEXT_NAMES]
            raise TextError(
                f"names {node.name!r} (line {node.lineno}), which is neither a key of "
                f"required-data nor of the context; known: {', '.join(known)}"
            )
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            key = node.attr if isinstance(node, nodes.Getattr) else _const_key(node)
            if key is not None and key.startswith("_"):
                raise TextError(f"may not access {key!r} (line {node.lineno})")
            target = node.node
            if key is not None and isinstance(target, nodes.Name):
                allowed = _attributes_of(target.name, required)
                if key not in allowed:
                    listed = ", ".join(sorted(allowed)) or "none"
                    raise TextError(
                        f"{target.name} has no {key!r} (line {node.lineno}); known: {listed}"
                    )


def _attributes_of(name: str, required: Mapping[str, str]) -> frozenset[str]:
    if name == "individual":
        return INDIVIDUAL_KEYS
    if name == "organization":
        return ORGANIZATION_KEYS
    if name == "now" or required.get(name) == "date":
        return NOW_ATTRIBUTES
    return frozenset()


def _const_key(node: nodes.Getitem) -> str | None:
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


_SAMPLE_VALUES: dict[str, Any] = {
    "string": "sample",
    "number": 1,
    "boolean": True,
    "date": datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
}


def _samples_for(required: Mapping[str, str]) -> dict[str, Any]:
    return {key: _SAMPLE_VALUES[kind] for key, kind in required.items()}


def sample_data(required: Mapping[str, str]) -> dict[str, Any]:
    """Sample values of a template's data keys, as a request would send them (dates as ISO
    times): what a preview or a test send renders with."""
    return {
        key: value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
        for key, value in _samples_for(required).items()
    }


_SAMPLE_RECIPIENT = SAMPLE_RECIPIENT = Recipient(
    individual={
        "id": "00000000-0000-4000-8000-000000000002",
        "first_name": "Sam",
        "last_name": "Sample",
        "preferred_name": None,
    },
    organization={
        "id": "00000000-0000-4000-8000-000000000003",
        "name": "Clinic",
        "display_name": None,
        "timezone": "UTC",
    },
)


# --- data ----------------------------------------------------------------------------------


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _parse_date(text: str) -> date | datetime | None:
    """An ISO date (``2024-01-15``) or an ISO time with an offset; None when it is neither (a
    time without an offset is ambiguous, so it is refused)."""
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    try:
        parsed = datetime.fromisoformat(text)
        # An instant that cannot be shown in UTC (year 1 with a positive offset) is refused too.
        parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _checked(
    required: Mapping[str, str], data: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, kind in sorted(required.items()):
        if key not in data:
            problems.append(f"{key} is missing (a {kind})")
            continue
        value = data[key]
        got = _type_of(value)
        if kind == "date":
            parsed = _parse_date(value) if isinstance(value, str) else None
            if parsed is None:
                problems.append(
                    f"{key} must be a date: an ISO date (2024-01-15) or time with an offset "
                    f"(2024-01-15T10:00:00Z), got {'a string' if got == 'string' else got}"
                )
            else:
                values[key] = parsed
        elif got != kind or (isinstance(value, float) and not math.isfinite(value)):
            problems.append(f"{key} must be a {kind}, got {got}")
        else:
            values[key] = value
    return values, problems


def check_data(required: Mapping[str, str], data: Mapping[str, Any]) -> list[str]:
    """Every missing or mistyped key of ``required`` in ``data``, one line each (keys the
    template does not require are ignored)."""
    return _checked(required, data)[1]


# --- rendering -----------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _shown_in(value: Any, zone: ZoneInfo) -> Any:
    if not isinstance(value, datetime):
        return value
    try:
        return value.astimezone(zone)
    except OverflowError:  # at the edge of the calendar: shown as given
        return value


def _values(data: Mapping[str, Any], recipient: Recipient) -> dict[str, Any]:
    zone = _zone(recipient.timezone)
    values = {key: _shown_in(value, zone) for key, value in data.items()}
    values["individual"] = dict(recipient.individual)
    values["organization"] = dict(recipient.organization)
    values["now"] = datetime.now(UTC).astimezone(zone)
    return values


def _render_text(source: str, values: Mapping[str, Any], *, html: bool = False) -> str:
    return render_source(source, values, _compile_html if html else _compile_text)


def locale_chain(locale: str | None, organization_locale: str | None) -> list[str]:
    """The locale tags tried, in order, case-folded: the recipient's, its language, the
    organization's, its language."""
    chain: list[str] = []
    for tag in (locale, organization_locale):
        if not tag:
            continue
        folded = tag.replace("_", "-").casefold()
        for candidate in (folded, folded.split("-", 1)[0]):
            if candidate not in chain:
                chain.append(candidate)
    return chain


@dataclass(frozen=True)
class Variant:
    """Where a channel's body (or the neutral line) came from: a locale tag, or None for the
    template's default."""

    locale: str | None
    value: Any


def _pick(template: Any, chain: Iterable[str], name: str, default: Any) -> Variant | None:
    variants = {tag.casefold(): (tag, body) for tag, body in (template.locales or {}).items()}
    for folded in chain:
        found = variants.get(folded)
        if found is not None and found[1].get(name) is not None:
            return Variant(found[0], found[1][name])
    return None if default is None else Variant(None, default)


@lru_cache(maxsize=1024)
def _names(source: str) -> frozenset[str] | None:
    """The names a text reads (None: it does not parse; rendered as it comes, to fail)."""
    try:
        return frozenset(meta.find_undeclared_variables(TEXT.parse(source)))
    except (TemplateError, RecursionError):
        return None


def render(
    template: Template,
    locale: str | None,
    data: Mapping[str, Any],
    recipient: Recipient | None = None,
) -> dict[str, dict[str, Any]]:
    """The template rendered for one recipient, by channel.

    ``locale`` is the recipient's (None: the organization's). Each channel the template serves
    (in the chosen locale or its default bodies) gets a rendering:

    - ``apn``, ``fcm``, ``web``: ``{title, body, category, data, locale}``;
    - ``sms``: ``{body, locale}``; ``email``: ``{subject, text, html, locale}``;
    - ``app``: ``{title, body, category, data, locale}``, the full text the app shows (the
      first push body, else the SMS body, else the email).

    ``locale`` in each says which variant was used (None: the default bodies).
    :class:`DataError` when ``data`` misses or
    mistypes a required key; :class:`RenderError` when a text cannot be rendered.
    A batch of recipients renders through one :class:`Renderer` instead.
    """
    return Renderer(template, data).render(locale, recipient)


_PER_RECIPIENT = frozenset({"individual", "now"})  # a text naming these renders each time


@dataclass(frozen=True)
class _Picked:
    """A locale chain's variants: each channel's body, and the neutral line."""

    channels: tuple[tuple[str, Variant], ...]
    neutral: Variant | None


class Renderer:
    """One template and its data rendered for many recipients (a multicast's chunk), each
    as :func:`render` renders it: the data is checked once, each locale's variants are picked
    once, and a text that names neither ``individual`` nor ``now`` is rendered once per time
    zone its dates are shown in (once, without dates), instead of once per recipient."""

    def __init__(self, template: Template, data: Mapping[str, Any]) -> None:
        self.template = template
        required: Mapping[str, str] = template.required_data or {}
        self._typed, self._problems = _checked(required, data)
        self._dates = frozenset(key for key, kind in required.items() if kind == "date")
        self._picked: dict[tuple[str, ...], _Picked] = {}
        self._texts: dict[tuple[Any, ...], str] = {}

    def _pick_all(self, chain: list[str]) -> _Picked:
        key = tuple(chain)
        picked = self._picked.get(key)
        if picked is None:
            template = self.template
            channels: Mapping[str, Any] = template.channels or {}
            found = []
            for channel in CHANNELS:
                variant = _pick(template, chain, channel, channels.get(channel))
                if variant is not None:
                    found.append((channel, variant))
            neutral = (
                _pick(template, chain, "neutral-text", template.neutral_text)
                if template.sensitive
                else None
            )
            picked = self._picked[key] = _Picked(tuple(found), neutral)
        return picked

    def render(self, locale: str | None, recipient: Recipient | None = None) -> dict[str, Any]:
        """:func:`render` for one recipient."""
        if self._problems:
            raise DataError(list(self._problems))
        recipient = recipient or Recipient()
        values: dict[str, Any] | None = None

        def text(source: str, *, html: bool = False) -> str:
            nonlocal values
            names = _names(source)
            key: tuple[Any, ...] | None = None
            if names is not None and not names & _PER_RECIPIENT:
                key = (
                    source,
                    html,
                    recipient.timezone if names & self._dates else None,
                    tuple(recipient.organization.items()) if "organization" in names else None,
                )
                done = self._texts.get(key)
                if done is not None:
                    return done
            if values is None:
                values = _values(self._typed, recipient)
            shown = _render_text(source, values, html=html)
            if key is not None:
                self._texts[key] = shown
            return shown

        picked = self._pick_all(locale_chain(locale, recipient.organization_locale))
        full: dict[str, dict[str, Any]] = {}
        for channel, variant in picked.channels:
            full[channel] = _render_body(channel, variant.value, text) | {"locale": variant.locale}
        rendered = dict(full)
        rendered["app"] = _app(full)
        template = self.template
        if template.sensitive:
            neutral = picked.neutral
            line = neutral.value if neutral is not None else template.neutral_text
            link = text(template.deep_link) if template.deep_link else None
            for channel in PUSH_CHANNELS:
                if channel in rendered:
                    rendered[channel] = {
                        "title": None,
                        "body": line,
                        "category": rendered[channel]["category"],
                        "data": {"deep-link": link} if link else {},
                        "locale": neutral.locale if neutral is not None else None,
                    }
            if "sms" in rendered:
                rendered["sms"] = {
                    "body": f"{line} {link}" if link else line,
                    "locale": neutral.locale if neutral is not None else None,
                }
        return rendered


def _render_body(
    channel: str, body: Mapping[str, Any], render_text: Callable[..., str]
) -> dict[str, Any]:
    def text(name: str, *, html: bool = False) -> str | None:
        source = body.get(name)
        return None if source is None else render_text(source, html=html)

    if channel == "sms":
        return {"body": text("body")}
    if channel == "email":
        return {"subject": text("subject"), "text": text("text"), "html": text("html", html=True)}
    return {
        "title": text("title"),
        "body": text("body"),
        "category": body.get("category"),
        "data": {key: render_text(source) for key, source in (body.get("data") or {}).items()},
    }


def _app(full: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    for channel in PUSH_CHANNELS:
        if channel in full:
            return dict(full[channel])
    if "sms" in full:
        sms = full["sms"]
        return {
            "title": None,
            "body": sms["body"],
            "category": None,
            "data": {},
            "locale": sms["locale"],
        }
    email = full.get("email") or {}
    return {
        "title": email.get("subject"),
        "body": email.get("text") or "",
        "category": None,
        "data": {},
        "locale": email.get("locale"),
    }


def individual_values(
    ident: uuid.UUID | None, first_name: str | None, last_name: str | None, preferred: str | None
) -> dict[str, Any]:
    """The ``individual`` a template sees."""
    return {
        "id": str(ident) if ident else None,
        "first_name": first_name,
        "last_name": last_name,
        "preferred_name": preferred,
    }
