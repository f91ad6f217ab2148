"""Rows straight to JSON-ready dicts: a renderer compiled once per read schema.

The read schemas (pydantic models) stay the documented contract: OpenAPI is generated from
them and the tests validate every response against it. What the request path no longer does
is build a model per row: :func:`renderer` reads a schema's fields once (Python name, wire
alias, where the value comes from, its type) and compiles a converter per field, so that
rendering a row is one getattr (or dict lookup) and one small conversion per field:

- ``uuid.UUID`` → ``str``; ``Timestamp`` → :func:`~courier.core.time.format_timestamp`;
  ``date`` → ISO date; ``str``/``int``/``bool``/string literals → as they are; ``float`` from
  an ``int`` → ``float``; ``X | None`` → None kept; lists and ``dict[str, X]`` item by item;
  nested models → their own compiled renderer; ``Any``/free JSON → copied when plain JSON.
- A value whose runtime type is not the expected one (a ``str`` where a ``UUID`` is
  declared, a ``StrEnum`` member, a naive time …) goes through pydantic for that value
  (a ``TypeAdapter`` of the field's own annotation), so the output stays exactly what
  ``model_validate(row).model_dump(mode="json", by_alias=True)`` gives.
- Types too exotic to compile (validators other than the timestamp's, custom serializers,
  unions of several types, sets, plain datetimes) use pydantic for that field only; models
  with validator or serializer decorators, computed fields or non-string validation aliases
  use pydantic as a whole. :func:`fallbacks` says which, for the record.

``VERIFY`` (``COURIER_RENDER_VERIFY=1`` in the environment) renders every row both ways and
raises on any difference: the test suite can run the whole API under it.
"""

from __future__ import annotations

import enum
import math
import os
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, PlainSerializer, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from courier.core.time import format_timestamp

Convert = Callable[[Any], Any]
Render = Callable[[Any], dict[str, Any]]

VERIFY = os.environ.get("COURIER_RENDER_VERIFY", "") not in ("", "0")

_MISSING: Any = object()
_RENDERERS: dict[type[BaseModel], Render] = {}
# Why a schema or field is rendered through pydantic: "Model" or "Model.field" -> reason.
_FALLBACKS: dict[str, str] = {}

# Validation-only metadata: constraints a value read back from the database already meets.
_CONSTRAINTS = frozenset(
    {
        "MaxLen",
        "MinLen",
        "Ge",
        "Le",
        "Gt",
        "Lt",
        "MultipleOf",
        "Strict",
        "WithJsonSchema",
        "_PydanticGeneralMetadata",
        "Interval",
    }
)


class _ExoticError(Exception):
    """A type the compiler leaves to pydantic."""


def fallbacks() -> dict[str, str]:
    """Schemas and fields rendered through pydantic so far, and why."""
    return dict(_FALLBACKS)


def _pydantic_value(annotation: Any) -> Convert:
    """One value through pydantic: validated and dumped as the field would be."""
    adapter: TypeAdapter[Any] | None = None

    def convert(value: Any) -> Any:
        nonlocal adapter
        if adapter is None:
            adapter = TypeAdapter(annotation)
        return adapter.dump_python(
            adapter.validate_python(value, from_attributes=True), mode="json", by_alias=True
        )

    return convert


def _is_timestamp_serializer(item: Any) -> bool:
    return isinstance(item, PlainSerializer) and item.func is format_timestamp


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, m1, m2]`` (nested too, and FieldInfo metadata) -> (T, [m1, m2 …])."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation = args[0]
        for item in args[1:]:
            if isinstance(item, FieldInfo):
                metadata.extend(item.metadata)
            else:
                metadata.append(item)
    return annotation, metadata


def _timestamp(value: Any) -> Any:
    if type(value) is datetime and value.tzinfo is not None:
        return format_timestamp(value)
    raise _SlowError


class _SlowError(Exception):
    """This value's runtime type is not the one compiled for: ask pydantic."""


def _with_slow_path(fast: Convert, annotation: Any) -> Convert:
    slow = _pydantic_value(annotation)

    def convert(value: Any) -> Any:
        try:
            return fast(value)
        except _SlowError:
            return slow(value)

    return convert


