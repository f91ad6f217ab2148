"""JSON:API documents: attribute base classes and the document models built per resource."""

from __future__ import annotations

import functools
import types
import typing
import uuid
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from starlette.requests import Request

from courier.core.errors import ApiError, ErrorItem
from courier.core.http import list_links_base
from courier.jsonapi.query import ListQuery


def kebab(name: str) -> str:
    return name.replace("_", "-")


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds (itself, or as list items), and whether it is a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset) and args:
        inner, _ = _nested_model(args[0])
        return inner, inner is not None
    if origin in (typing.Union, types.UnionType) or origin is typing.Annotated:
        for arg in args:
            inner, many = _nested_model(arg)
            if inner is not None:
                return inner, many
    return None, False


@functools.cache
def _attribute_shape(
    model: type[BaseModel],
) -> tuple[frozenset[str], tuple[tuple[str, type[BaseModel], bool], ...]]:
    """A model's wire names, and those of its fields that hold models (with whether as a
    list): worked out once per model, not on every request."""
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    nested = []
    for alias, info in fields.items():
        inner, many = _nested_model(info.annotation)
        if inner is not None:
            nested.append((alias, inner, many))
    return frozenset(fields), tuple(nested)


def refuse_snake_case(model: type[BaseModel], value: Any, pointer: str) -> None:
    """The rule for attribute names (docs/DEVELOPING.md, Conventions): they are kebab-case on
    the wire. A snake_case spelling of a known attribute (``first_name`` for ``first-name``) is
    refused with 400 naming the kebab-case attribute, at any depth of the document, rather than
    accepted silently. Free-form objects (``extended``) are not inspected."""
    if not isinstance(value, dict):
        return
    names, nested = _attribute_shape(model)
    errors = [
        ErrorItem(
            f"{key} is not a known attribute: attribute names are kebab-case, use {kebab(key)}",
            "snake-case-attribute",
            pointer=f"{pointer}/{key}",
        )
        for key in value
        if isinstance(key, str) and "_" in key and key not in names and kebab(key) in names
    ]
    if errors:
        raise ApiError(400, errors, {}, True)
    for alias, inner, many in nested:
        if alias not in value:
            continue
        items = value[alias] if many and isinstance(value[alias], list) else [value[alias]]
        for index, item in enumerate(items):
            where = f"{pointer}/{alias}/{index}" if many else f"{pointer}/{alias}"
            refuse_snake_case(inner, item, where)


class ReadAttributes(BaseModel):
    """Attributes of a response: snake_case in Python, kebab-case on the wire."""

    model_config = ConfigDict(
        alias_generator=kebab, populate_by_name=True, from_attributes=True, serialize_by_alias=True
    )


class WriteAttributes(BaseModel):
    """Attributes of a request. Unknown attributes are refused (400), never silently dropped."""

    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")

    def given(self) -> dict[str, Any]:
        """The attributes the client actually sent, by Python name."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def _title(type_name: str) -> str:
    return "".join(part.capitalize() for part in type_name.replace("_", "-").split("-"))


class PaginationMeta(BaseModel):
    start: int
    requested_size: int
    returned_count: int
    total: int
    hasMore: bool  # noqa: N815 (seed 000 spells it so)


class ListMeta(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    page_limit: int = Field(alias="page[limit]")
    page_offset: int = Field(alias="page[offset]")
    page_total: int = Field(alias="page[total]")
    pagination: PaginationMeta


class Links(BaseModel):
    self: str
    first: str
    prev: str | None
    next: str | None
    last: str


ORGANIZATION_ID_DESCRIPTION = (
    "The caller's organization, as the seed prints it (optional; another organization's id: 404)"
)


def with_organization_id(
    schema: type[WriteAttributes] | None, name: str
) -> type[WriteAttributes] | None:
    """``schema`` plus an optional ``organization-id``, unless it declares one itself."""
    if schema is None or "organization_id" in schema.model_fields:
        return schema
    extended: Any = typing.cast(
        Any,
        create_model(
            name,
            __base__=schema,
            organization_id=(
                uuid.UUID | None,
                Field(None, description=ORGANIZATION_ID_DESCRIPTION),
            ),
        ),
    )
    extended.__doc__ = schema.__doc__
    extended.declared = schema
    result: type[WriteAttributes] = extended
    return result


def without_organization_id(attrs: WriteAttributes) -> tuple[WriteAttributes, uuid.UUID | None]:
    """Split an ``organization-id`` added by :func:`with_organization_id` from the attributes
    the resource declares (so services see only their own schema)."""
    declared: type[WriteAttributes] | None = getattr(type(attrs), "declared", None)
    if declared is None or type(attrs).__dict__.get("declared") is None:
        return attrs, None
    given = attrs.model_fields_set
    values = {name: getattr(attrs, name) for name in declared.model_fields}
    plain = declared.model_construct(_fields_set=given - {"organization_id"}, **values)
    return plain, attrs.organization_id if "organization_id" in given else None  # type: ignore[attr-defined]


class _AttributesData(BaseModel):
    """``data`` of a create or update document: its attributes follow the naming rule."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _kebab_case_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            attributes = cls.model_fields["attributes"].annotation
            if isinstance(attributes, type) and issubclass(attributes, BaseModel):
                refuse_snake_case(attributes, value.get("attributes"), "/data/attributes")
        return value


