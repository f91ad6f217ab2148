"""List queries: ``page[...]``/``size``/``start``, ``filter[...]``, ``filter[cmp-...]``, ``sort``.

Each resource declares an allowlist of filters and sorts; anything else is refused with 400
naming the parameter (ARCHITECTURE.md: no generic filter that lets clients name any column).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, func, or_
from starlette.datastructures import QueryParams

from courier.core.errors import ApiError, ErrorItem, invalid_parameter
from courier.core.phone import E164_SCHEMA, E164_US_SCHEMA, check_e164
from courier.core.time import parse_timestamp

if TYPE_CHECKING:
    from courier.jsonapi.context import Context

Parser = Callable[[str], Any]
Apply = Callable[[Select[Any], Any, "Context"], Select[Any]]

GLOBAL_PARAMS = frozenset({"format"})
PAGE_PARAMS = frozenset({"page[limit]", "page[offset]", "size", "start"})
# More sort fields than any resource has are a mistake (or an attack on the query planner).
MAX_SORT_FIELDS = 10


# --- value parsers ---------------------------------------------------------------------------


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError("must be true, false, 1 or 0")


def parse_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError as exc:
        raise ValueError("must be a UUID") from exc


def parse_text(max_length: int = 255) -> Parser:
    def parse(text: str) -> str:
        if len(text) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        return text

    return parse


def parse_enum(*values: str) -> Parser:
    def parse(text: str) -> str:
        if text not in values:
            raise ValueError("must be one of " + ", ".join(values))
        return text

    parse.values = values  # type: ignore[attr-defined]
    return parse


# What a BIGINT (PostgreSQL) or INTEGER (SQLite) column, LIMIT or OFFSET holds: an integer
# query parameter never reaches the database outside it.
DB_INT_MIN = -(2**63)
DB_INT_MAX = 2**63 - 1
_INTEGER = re.compile(r"^[+-]?[0-9]{1,20}$")


def parse_int(minimum: int | None = None, maximum: int | None = None) -> Parser:
    low = DB_INT_MIN if minimum is None else max(minimum, DB_INT_MIN)
    high = DB_INT_MAX if maximum is None else min(maximum, DB_INT_MAX)

    def parse(text: str) -> int:
        if not _INTEGER.match(text.strip()):
            raise ValueError("must be an integer")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


_CMP = re.compile(r"^(>=|<=|>|<)(.+)$")
# What parse_time_comparisons accepts, for the OpenAPI document (the common ISO 8601 form).
TIME_COMPARISON_PATTERN = (
    r"^\s*(>=|<=|>|<)([1-8][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])\s*$"
)


def parse_time_comparisons(values: Sequence[str]) -> list[tuple[str, datetime]]:
    if len(values) > 2:
        raise ValueError("takes at most two comparisons")
    parsed = []
    for value in values:
        match = _CMP.match(value.strip())
        if not match:
            raise ValueError("must be a comparator (>, <, >=, <=) followed by an ISO 8601 time")
        parsed.append((match.group(1), parse_timestamp(match.group(2))))
    return parsed


# --- filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """One allowed query parameter of a list endpoint and how it narrows the rows."""

    param: str
    parse: Parser
    apply: Apply
    description: str = ""
    required: bool = False
    repeatable: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    # Applied when the parameter is absent (e.g. hide pending rows unless asked); None: nothing.
    default: Any = None


def _apply_eq(column: Any) -> Apply:
    return lambda stmt, value, _ctx: stmt.where(column == value)


def eq(
    param: str,
    column: Any,
    parse: Parser | None = None,
    description: str = "",
    schema: dict[str, Any] | None = None,
    required: bool = False,
) -> Filter:
    return Filter(
        param,
        parse or parse_text(),
        _apply_eq(column),
        description or f"Only rows whose {param} equals this value",
        required=required,
        schema=schema or {"type": "string"},
    )


def one_of(param: str, column: Any, values: Sequence[str], description: str = "") -> Filter:
    """Rows whose ``column`` is one of the given values: ``?param=a,b`` or ``?param=a&param=b``
    (each a member of ``values``; anything else, an empty value included, is a 400)."""
    allowed = list(values)
    choice = "|".join(re.escape(v) for v in allowed)

    def parse(given: Sequence[str]) -> list[str]:
        found: list[str] = []
        for value in given:
            for part in value.split(","):
                if part.strip() not in allowed:
                    raise ValueError(
                        f"must be one or more of {', '.join(allowed)} (comma-separated or repeated)"
                    )
                found.append(part.strip())
        return found

    return Filter(
        param,
        parse,
        lambda stmt, chosen, _ctx: stmt.where(column.in_(chosen)),
        description or f"Only these (comma-separated or repeated): {', '.join(allowed)}",
        repeatable=True,
        schema={"type": "string", "pattern": f"^({choice})(,({choice}))*$"},
    )


def uuid_eq(param: str, column: Any, description: str = "", required: bool = False) -> Filter:
    return Filter(
        param,
        parse_uuid,
        _apply_eq(column),
        description or f"Rows with this {param}",
        required=required,
        schema={"type": "string", "format": "uuid"},
    )


def organization(column: Any) -> Filter:
    """The seed's ``organization-id`` parameter: the caller's organization is the default; with
    the master key it picks one; another organization's id finds nothing (ids leak nothing)."""
    return uuid_eq(
        "organization-id",
        column,
        "The caller's organization (the default); another organization's id finds nothing",
    )


