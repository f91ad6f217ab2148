"""Declared actions and sub-collections of a resource.

An :class:`ActionSpec` on a :class:`~courier.jsonapi.resource.ResourceSpec` names an action
(``POST /v1/jobs/{id}/retry/``) or a read (``GET /v1/webhooks/{id}/get-deliveries/``): its body
schema, who may call it, its status, its handler and what it answers. The route factory builds
the route and its exact OpenAPI from it (operation id ``<name>-<version>-<type>``, request body,
responses), loads the target through the resource's repository (404 for another organization's
id, or one an individual may not see), records the changes the handler returns, and renders.

Action bodies take the seed's plain JSON (``{"individual-ids": [...]}``) and the same
attributes in a JSON:API document (``{"data": {"type": ..., "attributes": {...}}}``) alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from courier.core.auth import Permission
from courier.jsonapi.context import Context
from courier.jsonapi.documents import ReadAttributes, kebab, refuse_snake_case
from courier.jsonapi.query import Filter, PageBounds, Param

if TYPE_CHECKING:
    from courier.jsonapi.resource import ResourceSpec

Handler = Callable[..., Awaitable[Any]]
Renderer = Callable[[Context, Any], Awaitable[Any]]
Presenter = Callable[[Context, Sequence[Any]], Awaitable[list[dict[str, Any]]]]
# Finds an item action's target by id (404 when the caller may not use it): ``await
# loader(ctx, ident, for_update=...)``.
Loader = Callable[..., Awaitable[Any]]

SELF: Any = "self"  # ActionSpec.response: the resource the action belongs to


class ActionBody(BaseModel):
    """Base of an action's plain JSON body: kebab-case names, unknown names refused."""

    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, extra="forbid")


class EmptyBody(ActionBody):
    """An action that takes no options: ``{}`` (or no body at all)."""


@dataclass(frozen=True)
class Listing:
    """A sub-collection served by an action (``GET /{id}/get-logs/``): the handler returns the
    statement of its rows; the factory parses the page, filters and sort, paginates and
    renders each row as a ``type_name`` resource."""

    type_name: str
    read_schema: type[ReadAttributes]
    order: Callable[[], Sequence[Any]]  # the fixed order (ending with the id) when no sort
    page: PageBounds = field(default_factory=PageBounds)
    filters: Sequence[Filter] = ()
    sorts: Mapping[str, Any] = field(default_factory=dict)
    ident: Any = None  # the id column, to break ties of a requested sort
    present: Presenter | None = None  # default: read_schema of each row
    extra_params: Mapping[str, str | Param] = field(default_factory=dict)
    # An aggregate listing (the statement selects labelled columns, not a model): how each
    # row's resource id is made. None: the rows are model objects with an ``id``.
    row_id: Callable[[Any], uuid.UUID] | None = None


@dataclass
class ActionSpec:
    """One declared action of a resource.

    ``handler``: for an item action ``await handler(ctx, target, body)`` where ``target`` is
    the row loaded through the repository (locked for POST), or what ``loader`` finds, or its
    id with ``load=False``; for a collection action (``on="collection"``) ``await
    handler(ctx, body)``. ``body`` is None
    when the action declares none or the client sent none. Declared query ``parameters`` are
    parsed into ``ctx.query``. It returns the object to answer with, or a
    :class:`~courier.jsonapi.changes.Changed` (whose changes are recorded), or, with a
    ``listing``, the statement of the sub-collection's rows, or a ready Response.
    """

    name: str  # path segment: /{id}/<name>/ (item) or /<name>/ (collection; "" the collection)
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None  # plain JSON schema (an ActionBody); None: no body
    permission: Permission = Permission.MANAGE
    individuals: bool = False  # may individual tokens call it (on what their scope leaves)
    individual_exempt: bool = False  # an individual token skips the permission check
    # GET reads; POST (the seed's actions), PATCH and DELETE change: their target is locked.
    method: Literal["POST", "GET", "PATCH", "DELETE"] = "POST"
    on: Literal["item", "collection"] = "item"
    load: bool = True  # load the target row before the handler (item actions)
    # Where the target comes from when it is not one of the resource's readable rows (e.g. a
    # plugin an individual token may expand but not list); default: the resource's repository.
    loader: Loader | None = None
    status: int | None = None  # default: 201 for POST, 200 for GET
    # What it answers: SELF (the resource), another ResourceSpec, a pydantic model (the handler
    # returns an instance or a dict), or None (a null body).
    response: Any = SELF
    render: Renderer | None = None  # a custom rendering of the handler's object
    listing: Listing | None = None
    parameters: Sequence[Filter] = ()  # query parameters, parsed into ctx.query
    headers: Mapping[str, str] = field(default_factory=dict)
    description: str = ""  # default: the handler's docstring
    operation_id: str = ""
    tags: Sequence[str] = ()

    @property
    def status_code(self) -> int:
        return self.status or (201 if self.method == "POST" else 200)

    @property
    def changes_state(self) -> bool:
        return self.method != "GET"

    def path(self, spec: ResourceSpec[Any]) -> str:
        base = spec.path if self.on == "collection" else spec.path + "{id}/"
        return base + (f"{self.name}/" if self.name else "")

    def resolved_response(self, spec: ResourceSpec[Any]) -> Any:
        return spec if self.response is SELF else self.response


