"""The route factory: a ResourceSpec becomes list/get/create/patch/delete routes.

This module deliberately evaluates annotations at definition time (no ``from __future__ import
annotations``): FastAPI reads the per-resource document models from the endpoint signatures.
"""

import inspect
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from courier.core.errors import (
    ApiError,
    ErrorItem,
    conflict,
    invalid_parameter,
    not_found,
    precondition_failed,
)
from courier.core.handlers import JsonResponse
from courier.core.http import etag_for, etag_matches
from courier.core.openapi import add_documented_route
from courier.jsonapi.actions import ActionSpec, body_required, request_model
from courier.jsonapi.changes import Changed, record_changes
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import (
    DocumentModels,
    WriteAttributes,
    list_document,
    resource_object,
    single_document,
    without_organization_id,
)
from courier.jsonapi.paging import paginate, sort_order
from courier.jsonapi.query import (
    DB_INT_MAX,
    PageBounds,
    Param,
    parse_list_query,
    sort_pattern,
)
from courier.jsonapi.render import render_rows
from courier.jsonapi.resource import Op, ResourceSpec

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "Error (CONVENTIONS.md error body)"},
}


def path_uuid(raw: str, what: str) -> uuid.UUID:
    """A path id that is not a UUID names nothing: 404 (CONVENTIONS.md)."""
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise not_found(what) from exc


def check_document(
    body: BaseModel,
    spec: ResourceSpec[Any],
    ident: uuid.UUID | None = None,
    ctx: Context | None = None,
) -> WriteAttributes:
    data = body.data  # type: ignore[attr-defined]
    if data.type != spec.type_name:
        raise conflict(f"data.type must be {spec.type_name}", "type-mismatch", pointer="/data/type")
    if ident is not None and data.id != str(ident):
        raise conflict("data.id must be the id in the path", "id-mismatch", pointer="/data/id")
    attrs, organization_id = without_organization_id(data.attributes)
    if organization_id is not None and ctx is not None:
        check_own_organization(ctx, organization_id)
    return attrs


def check_own_organization(ctx: Context, organization_id: uuid.UUID) -> None:
    """An ``organization-id`` in a body names the caller's own organization, else 404 (ids of
    other organizations leak nothing)."""
    if organization_id != ctx.principal.organization_id:
        raise ApiError(
            404,
            [
                ErrorItem(
                    f"organization-id names no organization this credential may use: "
                    f"{organization_id}",
                    "not-found",
                    pointer="/data/attributes/organization-id",
                )
            ],
        )


async def render_one(
    ctx: Context,
    spec: ResourceSpec[Any],
    obj: Any,
    *,
    revealed: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The single document of ``obj`` as the caller sees it; ``revealed`` attributes (shown
    in this response only) are added, ``meta`` becomes the document's meta."""
    attributes = (await spec.service.present(ctx, [obj]))[0]
    if revealed:
        attributes = {**attributes, **revealed}
    return single_document(resource_object(spec.type_name, obj.id, attributes), meta)


def settle(ctx: Context, spec: ResourceSpec[Any], result: Any, verb: str, fields: Any) -> Any:
    """Record what a service did: the changes of a :class:`Changed`, else the default
    ``<type>.<verb>`` of the bare object (through the service's ``audit``). The object."""
    if isinstance(result, Changed):
        record_changes(ctx, result.changes)
        return result.obj
    spec.service.audit(ctx, verb, result, fields)
    return result


async def render_result(ctx: Context, spec: ResourceSpec[Any], result: Any) -> dict[str, Any]:
    """The document of a service's result: a :class:`Changed` (with its revealed attributes
    and meta) or a bare object."""
    if isinstance(result, Changed):
        return await render_one(ctx, spec, result.obj, revealed=result.revealed, meta=result.meta)
    return await render_one(ctx, spec, result)


def _filter_parameters(filters: Any, extra_params: Any = ()) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for flt in filters:
        params.append(
            {
                "name": flt.param,
                "in": "query",
                "required": flt.required,
                "description": flt.description,
                "schema": flt.schema,
            }
        )
    for name, value in dict(extra_params).items():
        doc = value if isinstance(value, Param) else Param(value)
        params.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": doc.description,
                "schema": doc.schema,
            }
        )
    return params