@dataclass(frozen=True)
class Param:
    """A plain query parameter an endpoint reads itself (not a filter): its documentation."""

    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


def flag(description: str) -> Param:
    """A true/false parameter (``true``, ``false``, ``1``, ``0``; read with ``parse_bool``)."""
    return Param(description, {"type": "boolean"})


def phone(
    param: str, column: Any, description: str, *, us_only: bool = False, required: bool = False
) -> Filter:
    """Rows whose ``column`` is this E.164 number (checked against the numbering plan, so a
    number that cannot exist is a 400 naming the parameter)."""
    return Filter(
        param,
        lambda text: check_e164(text, us_only=us_only),
        _apply_eq(column),
        description,
        required=required,
        schema=E164_US_SCHEMA if us_only else E164_SCHEMA,
    )


def boolean(param: str, column: Any, description: str = "") -> Filter:
    return Filter(param, parse_bool, _apply_eq(column), description, schema={"type": "boolean"})


def enum(param: str, column: Any, values: Sequence[str], description: str = "") -> Filter:
    return Filter(
        param,
        parse_enum(*values),
        _apply_eq(column),
        description,
        schema={"type": "string", "enum": list(values)},
    )


def contains(param: str, column: Any, description: str = "") -> Filter:
    """Case-insensitive substring match (LIKE wildcards in the value are taken literally)."""

    def apply(stmt: Select[Any], value: str, _ctx: Context) -> Select[Any]:
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return stmt.where(func.lower(column).like(f"%{escaped.lower()}%", escape="\\"))

    return Filter(param, parse_text(), apply, description or f"Rows whose {param} contains this")


def time_window(field_name: str, column: Any, description: str = "") -> Filter:
    """``filter[cmp-FIELD]=>=2024-01-01T00:00:00Z`` (up to two, repeated, bound a window)."""

    def apply(
        stmt: Select[Any], comparisons: list[tuple[str, datetime]], _ctx: Context
    ) -> Select[Any]:
        conditions: list[ColumnElement[bool]] = []
        for op, moment in comparisons:
            conditions.append(
                {
                    ">": column > moment,
                    "<": column < moment,
                    ">=": column >= moment,
                    "<=": column <= moment,
                }[op]
            )
        return stmt.where(*conditions)

    return Filter(
        f"filter[cmp-{field_name}]",
        parse_time_comparisons,
        apply,
        description
        or f"Compare {field_name}: a comparator (>, <, >=, <=) and an ISO "
        "8601 time; repeat to bound a window",
        repeatable=True,
        schema={"type": "string", "pattern": TIME_COMPARISON_PATTERN},
    )


