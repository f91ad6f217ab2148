"""The ``template`` plugin type: Jinja2 text rendered in a locked-down sandbox.

Templates are written by an organization's administrators and rendered on request for
patients' channels, so the language is narrowed to what a message needs and what cannot hurt
the server:

- Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment`, autoescape off (plain text);
- expressions, ``{% if %}``, filters and tests from short allowlists; no loops, macros,
  assignments, blocks, includes or imports, so rendering is linear in the template's length;
- no globals (no ``range``, ``namespace``, ``lipsum``, ``cycler``); attribute access only to
  the keys of the context's plain dicts and a few harmless attributes of ``now``; no
  ``str.format`` and no ``%`` formatting;
- ``*``, ``+``, ``**`` and ``~`` are checked before they run, every filter's result is
  bounded, and the output stops at :data:`MAX_RENDERED_LENGTH` characters;
- unknown variables and unknown attributes of the context are refused when the plugin is
  created or modified (400 naming ``args``); a missing value (a channel without a group, an
  individual without a preferred name) renders as nothing.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.sandbox import SandboxedEnvironment
from jinja2.tests import TESTS
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from courier.domains.messaging_plugins.types import (
    MAX_RENDERED_LENGTH,
    ArgsError,
    ExpandContext,
    RenderError,
    args_error_from,
)

MAX_TEMPLATE_LENGTH = 10_000
# How deep a template's expressions may nest (parentheses, filter chains, operators): Jinja2
# parses and compiles recursively, and a deeper tree would exhaust Python's stack.
MAX_TEMPLATE_DEPTH = 40
MAX_INTEGER_BITS = 4096
MAX_LIST_ITEMS = 100

# The context a template sees: variable -> its keys (None: not a dict, see NOW_ATTRIBUTES).
CONTEXT_KEYS: dict[str, frozenset[str] | None] = {
    "channel": frozenset({"id", "name", "label", "subscriber_count"}),
    "group": frozenset({"id", "name", "member_count"}),
    "individual": frozenset({"id", "first_name", "last_name", "preferred_name"}),
    "organization": frozenset({"id", "name", "display_name", "timezone"}),
    "now": None,
}
NOW_ATTRIBUTES = frozenset(
    {
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "weekday",
        "isoweekday",
        "isoformat",
        "strftime",
        "date",
        "time",
    }
)

SAFE_FILTERS = (
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "first",
    "float",
    "int",
    "last",
    "length",
    "lower",
    "round",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "wordcount",
)
SAFE_TESTS = (
    "boolean",
    "defined",
    "divisibleby",
    "eq",
    "equalto",
    "even",
    "false",
    "float",
    "ge",
    "gt",
    "in",
    "integer",
    "le",
    "lower",
    "lt",
    "ne",
    "none",
    "number",
    "odd",
    "sameas",
    "string",
    "true",
    "undefined",
    "upper",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
)
ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.If,
    nodes.Name,
    nodes.Const,
    nodes.Tuple,
    nodes.List,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
    nodes.CondExpr,
    nodes.Filter,
    nodes.Test,
    nodes.Call,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Concat,
    nodes.Compare,
    nodes.Operand,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Pow,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
)
_SEQUENCES = (str, list, tuple)
_STATEMENTS: dict[type[nodes.Node], str] = {
    nodes.For: "{% for %}",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.With: "{% with %}",
    nodes.Block: "{% block %}",
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from %}",
}


class TooLargeError(SecurityError):
    """A value would exceed what a message can hold."""


def _limit(value: Any) -> int:
    return MAX_RENDERED_LENGTH if isinstance(value, str) else MAX_LIST_ITEMS


def _too_large() -> TooLargeError:
    return TooLargeError(
        f"a value is longer than {MAX_RENDERED_LENGTH} characters (or {MAX_LIST_ITEMS} items)"
    )


def _bounded(value: Any) -> Any:
    if isinstance(value, _SEQUENCES) and len(value) > _limit(value):
        raise _too_large()
    return value


def _too_big(operator_name: str, left: Any, right: Any) -> bool:
    """Whether ``left <operator> right`` would exceed the bounds (checked before it runs)."""
    if operator_name == "**" and isinstance(left, int) and isinstance(right, int):
        return right > 0 and max(left.bit_length(), 1) * right > MAX_INTEGER_BITS
    if operator_name == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, _SEQUENCES) and isinstance(count, int):
                return len(sequence) * count > _limit(sequence)
    if operator_name == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        return len(left) + len(right) > _limit(left)
    return False


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a join that refuses oversized results (Jinja's own is unbounded)."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802 (Jinja's name)
        self.write("environment.bounded_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _bounded(function(*args, **kwargs))

    # Keep Jinja's pass_context/pass_environment markers so it calls the filter correctly.
    wrapper.__dict__.update(getattr(function, "__dict__", {}))
    wrapper.__name__ = name
    return wrapper


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value


class MessageSandbox(SandboxedEnvironment):
    """The sandbox with Courier's narrower rules (see the module docstring)."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self) -> None:
        super().__init__(
            autoescape=False,
            undefined=ChainableUndefined,
            finalize=_finalize,
            keep_trailing_newline=True,
        )
        self.globals.clear()
        self.filters = {name: _bounded_filter(name, FILTERS[name]) for name in SAFE_FILTERS}
        self.tests = {name: TESTS[name] for name in SAFE_TESTS}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Dict keys never come here (they are looked up by item); only real attributes do,
        # and of those only a few of dates and times.
        if not super().is_safe_attribute(obj, attr, value):
            return False
        return isinstance(obj, date | time) and attr in NOW_ATTRIBUTES

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja returns an undefined value that fails only when used; with lenient undefined
        # values it would render as nothing. Refuse at once instead.
        raise SecurityError(
            f"access to attribute {attribute!r} of a {type(obj).__name__} object is unsafe"
        )

    def wrap_str_format(self, value: Any) -> None:
        return None  # no str.format / format_map: is_safe_attribute then refuses them

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "%" and isinstance(left, str):
            raise SecurityError("% formatting of strings is not available; use filters")
        if _too_big(operator_name, left, right):
            if operator_name == "**":
                raise TooLargeError(f"a power may have at most {MAX_INTEGER_BITS} bits")
            raise _too_large()
        return _BINOPS[operator_name](left, right)

    def bounded_join(self, values: tuple[Any, ...]) -> str:
        joined = "".join(str(value) for value in values)
        if len(joined) > MAX_RENDERED_LENGTH:
            raise _too_large()
        return joined


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "+": operator.add,
    "**": operator.pow,
    "%": operator.mod,
}

