"""The registry of plugin types: how each checks its ``args`` and renders message text.

A plugin type is a small object with a ``name``, a ``summary``, ``check_args`` (called on
create and patch: returns the args to store, or raises :class:`ArgsError` naming the
offending arg) and ``render`` (called on expand with plain values of the channel, its group,
the calling individual, the organization and the current time). Adding a type is writing
one such class and passing an instance to :func:`register_type` (the built-in ones are
registered by the package's ``__init__``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError

# A message holds at most 10,000 characters: no plugin renders more.
MAX_RENDERED_LENGTH = 10_000


class ArgsError(ValueError):
    """``args`` are not valid for the type: ``path`` names the arg (``template``), if any."""

    def __init__(self, detail: str, path: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.path = path


class RenderError(ValueError):
    """The plugin could not be rendered for this channel (the detail says why)."""


@dataclass(frozen=True)
class ExpandContext:
    """What a plugin may show, as plain values (never ORM objects)."""

    channel: dict[str, Any]
    group: dict[str, Any] | None
    individual: dict[str, Any] | None
    organization: dict[str, Any]
    now: datetime  # in the organization's time zone


class PluginType(Protocol):
    name: str
    summary: str

    def check_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The args to store, normalised; :class:`ArgsError` when they are not valid."""
        ...

    def render(self, args: Mapping[str, Any], context: ExpandContext) -> str:
        """The message text; :class:`RenderError` when it cannot be produced."""
        ...


PLUGIN_TYPES: dict[str, PluginType] = {}


def register_type(plugin_type: PluginType) -> PluginType:
    if plugin_type.name in PLUGIN_TYPES:
        raise ValueError(f"plugin type {plugin_type.name!r} registered twice")
    PLUGIN_TYPES[plugin_type.name] = plugin_type
    return plugin_type


def type_names() -> list[str]:
    return sorted(PLUGIN_TYPES)


def args_error_from(exc: ValidationError) -> ArgsError:
    """The first problem of a pydantic validation of args, as an :class:`ArgsError`."""
    first = exc.errors()[0]
    path = "/".join(str(part) for part in first.get("loc", ()))
    kind = first.get("type", "")
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not an argument of this plugin type"
    else:
        message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
        if not message[1:2].isupper():  # keep acronyms such as "URL" as they are
            message = message[:1].lower() + message[1:]
    return ArgsError(f"args.{path.replace('/', '.')} {message}" if path else message, path)


# --- link --------------------------------------------------------------------------------


class LinkArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[AnyHttpUrl, Field(description="An http or https URL")]
    text: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class LinkType:
    """A fixed line: ``text: url`` (or the URL alone without text)."""

    name = "link"
    summary = "A fixed line with a link: args {url, text?}"

    def check_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        try:
            parsed = LinkArgs.model_validate(dict(args))
        except ValidationError as exc:
            raise args_error_from(exc) from exc
        if len(str(parsed.url)) > 2048:
            raise ArgsError("args.url must be at most 2048 characters", "url")
        checked: dict[str, Any] = {"url": str(parsed.url)}
        if parsed.text is not None:
            checked["text"] = parsed.text.strip() or None
        return checked

    def render(self, args: Mapping[str, Any], context: ExpandContext) -> str:
        url = str(args.get("url", ""))
        text = args.get("text")
        return f"{text}: {url}" if text else url