def page_parameters(page: PageBounds) -> list[dict[str, Any]]:
    """The paging parameters of every list: ``page[limit]``/``page[offset]`` and their
    ``size``/``start`` aliases, bounded as the parser bounds them."""
    return [
        {
            "name": "page[limit]",
            "in": "query",
            "schema": {
                "type": "integer",
                "minimum": page.minimum,
                "maximum": page.maximum,
                "default": page.default,
            },
        },
        {
            "name": "page[offset]",
            "in": "query",
            "schema": {"type": "integer", "minimum": 0, "maximum": DB_INT_MAX, "default": 0},
        },
        {
            "name": "size",
            "in": "query",
            "description": "Alias of page[limit]; ignored when page[limit] is given",
            "schema": {"type": "integer", "minimum": page.minimum, "maximum": page.maximum},
        },
        {
            "name": "start",
            "in": "query",
            "description": "1-based alias of page[offset]; ignored when page[offset] is given",
            "schema": {"type": "integer", "minimum": 1, "maximum": DB_INT_MAX},
        },
    ]


def _page_parameters(page: PageBounds, sorts: Any) -> list[dict[str, Any]]:
    params = page_parameters(page)
    if sorts:
        params.append(
            {
                "name": "sort",
                "in": "query",
                "description": "Comma-separated fields, '-' for descending, each at most "
                "once: " + ", ".join(sorts),
                "schema": {"type": "string", "pattern": sort_pattern(list(sorts))},
            }
        )
    return params


def _list_parameters(spec: ResourceSpec[Any]) -> list[dict[str, Any]]:
    return [
        *_filter_parameters(spec.filters, spec.extra_params),
        *_page_parameters(spec.page, spec.sorts),
    ]


def _individual_param() -> dict[str, Any]:
    return {
        "name": "individual-id",
        "in": "query",
        "required": False,
        "description": "The individual on whose behalf the call is made (read state, unread "
        "counts, bookmarks). With an API key it is required where the operation acts for a "
        "person; an individual token implies its own individual (another one: 403)",
        "schema": {"type": "string", "format": "uuid"},
    }


_DOCUMENTS: dict[tuple[str, str], DocumentModels] = {}


def documents_of(spec: ResourceSpec[Any]) -> DocumentModels:
    """The document models of a resource, built once (one OpenAPI component each)."""
    key = (spec.version, spec.type_name)
    if key not in _DOCUMENTS:
        _DOCUMENTS[key] = DocumentModels(
            spec.type_name,
            spec.read_schema,
            spec.create_schema,
            spec.update_schema,
            # Every tenant resource belongs to one organization: it carries organization-id.
            organization_attribute=spec.tenant,
        )
    return _DOCUMENTS[key]