def _is_own_document(cls: type[BaseModel]) -> bool:
    """A body whose own top-level member is ``data`` (a JSON:API document already, such as the
    channel's JSON-Patch) is taken as it is, never unwrapped."""
    return "data" in {(f.alias or n) for n, f in cls.model_fields.items()}


def _check_envelope(document: dict[str, Any]) -> None:
    """The parts of the JSON:API wrapper an action ignores must still have their types."""
    if "meta" in document and not isinstance(document["meta"], dict):
        raise PydanticCustomError("envelope", "meta must be an object")
    for name in ("type", "id"):
        if name in document["data"] and not isinstance(document["data"][name], str):
            raise PydanticCustomError("envelope", f"data.{name} must be a string")
    unknown = sorted(set(document["data"]) - {"type", "id", "attributes"})
    if unknown:
        raise PydanticCustomError(
            "envelope", f"data.{unknown[0]} is not taken here (data holds type, id and attributes)"
        )


def _unwrap(cls: type[BaseModel], value: Any) -> Any:
    """Unwrap a JSON:API document around an action body and apply the naming rule."""
    pointer = ""
    if (
        isinstance(value, dict)
        and "data" in value
        and set(value) <= {"data", "meta"}
        and not _is_own_document(cls)
        and isinstance(value["data"], dict)
        and "attributes" in value["data"]
    ):
        _check_envelope(value)
        value = value["data"]["attributes"]
        pointer = "/data/attributes"
    refuse_snake_case(cls, value, pointer)
    return value


def _both_forms(
    cls: type[BaseModel], core_schema: CoreSchema, handler: GetJsonSchemaHandler
) -> JsonSchemaValue:
    """The body's schema: the plain attributes, or the same wrapped in a JSON:API document."""
    plain = dict(handler.resolve_ref_schema(handler(core_schema)))
    if _is_own_document(cls):
        return plain
    envelope = {
        "type": "object",
        "title": "JSON:API document",
        "properties": {
            "data": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "id": {"type": "string"},
                    "attributes": plain,
                },
                "required": ["attributes"],
                "additionalProperties": False,
            },
            "meta": {"type": "object"},
        },
        "required": ["data"],
        "additionalProperties": False,
    }
    return {"anyOf": [plain, envelope], "title": plain.get("title", cls.__name__)}


_REQUEST_MODELS: dict[type[BaseModel], type[BaseModel]] = {}


def request_model(body: type[BaseModel]) -> type[BaseModel]:
    """The model that parses ``body`` as a request: plain, or wrapped in a JSON:API document
    (``{"data": {"type": ..., "attributes": {...}}}``); snake_case names refused."""
    model = _REQUEST_MODELS.get(body)
    if model is None:
        namespace = {
            "__module__": body.__module__,
            "__qualname__": body.__qualname__,
            "__doc__": body.__doc__,
            "_unwrap_document": model_validator(mode="before")(classmethod(_unwrap)),  # type: ignore[arg-type]
            "__get_pydantic_json_schema__": classmethod(_both_forms),
        }
        metaclass: Any = type(body)
        model = metaclass(body.__name__, (body,), namespace)
        _REQUEST_MODELS[body] = model
    return model


def body_required(body: type[BaseModel]) -> bool:
    return any(info.is_required() for info in body.model_fields.values())