def any_of(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return or_(*conditions)


# --- the parsed query ------------------------------------------------------------------------


@dataclass(frozen=True)
class PageBounds:
    default: int = 100
    maximum: int = 1000
    minimum: int = 1


@dataclass
class ListQuery:
    limit: int
    offset: int
    sort: list[tuple[str, bool]]  # (field, descending)
    values: dict[str, Any]  # parsed filter values by parameter name
    used_aliases: bool = False


def parse_list_query(
    params: QueryParams,
    *,
    filters: Sequence[Filter],
    sorts: Sequence[str],
    page: PageBounds,
    extra: frozenset[str] = frozenset(),
) -> ListQuery:
    known = {f.param: f for f in filters}
    errors: list[ErrorItem] = []
    allowed = ", ".join(
        [*known, *sorted(extra), *(["sort"] if sorts else []), "page[limit]", "page[offset]"]
    )
    for name in params:
        if name in known or name in PAGE_PARAMS or name in GLOBAL_PARAMS or name in extra:
            continue
        if name == "sort" and sorts:
            continue
        errors.append(
            ErrorItem(
                f"{name} is not a parameter of this endpoint; it takes {allowed}",
                "unknown-parameter",
                parameter=name,
            )
        )
    for name in params:
        if len(params.getlist(name)) > 1 and not (
            name == "sort" or (name in known and known[name].repeatable)
        ):
            errors.append(
                ErrorItem(f"{name} may be given only once", "repeated-parameter", parameter=name)
            )
    if errors:
        raise ApiError(400, errors, {}, True)

    limit, offset, aliased = _page(params, page)

    values: dict[str, Any] = {}
    for flt in filters:
        raw = params.getlist(flt.param)
        if not raw:
            if flt.required:
                errors.append(
                    ErrorItem(f"{flt.param} is required", "missing-parameter", parameter=flt.param)
                )
            elif flt.default is not None:
                values[flt.param] = flt.default
            continue
        try:
            values[flt.param] = flt.parse(raw) if flt.repeatable else flt.parse(raw[0])  # type: ignore[arg-type]
        except ValueError as exc:
            errors.append(ErrorItem(f"{flt.param} {exc}", "invalid-parameter", parameter=flt.param))
    sort: list[tuple[str, bool]] = []
    sort_items = [
        part for raw_sort in params.getlist("sort") if raw_sort for part in raw_sort.split(",")
    ]
    if len(sort_items) > MAX_SORT_FIELDS:
        raise invalid_parameter("sort", f"takes at most {MAX_SORT_FIELDS} fields", "invalid-sort")
    for item in sort_items:
        descending = item.startswith("-")
        name = item[1:] if descending else item
        if any(name == earlier for earlier, _ in sort):
            errors.append(
                ErrorItem(f"sort names {name} more than once", "invalid-sort", parameter="sort")
            )
        elif name not in sorts:
            errors.append(
                ErrorItem(
                    f"sort by {name!r} is not supported; use one of: {', '.join(sorts) or 'none'}"
                    " (comma-separated, '-' before a field for descending)",
                    "invalid-sort",
                    parameter="sort",
                )
            )
        else:
            sort.append((name, descending))
    if errors:
        raise ApiError(400, errors, {}, True)
    return ListQuery(limit, offset, sort, values, aliased)


def sort_pattern(sorts: Sequence[str]) -> str:
    """The regular expression of a valid ``sort`` value: empty, or up to ``MAX_SORT_FIELDS``
    comma-separated fields, each ``name`` or ``-name`` and each at most once. Written out as
    every order of every subset where that stays short (a few fields, as every list has);
    beyond, the pattern no longer says "at most once"."""
    assert all(re.fullmatch(r"[a-z0-9-]+", name) for name in sorts), sorts  # nothing to escape
    item = "-?(?:" + "|".join(sorts) + ")"
    if len(sorts) > 4:
        return f"^(?:{item}(?:,{item}){{0,{MAX_SORT_FIELDS - 1}}})?$"
    orders = [
        ",".join("-?" + name for name in order)
        for size in range(1, len(sorts) + 1)
        for order in itertools.permutations(sorts, size)
    ]
    return "^(?:" + "|".join(orders) + ")?$"


def _page(params: QueryParams, page: PageBounds) -> tuple[int, int, bool]:
    # The JSON:API names win: size/start (seed 000's aliases) are read only where the
    # page[...] parameter of the same meaning is absent (documented on each parameter).
    use_size = "size" in params and "page[limit]" not in params
    use_start = "start" in params and "page[offset]" not in params
    aliased = use_size or use_start
    # Every paging parameter given is checked, the ignored alias too: a bad value is a 400.
    limits: dict[str, int] = {}
    for name in ("page[limit]", "size"):
        if name in params:
            try:
                limits[name] = parse_int(page.minimum, page.maximum)(params[name])
            except ValueError as exc:
                raise invalid_parameter(name, str(exc)) from exc
    offsets: dict[str, int] = {}
    for name, lowest in (("page[offset]", 0), ("start", 1)):
        if name in params:
            try:
                offsets[name] = parse_int(lowest, None)(params[name]) - lowest
            except ValueError as exc:
                raise invalid_parameter(
                    name,
                    f"must be an integer from {lowest} to {DB_INT_MAX}"
                    + (" (1-based)" if lowest else ""),
                ) from exc
    limit = limits.get("size" if use_size else "page[limit]", page.default)
    offset = offsets.get("start" if use_start else "page[offset]", 0)
    return limit, offset, aliased