ENVIRONMENT = MessageSandbox()


def _check_tree(tree: nodes.Template) -> None:
    """Refuse what the sandbox does not serve, and names the context does not have."""
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, ALLOWED_NODES):
            kind = _STATEMENTS.get(type(node), type(node).__name__.lower())
            raise ArgsError(
                f"args.template uses {kind} (line {node.lineno}), which plugin templates do not "
                "allow: use expressions, filters and {% if %}",
                "template",
            )
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in CONTEXT_KEYS:
            raise ArgsError(
                f"args.template names an unknown variable {node.name!r} (line {node.lineno}); "
                "known: " + ", ".join(CONTEXT_KEYS),
                "template",
            )
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            key = node.attr if isinstance(node, nodes.Getattr) else _const_key(node)
            if key is not None and key.startswith("_"):
                raise ArgsError(
                    f"args.template may not access {key!r} (line {node.lineno})", "template"
                )
            target = node.node
            if key is not None and isinstance(target, nodes.Name):
                known = CONTEXT_KEYS.get(target.name)
                allowed = NOW_ATTRIBUTES if known is None else known
                if key not in allowed:
                    raise ArgsError(
                        f"args.template: {target.name} has no {key!r} (line {node.lineno}); "
                        f"known: {', '.join(sorted(allowed))}",
                        "template",
                    )


def _too_deep() -> ArgsError:
    return ArgsError(
        f"args.template nests more than {MAX_TEMPLATE_DEPTH} levels deep (parentheses, "
        "chained filters or operators)",
        "template",
    )