def _same(kind: type) -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is kind:
            return value
        raise _SlowError

    return convert


def _uuid(value: Any) -> Any:
    # A subclass too: asyncpg gives its own (``asyncpg.pgproto.pgproto.UUID``), so a Core row
    # read on PostgreSQL would otherwise take pydantic's path for every id.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise _SlowError


def _date(value: Any) -> Any:
    if type(value) is date:
        return value.isoformat()
    raise _SlowError


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float and math.isfinite(value):
        return value
    if kind is int:
        return float(value)
    raise _SlowError


_PLAIN = (str, int, bool, type(None))


def _free_json(value: Any) -> Any:
    """``Any``: a fresh copy of plain JSON (what pydantic's dump gives); anything else slow."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        raise _SlowError
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _SlowError
            out[key] = _free_json(item)
        return out
    if kind is list:
        return [_free_json(item) for item in value]
    raise _SlowError


def _literal(annotation: Any) -> Convert:
    values = typing.get_args(annotation)
    kinds = {type(v) for v in values}
    if len(kinds) != 1 or kinds.pop() not in (str, int, bool):
        raise _ExoticError("a literal of mixed or non-plain values")
    kind = type(values[0])
    return _same(kind)


def _compile(annotation: Any) -> Convert:
    """The converter of one annotated type (raising _SlowError for a value it was not compiled
    for), or _ExoticError when the type is left to pydantic."""
    annotation, metadata = _split(annotation)
    timestamp = False
    for item in metadata:
        if _is_timestamp_serializer(item):
            timestamp = True
        elif getattr(getattr(item, "func", None), "__name__", "") == "_parse_time":
            continue  # the timestamp's own BeforeValidator: values read back are datetimes
        elif type(item).__name__ not in _CONSTRAINTS:
            raise _ExoticError(f"metadata {type(item).__name__}")
    if timestamp:
        if annotation is not datetime:
            raise _ExoticError("a timestamp serializer on a non-datetime")
        return _timestamp
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        others = [a for a in args if a is not type(None)]
        if len(others) != 1:
            raise _ExoticError("a union of several types")
        inner = _compile(others[0])

        def optional(value: Any) -> Any:
            return None if value is None else inner(value)

        return optional
    if origin is Literal:
        return _literal(annotation)
    if origin is list:
        item = _compile(args[0]) if args else _free_json

        def many(value: Any) -> Any:
            if type(value) is not list:
                raise _SlowError
            return [item(x) for x in value]

        return many
    if origin is dict:
        if not args or args[0] is not str:
            raise _ExoticError("a dict whose keys are not str")
        item = _compile(args[1])

        def mapping(value: Any) -> Any:
            if type(value) is not dict:
                raise _SlowError
            return {k: item(v) for k, v in value.items()}

        return mapping
    if origin is not None:
        raise _ExoticError(f"{origin}")
    if annotation is Any:
        return _free_json
    if annotation is uuid.UUID:
        return _uuid
    if annotation is str or annotation is int or annotation is bool:
        return _same(annotation)
    if annotation is float:
        return _float
    if annotation is date:
        return _date
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        members = {m: m.value for m in annotation}

        def member(value: Any) -> Any:
            if value in members and type(value) is annotation:
                return members[value]
            raise _SlowError

        return member
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        nested = renderer(annotation)

        def model(value: Any) -> Any:
            return nested(value)

        return model
    raise _ExoticError(f"type {annotation!r}")


def _validated_field(model: type[BaseModel], name: str, annotation: Any) -> Convert:
    """A field with validator decorators: pydantic validates that field alone (an assignment
    to a bare instance runs its validators), then dumps it."""
    adapter: TypeAdapter[Any] | None = None

    def convert(value: Any) -> Any:
        nonlocal adapter
        if adapter is None:
            adapter = TypeAdapter(annotation)
        instance = model.model_construct()
        model.__pydantic_validator__.validate_assignment(instance, name, value)
        return adapter.dump_python(getattr(instance, name), mode="json", by_alias=True)

    return convert


def _field_converter(model: type[BaseModel], name: str, info: FieldInfo) -> Convert:
    owner = model.__name__
    annotation: Any = info.annotation
    if info.metadata:
        annotation = typing.Annotated[(annotation, *info.metadata)]
    validators = model.__pydantic_decorators__.field_validators.values()
    if any(name in dec.info.fields for dec in validators):
        _FALLBACKS[f"{owner}.{name}"] = "validator decorators"
        return _validated_field(model, name, annotation)
    try:
        fast = _compile(annotation)
    except _ExoticError as why:
        _FALLBACKS[f"{owner}.{name}"] = str(why)
        return _pydantic_value(annotation)
    return _with_slow_path(fast, annotation)


def _whole_model(model: type[BaseModel]) -> str | None:
    """Why ``model`` is rendered through pydantic as a whole (None: it is compiled)."""
    decorators = model.__pydantic_decorators__
    if decorators.model_validators:
        return "model validators"
    if any("*" in dec.info.fields for dec in decorators.field_validators.values()):
        return "a validator of every field"
    if decorators.field_serializers or decorators.model_serializers:
        return "serializer decorators"
    if decorators.computed_fields:
        return "computed fields"
    if model.model_config.get("extra") == "allow":
        return "extra attributes allowed"
    for info in model.model_fields.values():
        if info.validation_alias is not None and not isinstance(info.validation_alias, str):
            return "alias choices"
        if info.exclude:
            return "excluded fields"
    return None


def _pydantic_model(model: type[BaseModel]) -> Render:
    def render(row: Any) -> dict[str, Any]:
        return model.model_validate(row, from_attributes=True).model_dump(
            mode="json", by_alias=True
        )

    return render


def renderer(model: type[BaseModel]) -> Render:
    """The compiled renderer of ``model``: row (object with attributes, or mapping) → the
    dict ``model.model_validate(row).model_dump(mode="json", by_alias=True)`` would give."""
    found = _RENDERERS.get(model)
    if found is not None:
        return found
    why = _whole_model(model)
    if why is not None:
        _FALLBACKS[model.__name__] = why
        render = _pydantic_model(model)
        _RENDERERS[model] = render
        return render
    # Registered before its fields compile: a model that nests itself finds this.
    plan: list[tuple[str, tuple[str, ...], Convert, Any, Any]] = []
    whole = _pydantic_model(model)

    def compiled(row: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        get: Callable[[Any, str, Any], Any] = _item if isinstance(row, Mapping) else getattr
        for key, sources, convert, default, factory in plan:
            value = _MISSING
            for source in sources:
                value = get(row, source, _MISSING)
                if value is not _MISSING:
                    break
            else:
                if factory is not None:
                    value = factory()
                elif default is PydanticUndefined:
                    # A required field the row lacks: pydantic's own answer (its error).
                    return whole(row)
                else:
                    value = default
            out[key] = convert(value)
        return out

    _RENDERERS[model] = compiled
    inline: list[tuple[type, bool] | None] = []
    for name, info in model.model_fields.items():
        inline.append(_inline(info))
        # Every caller dumps by alias (the wire's kebab-case names).
        key = info.serialization_alias or info.alias or name
        plan.append(
            (
                key,
                _sources(name, info),
                _field_converter(model, name, info),
                info.default,
                info.default_factory,
            )
        )
    straight = _straight(model, plan, inline, compiled)
    _RENDERERS[model] = straight
    if VERIFY:
        return _verified(model, straight)
    return straight


def _inline(info: FieldInfo) -> tuple[type, bool] | None:
    """(kind, optional) of a plain ``str``/``int``/``bool`` field (or ``… | None``), which the
    straight-line renderer checks in place; None for any other."""
    if any(type(m).__name__ not in _CONSTRAINTS for m in info.metadata):
        return None
    annotation: Any = info.annotation
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        others = [a for a in args if a is not type(None)]
        if len(others) != 1 or len(args) != 2:
            return None
        annotation, optional = others[0], True
    kinds: tuple[type, ...] = (str, int, bool)
    for kind in kinds:
        if annotation is kind:
            return kind, optional
    return None


def _straight(
    model: type[BaseModel],
    plan: list[tuple[str, tuple[str, ...], Convert, Any, Any]],
    inline: list[tuple[type, bool] | None],
    general: Render,
) -> Render:
    """The renderer as one straight-line function (generated once): one lookup per field
    and its conversion in place, no loop. A mapping that carries a wire name (an alias such
    as ``first-name``) takes the general path, which looks aliases up first as pydantic does;
    attribute names are identifiers, so objects are read by their identifier names only."""
    names: dict[str, Any] = {"_M": _MISSING, "_Mapping": Mapping, "_general": general}
    aliases: set[str] = set()
    by_key: list[str] = []
    by_attr: list[str] = []
    defaults: list[str] = []
    values: list[str] = []
    for i, ((key, sources, convert, default, factory), fast) in enumerate(
        zip(plan, inline, strict=True)
    ):
        usable = [s for s in sources if s.isidentifier()]
        aliases.update(s for s in sources if not s.isidentifier())
        for n, source in enumerate(usable):
            test = f"if v{i} is _M: " if n else ""
            by_key.append(f"        {test}v{i} = _get({source!r}, _M)")
            by_attr.append(f"        {test}v{i} = getattr(row, {source!r}, _M)")
        if not usable:
            by_key.append(f"        v{i} = _M")
            by_attr.append(f"        v{i} = _M")
        if factory is not None:
            names[f"_F{i}"] = factory
            defaults.append(f"    if v{i} is _M: v{i} = _F{i}()")
        elif default is PydanticUndefined:
            defaults.append(f"    if v{i} is _M: return _general(row)")
        else:
            names[f"_D{i}"] = default
            defaults.append(f"    if v{i} is _M: v{i} = _D{i}")
        names[f"_C{i}"] = convert
        if fast is None:
            values.append(f"        {key!r}: _C{i}(v{i}),")
        else:
            names[f"_K{i}"] = fast[0]
            none = f"v{i} is None or " if fast[1] else ""
            values.append(f"        {key!r}: v{i} if {none}type(v{i}) is _K{i} else _C{i}(v{i}),")
    names["_ALIASES"] = frozenset(aliases)
    source = "\n".join(
        [
            "def render(row):",
            "    if isinstance(row, _Mapping):",
            "        if not _ALIASES.isdisjoint(row): return _general(row)",
            "        _get = row.get",
            *by_key,
            "    else:",
            *by_attr,
            *defaults,
            "    return {",
            *values,
            "    }",
        ]
    )
    exec(compile(source, f"<renderer of {model.__name__}>", "exec"), names)
    render: Render = names["render"]
    return render


def _item(row: Any, key: str, missing: Any) -> Any:
    return row.get(key, missing)


def _sources(name: str, info: FieldInfo) -> tuple[str, ...]:
    """Where pydantic looks for a field's value (populate_by_name: alias first, then name)."""
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    return (alias, name) if alias and alias != name else (name,)


def _verified(model: type[BaseModel], compiled: Render) -> Render:
    reference = _pydantic_model(model)

    def render(row: Any) -> dict[str, Any]:
        fast = compiled(row)
        slow = reference(row)
        if orjson.dumps(fast) != orjson.dumps(slow):
            raise AssertionError(f"{model.__name__}: compiled {fast!r} != pydantic {slow!r}")
        return fast

    _RENDERERS[model] = render
    return render


def render_rows(model: type[BaseModel], rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Each row's attributes, as ``model`` documents them."""
    render = renderer(model)
    return [render(row) for row in rows]


def check_fixed_point(model: type[BaseModel], document: dict[str, Any]) -> None:
    """``document`` (attributes rendered by hand, JSON-ready) is what ``model`` would render
    of it: validated by its wire names and dumped again, the same bytes. Raises otherwise."""
    again = model.model_validate(document).model_dump(mode="json", by_alias=True)
    if orjson.dumps(again) != orjson.dumps(document):
        raise AssertionError(f"{model.__name__}: rendered {document!r} != contract {again!r}")