def build_router(spec: ResourceSpec[Any]) -> APIRouter:
    router = APIRouter(tags=[spec.tag])
    docs = documents_of(spec)
    service = spec.service
    collection = spec.path
    item = spec.path + "{id}/"
    summaries = spec.summaries

    def dep(op: Op) -> Any:
        return Depends(
            context_dependency(
                spec.permission(op),
                individual_allowed=spec.individual_scope is not None,
                individual_exempt=op in spec.individual_ops,
            )
        )

    if Op.LIST in spec.ops:
        extra = frozenset(spec.extra_params) | {"individual-id"}

        async def list_resources(request: Request, ctx: Context = dep(Op.LIST)) -> JsonResponse:
            query = parse_list_query(
                request.query_params,
                filters=spec.filters,
                sorts=list(spec.sorts),
                page=spec.page,
                extra=extra,
            )
            page = await service.list_page(ctx, query)
            if page is None:
                stmt = service.list_query(ctx)
                for flt in spec.filters:
                    if flt.param in query.values:
                        stmt = flt.apply(stmt, query.values[flt.param], ctx)
                total = await service.count(ctx, stmt, query.values)
                order = sort_order(spec.sorts, query.sort, spec.default_sort, spec.model.id)
                page = await paginate(
                    ctx.session, stmt, query, order, total=total, rows=service.list_rows
                )
            rows = page.rows
            data = [
                resource_object(spec.type_name, row.id, attrs)
                for row, attrs in zip(rows, await service.present(ctx, rows), strict=True)
            ]
            return JsonResponse(list_document(request, query, data, page.total))

        add_documented_route(
            router,
            collection,
            list_resources,
            methods=["GET"],
            response_model=None,
            summary=summaries.get(Op.LIST, f"List {spec.type_name}"),
            models={200: lambda: docs.many},
            responses=ERROR_RESPONSES,
            openapi_extra={"parameters": [*_list_parameters(spec), _individual_param()]},
            operation_id=f"list-{spec.version}-{spec.segment}",
        )

    if Op.GET in spec.ops:

        async def get_resource(id: str, ctx: Context = dep(Op.GET)) -> JsonResponse:
            obj = await service.load(ctx, path_uuid(id, spec.singular))
            return JsonResponse(await render_one(ctx, spec, obj))

        add_documented_route(
            router,
            item,
            get_resource,
            methods=["GET"],
            response_model=None,
            summary=summaries.get(Op.GET, f"Get one {spec.singular}"),
            models={200: lambda: docs.single},
            responses=ERROR_RESPONSES,
            openapi_extra={"parameters": [_individual_param()]},
            operation_id=f"get-{spec.version}-{spec.segment}",
        )

    if Op.CREATE in spec.ops:
        assert docs.create_request is not None, f"{spec.type_name}: CREATE needs create_schema"
        CreateRequest: Any = docs.create_request  # noqa: N806

        async def create_resource(
            body: CreateRequest,
            ctx: Context = dep(Op.CREATE),
        ) -> JsonResponse:
            attrs = check_document(body, spec, ctx=ctx)
            result = await service.create(ctx, attrs)
            await ctx.session.flush()
            settle(ctx, spec, result, "created", sorted(attrs.model_fields_set))
            return JsonResponse(await render_result(ctx, spec, result), status_code=201)

        add_documented_route(
            router,
            collection,
            create_resource,
            methods=["POST"],
            response_model=None,
            status_code=201,
            summary=summaries.get(Op.CREATE, f"Create a {spec.singular}"),
            models={201: lambda: docs.single},
            responses=ERROR_RESPONSES,
            operation_id=f"create-{spec.version}-{spec.segment}",
        )

    if Op.UPDATE in spec.ops:
        assert docs.update_request is not None, f"{spec.type_name}: UPDATE needs update_schema"
        UpdateRequest: Any = docs.update_request  # noqa: N806

        async def update_resource(
            id: str,
            body: UpdateRequest,
            request: Request,
            ctx: Context = dep(Op.UPDATE),
        ) -> JsonResponse:
            ident = path_uuid(id, spec.singular)
            attrs = check_document(body, spec, ident, ctx)
            obj = await service.load(ctx, ident, for_update=True)
            if_match = request.headers.get("if-match")
            if if_match is not None:
                current = orjson.dumps(await render_one(ctx, spec, obj))
                if not etag_matches(if_match, etag_for(current)):
                    raise precondition_failed()
            result = await service.update(ctx, obj, attrs)
            await ctx.session.flush()
            settle(ctx, spec, result, "updated", sorted(attrs.model_fields_set))
            return JsonResponse(await render_result(ctx, spec, result))

        add_documented_route(
            router,
            item,
            update_resource,
            methods=["PATCH"],
            response_model=None,
            summary=summaries.get(Op.UPDATE, f"Modify a {spec.singular}"),
            models={200: lambda: docs.single},
            responses=ERROR_RESPONSES,
            operation_id=f"update-{spec.version}-{spec.segment}",
        )

    if Op.DELETE in spec.ops:

        async def delete_resource(id: str, ctx: Context = dep(Op.DELETE)) -> JsonResponse:
            obj = await service.load(ctx, path_uuid(id, spec.singular), for_update=True)
            document = await render_one(ctx, spec, obj)
            result = await service.delete(ctx, obj)
            settle(ctx, spec, obj if result is None else result, "deleted", ())
            await ctx.session.flush()
            if obj in ctx.session:
                document = await render_one(ctx, spec, obj)  # soft delete: show the new state
            return JsonResponse(document)

        add_documented_route(
            router,
            item,
            delete_resource,
            methods=["DELETE"],
            response_model=None,
            summary=summaries.get(Op.DELETE, f"Delete a {spec.singular}"),
            models={200: lambda: docs.single},
            responses=ERROR_RESPONSES,
            operation_id=f"delete-{spec.version}-{spec.segment}",
        )

    if Op.DELETE_ALL in spec.ops:

        async def delete_all(request: Request, ctx: Context = dep(Op.DELETE_ALL)) -> JsonResponse:
            if request.query_params.get("delete_all") != "1":
                raise invalid_parameter(
                    "delete_all", "must be 1 to delete every resource of the collection"
                )
            count = await service.delete_all(ctx)
            return JsonResponse({"data": [], "meta": {"deleted": count}})

        router.add_api_route(
            collection,
            delete_all,
            methods=["DELETE"],
            response_model=None,
            summary=summaries.get(Op.DELETE_ALL, f"Delete all {spec.type_name} (delete_all=1)"),
            responses=ERROR_RESPONSES,
            openapi_extra={
                "parameters": [
                    {
                        "name": "delete_all",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "integer", "enum": [1]},
                    }
                ]
            },
            operation_id=f"delete-all-{spec.version}-{spec.segment}",
        )

    for action in spec.actions:
        add_action_route(router, spec, action)
    return router