def too_deep(tree: nodes.Template) -> bool:
    """Whether a tree is deeper than :data:`MAX_TEMPLATE_DEPTH` (walked without recursion)."""
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TEMPLATE_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return False


def _check_depth(tree: nodes.Template) -> None:
    """Refuse a tree deeper than :data:`MAX_TEMPLATE_DEPTH`."""
    if too_deep(tree):
        raise _too_deep()


def _const_key(node: nodes.Getitem) -> str | None:
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


@lru_cache(maxsize=512)
def _compile(source: str) -> Any:
    return ENVIRONMENT.from_string(source)


def render_template(source: str, context: ExpandContext) -> str:
    """Render ``source``; :class:`RenderError` saying why it could not be."""
    values = {
        "channel": context.channel,
        "group": context.group,
        "individual": context.individual,
        "organization": context.organization,
        "now": context.now,
    }
    return render_source(source, values)


def render_source(
    source: str, values: Mapping[str, Any], compile_source: Callable[[str], Any] = _compile
) -> str:
    """Render ``source`` over ``values`` in a :class:`MessageSandbox` (``compile_source``
    compiles it in one, cached), the output bounded; :class:`RenderError` saying why it could
    not be. Notification templates (``courier.domains.templates``) render through it too."""
    try:
        template = compile_source(source)
        parts: list[str] = []
        length = 0
        for chunk in template.generate(values):
            length += len(chunk)
            if length > MAX_RENDERED_LENGTH:
                raise TooLargeError(f"the message is longer than {MAX_RENDERED_LENGTH} characters")
            parts.append(chunk)
    except TooLargeError as exc:
        raise RenderError(str(exc)) from exc
    except SecurityError as exc:
        raise RenderError(f"the template did something the sandbox refuses: {exc}") from exc
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise RenderError(f"the template failed: {exc}") from exc
    except RecursionError as exc:
        raise RenderError("the template nests too deeply") from exc
    return "".join(parts)


SAMPLE = ExpandContext(
    channel={"id": "00000000-0000-4000-8000-000000000000", "name": "Care team", "label": "",
             "subscriber_count": 3},
    group={"id": "00000000-0000-4000-8000-000000000001", "name": "Cardiology", "member_count": 2},
    individual={"id": "00000000-0000-4000-8000-000000000002", "first_name": "Sam",
                "last_name": "Sample", "preferred_name": None},
    organization={"id": "00000000-0000-4000-8000-000000000003", "name": "Clinic",
                  "display_name": None, "timezone": "UTC"},
    now=datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
)  # fmt: skip


class TemplateArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = Field(min_length=1, max_length=MAX_TEMPLATE_LENGTH)


class TemplateType:
    """Jinja2 text over the channel, its group, the caller, the organization and ``now``."""

    name = "template"
    summary = "Jinja2 text over channel, group, individual, organization and now: args {template}"

    def check_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        try:
            parsed = TemplateArgs.model_validate(dict(args))
        except ValidationError as exc:
            raise args_error_from(exc) from exc
        try:
            tree = ENVIRONMENT.parse(parsed.template)
            _check_depth(tree)
            _check_tree(tree)
            _compile(parsed.template)  # finds unknown filters and tests
        except RecursionError as exc:
            raise _too_deep() from exc
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f" (line {line})" if line else ""
            raise ArgsError(
                f"args.template is not a valid template{where}: {exc.message or exc}", "template"
            ) from exc
        try:
            # A trial render over sample values finds what only the sandbox sees at run time
            # (unsafe attributes, oversized values).
            render_template(parsed.template, SAMPLE)
        except RenderError as exc:
            raise ArgsError(f"args.template cannot be rendered: {exc}", "template") from exc
        return {"template": parsed.template}

    def render(self, args: Mapping[str, Any], context: ExpandContext) -> str:
        source = args.get("template")
        if not isinstance(source, str):
            raise RenderError("the plugin has no template")
        return render_template(source, context)