def not_nullable(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` for an optional field that may be left out but never be ``null``
    (e.g. ``url: str | None = Field(default=None, json_schema_extra=not_nullable)``)."""
    branches = schema.pop("anyOf", None)
    if branches is None:
        return
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) == 1:
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept
    if schema.get("default", 0) is None:
        del schema["default"]


class DocumentModels:
    """The pydantic models of one resource type's documents (for validation and OpenAPI).

    The request models (``create_request``, ``update_request``) validate bodies and are built
    here; the response documents (``resource``, ``single``, ``many``) only describe answers in
    the OpenAPI document, so each is built when first asked for (issue 17, memory: ~3 MB of a
    server worker that is never asked for the document)."""

    def __init__(
        self,
        type_name: str,
        read: type[ReadAttributes],
        create: type[WriteAttributes] | None,
        update: type[WriteAttributes] | None,
        *,
        organization_attribute: bool = False,
        model_name: str | None = None,
    ) -> None:
        """``organization_attribute``: the resource carries ``organization-id``, so its create
        and update bodies accept it too (the caller's own organization; checked by the route).
        ``model_name``: a second set of models for one type needs its own name."""
        name = _title(model_name or type_name)
        self._name = name
        self._type_name = type_name
        self._read = read
        if organization_attribute:
            create = with_organization_id(create, f"{name}CreateAttributes")
            update = with_organization_id(update, f"{name}UpdateAttributes")
        self.create_request: type[BaseModel] | None = None
        self.update_request: type[BaseModel] | None = None
        if create is not None:
            data = create_model(
                f"{name}CreateData",
                __base__=_AttributesData,
                type=(str, Field(examples=[type_name])),
                attributes=(create, ...),
            )
            self.create_request = create_model(
                f"{name}CreateRequest",
                __config__=ConfigDict(extra="forbid"),
                data=(data, ...),
                meta=(dict[str, Any], Field(default_factory=dict)),
            )
        if update is not None:
            update_data = create_model(
                f"{name}UpdateData",
                __base__=_AttributesData,
                type=(str, Field(examples=[type_name])),
                id=(str, ...),
                attributes=(update, ...),
            )
            self.update_request = create_model(
                f"{name}UpdateRequest",
                __config__=ConfigDict(extra="forbid"),
                data=(update_data, ...),
                meta=(dict[str, Any], Field(default_factory=dict)),
            )

    @functools.cached_property
    def resource(self) -> type[BaseModel]:
        type_literal: Any = Literal[self._type_name]
        model: type[BaseModel] = create_model(
            f"{self._name}Resource",
            id=(uuid.UUID, ...),
            type=(type_literal, self._type_name),
            attributes=(self._read, ...),
        )
        return model

    @functools.cached_property
    def single(self) -> type[BaseModel]:
        model: type[BaseModel] = create_model(
            f"{self._name}Document",
            data=(self.resource, ...),
            meta=(dict[str, Any], Field(default_factory=dict)),
        )
        return model

    @functools.cached_property
    def many(self) -> type[BaseModel]:
        model: type[BaseModel] = create_model(
            f"{self._name}ListDocument",
            data=(list[self.resource], ...),  # type: ignore[name-defined,unused-ignore]
            meta=(ListMeta, ...),
            links=(Links, ...),
        )
        return model


def resource_object(type_name: str, ident: uuid.UUID, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(ident), "type": type_name, "attributes": attributes}


def single_document(obj: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"data": obj, "meta": meta or {}}


def list_document(
    request: Request, query: ListQuery, data: list[dict[str, Any]], total: int
) -> dict[str, Any]:
    """A list's document; its ``links`` are built on
    :func:`courier.core.http.list_links_base` (never on a Host the server does not answer
    for)."""
    settings = request.app.state.settings
    url = request.url
    base = list_links_base(settings.public_url, settings.allowed_hosts, str(url))
    limit, offset = query.limit, query.offset
    # page[limit]=0 (where a list allows it) asks for the total alone: no page to move to.
    last_offset = max(0, ((total - 1) // limit) * limit) if total and limit else 0

    def link(at: int) -> str:
        if query.used_aliases:
            params = {"size": str(limit), "start": str(at + 1)}
            drop = {"size", "start"}
        else:
            params = {"page[limit]": str(limit), "page[offset]": str(at)}
            drop = {"page[limit]", "page[offset]"}
        kept = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k not in drop]
        return f"{base}{url.path}?{_encode(kept + list(params.items()))}"

    return {
        "data": data,
        "meta": {
            "page[limit]": limit,
            "page[offset]": offset,
            "page[total]": total,
            "pagination": {
                "start": offset + 1,
                "requested_size": limit,
                "returned_count": len(data),
                "total": total,
                "hasMore": offset + len(data) < total,
            },
        },
        "links": {
            "self": link(offset),
            "first": link(0),
            "prev": link(max(0, offset - limit)) if offset > 0 and limit else None,
            "next": link(offset + limit) if limit and offset + limit < total else None,
            "last": link(last_offset),
        },
    }


def _encode(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs, safe="[]")