# --- declared actions ------------------------------------------------------------------------


def _parse_parameters(request: Request, filters: Any) -> dict[str, Any]:
    """The declared query parameters of a GET action (anything else: 400 saying what is
    allowed)."""
    query = parse_list_query(
        request.query_params,
        filters=filters,
        sorts=[],
        page=PageBounds(),
        extra=frozenset({"individual-id"}),
    )
    return query.values


# The operation of an action on the resource's own path (no name of its own), by method.
_VERBS = {"POST": "create", "GET": "get", "PATCH": "update", "DELETE": "delete"}


def _action_responses(
    spec: ResourceSpec[Any], action: ActionSpec
) -> tuple[dict[int | str, Callable[[], type[BaseModel]]], dict[int | str, Any]]:
    """The action's documented answers: the models of its success (status → a function
    building it, see :func:`add_documented_route`) and the other responses."""
    status = action.status_code
    response = action.resolved_response(spec)
    if action.listing is not None:
        listing = action.listing
        return {
            status: lambda: DocumentModels(listing.type_name, listing.read_schema, None, None).many
        }, ERROR_RESPONSES
    if isinstance(response, ResourceSpec):
        documented = response
        return {status: lambda: documents_of(documented).single}, ERROR_RESPONSES
    if isinstance(response, type) and issubclass(response, BaseModel):
        # Declared by the domain already: nothing to build.
        return {}, {status: {"model": response}, **ERROR_RESPONSES}
    return {}, {status: {"description": "No content: the body is null"}, **ERROR_RESPONSES}


async def _render_action(
    ctx: Context, spec: ResourceSpec[Any], action: ActionSpec, result: Any
) -> Any:
    revealed: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    if isinstance(result, Changed):
        record_changes(ctx, result.changes)
        revealed, meta, result = result.revealed, result.meta, result.obj
    await ctx.session.flush()
    if action.render is not None:
        return await action.render(ctx, result)
    response = action.resolved_response(spec)
    if isinstance(response, ResourceSpec):
        return await render_one(ctx, response, result, revealed=revealed, meta=meta)
    if response is None:
        return None
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True)
    return result


async def _list_action(
    ctx: Context, request: Request, action: ActionSpec, stmt: Any
) -> dict[str, Any]:
    listing = action.listing
    assert listing is not None
    query = parse_list_query(
        request.query_params,
        filters=listing.filters,
        sorts=list(listing.sorts),
        page=listing.page,
        extra=frozenset(listing.extra_params) | {"individual-id"},
    )
    for flt in listing.filters:
        if flt.param in query.values:
            stmt = flt.apply(stmt, query.values[flt.param], ctx)
    if query.sort:
        order = sort_order(listing.sorts, query.sort, (), listing.ident)
    else:
        order = list(listing.order())
    page = await paginate(ctx.session, stmt, query, order, rows=listing.row_id is not None)
    if listing.present is not None:
        attributes = await listing.present(ctx, page.rows)
    else:
        attributes = render_rows(listing.read_schema, page.rows)
    row_id = listing.row_id or (lambda row: row.id)
    data = [
        resource_object(listing.type_name, row_id(row), attrs)
        for row, attrs in zip(page.rows, attributes, strict=True)
    ]
    return list_document(request, query, data, page.total)


def add_action_route(router: APIRouter, spec: ResourceSpec[Any], action: ActionSpec) -> None:
    """The route of one declared action, with its access rule, body and OpenAPI."""
    context = context_dependency(
        action.permission,
        individual_allowed=action.individuals,
        individual_exempt=action.individual_exempt,
    )
    on_item = action.on == "item"

    async def load_target(id: str, ctx: Context = Depends(context)) -> Any:
        # A dependency: it runs before the body is validated, so another organization's id
        # is 404 whatever the body.
        ident = path_uuid(id, spec.singular)
        if not action.load:
            return ident
        if action.loader is not None:
            return await action.loader(ctx, ident, for_update=action.changes_state)
        return await spec.service.load(ctx, ident, for_update=action.changes_state)

    async def endpoint(
        request: Request, ctx: Context, target: Any = None, body: Any = None
    ) -> Response:
        if action.parameters or (action.method == "GET" and action.listing is None):
            ctx.query = _parse_parameters(request, action.parameters)
        args = (ctx, target, body) if on_item else (ctx, body)
        result = await action.handler(*args)
        if isinstance(result, Response):
            return result
        if action.listing is not None:
            content = await _list_action(ctx, request, action, result)
        else:
            content = await _render_action(ctx, spec, action, result)
        return JsonResponse(content, status_code=action.status_code, headers=dict(action.headers))

    parameters = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter(
            "ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context, default=Depends(context)
        ),
    ]
    if on_item:
        parameters.append(
            inspect.Parameter(
                "target",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Any,
                default=Depends(load_target),
            )
        )
    if action.body is not None:
        model = request_model(action.body)
        required = body_required(action.body)
        parameters.append(
            inspect.Parameter(
                "body",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=model if required else model | None,
                default=Body(...) if required else Body(None),
            )
        )
    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=Response)  # type: ignore[attr-defined]

    query_parameters = _filter_parameters(action.parameters)
    if action.listing is not None:
        listing = action.listing
        query_parameters += _filter_parameters(listing.filters, listing.extra_params)
        query_parameters += _page_parameters(listing.page, listing.sorts)
    if action.individuals:
        query_parameters.append(_individual_param())
    description = action.description or inspect.getdoc(action.handler) or None
    models, responses = _action_responses(spec, action)
    add_documented_route(
        router,
        action.path(spec),
        endpoint,
        methods=[action.method],
        response_model=None,
        status_code=action.status_code,
        summary=action.summary,
        description=description,
        models=models,
        responses=responses,
        openapi_extra={"parameters": query_parameters} if query_parameters else None,
        operation_id=action.operation_id
        or f"{action.name or _VERBS[action.method]}-{spec.version}-{spec.segment}",
        tags=list(action.tags) or None,
    )
