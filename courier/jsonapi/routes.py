"""The route factory: a ResourceSpec becomes list/get/create/patch/delete routes.

This module deliberately evaluates annotations at definition time (no ``from __future__ import
annotations``): FastAPI reads the per-resource document models from the endpoint signatures.
"""

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from courier.core.errors import conflict, invalid_parameter, not_found, precondition_failed
from courier.core.handlers import JsonResponse
from courier.core.http import etag_for, etag_matches
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import (
    DocumentModels,
    WriteAttributes,
    list_document,
    resource_object,
    single_document,
)
from courier.jsonapi.query import PageBounds, parse_list_query
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
    body: BaseModel, spec: ResourceSpec[Any], ident: uuid.UUID | None = None
) -> WriteAttributes:
    data = body.data  # type: ignore[attr-defined]
    if data.type != spec.type_name:
        raise conflict(f"data.type must be {spec.type_name}", "type-mismatch", pointer="/data/type")
    if ident is not None and data.id != str(ident):
        raise conflict("data.id must be the id in the path", "id-mismatch", pointer="/data/id")
    attrs: WriteAttributes = data.attributes
    return attrs


async def render_one(ctx: Context, spec: ResourceSpec[Any], obj: Any) -> dict[str, Any]:
    attributes = (await spec.service.present(ctx, [obj]))[0]
    return single_document(resource_object(spec.type_name, obj.id, attributes))


def _list_parameters(spec: ResourceSpec[Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for flt in spec.filters:
        params.append(
            {
                "name": flt.param,
                "in": "query",
                "required": flt.required,
                "description": flt.description,
                "schema": flt.schema,
            }
        )
    for name, description in spec.extra_params.items():
        params.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                "schema": {"type": "string"},
            }
        )
    page: PageBounds = spec.page
    params += [
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
            "schema": {"type": "integer", "minimum": 0, "default": 0},
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
            "schema": {"type": "integer", "minimum": 1},
        },
    ]
    if spec.sorts:
        params.append(
            {
                "name": "sort",
                "in": "query",
                "description": "Comma-separated fields, '-' for descending: "
                + ", ".join(spec.sorts),
                "schema": {"type": "string"},
            }
        )
    return params


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


def build_router(spec: ResourceSpec[Any]) -> APIRouter:
    router = APIRouter(tags=[spec.tag])
    docs = DocumentModels(spec.type_name, spec.read_schema, spec.create_schema, spec.update_schema)
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
            stmt = service.query(ctx)
            for flt in spec.filters:
                if flt.param in query.values:
                    stmt = flt.apply(stmt, query.values[flt.param], ctx)
            rows, total = await service_list(ctx, spec, stmt, query)
            data = [
                resource_object(spec.type_name, row.id, attrs)
                for row, attrs in zip(rows, await service.present(ctx, rows), strict=True)
            ]
            return JsonResponse(list_document(request.url, query, data, total))

        router.add_api_route(
            collection,
            list_resources,
            methods=["GET"],
            response_model=None,
            summary=summaries.get(Op.LIST, f"List {spec.type_name}"),
            responses={200: {"model": docs.many}, **ERROR_RESPONSES},
            openapi_extra={"parameters": [*_list_parameters(spec), _individual_param()]},
            operation_id=f"list-{spec.version}-{spec.type_name}",
        )

    if Op.GET in spec.ops:

        async def get_resource(id: str, ctx: Context = dep(Op.GET)) -> JsonResponse:
            obj = await service.load(ctx, path_uuid(id, spec.singular))
            return JsonResponse(await render_one(ctx, spec, obj))

        router.add_api_route(
            item,
            get_resource,
            methods=["GET"],
            response_model=None,
            summary=summaries.get(Op.GET, f"Get one {spec.singular}"),
            responses={200: {"model": docs.single}, **ERROR_RESPONSES},
            openapi_extra={"parameters": [_individual_param()]},
            operation_id=f"get-{spec.version}-{spec.type_name}",
        )

    if Op.CREATE in spec.ops:
        assert docs.create_request is not None, f"{spec.type_name}: CREATE needs create_schema"
        CreateRequest: Any = docs.create_request  # noqa: N806

        async def create_resource(
            body: CreateRequest,
            ctx: Context = dep(Op.CREATE),
        ) -> JsonResponse:
            attrs = check_document(body, spec)
            obj = await service.create(ctx, attrs)
            await ctx.session.flush()
            service.audit(ctx, "created", obj, sorted(attrs.model_fields_set))
            return JsonResponse(await render_one(ctx, spec, obj), status_code=201)

        router.add_api_route(
            collection,
            create_resource,
            methods=["POST"],
            response_model=None,
            status_code=201,
            summary=summaries.get(Op.CREATE, f"Create a {spec.singular}"),
            responses={201: {"model": docs.single}, **ERROR_RESPONSES},
            operation_id=f"create-{spec.version}-{spec.type_name}",
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
            attrs = check_document(body, spec, ident)
            obj = await service.load(ctx, ident, for_update=True)
            if_match = request.headers.get("if-match")
            if if_match is not None:
                current = orjson.dumps(await render_one(ctx, spec, obj))
                if not etag_matches(if_match, etag_for(current)):
                    raise precondition_failed()
            obj = await service.update(ctx, obj, attrs)
            await ctx.session.flush()
            service.audit(ctx, "updated", obj, sorted(attrs.model_fields_set))
            return JsonResponse(await render_one(ctx, spec, obj))

        router.add_api_route(
            item,
            update_resource,
            methods=["PATCH"],
            response_model=None,
            summary=summaries.get(Op.UPDATE, f"Modify a {spec.singular}"),
            responses={200: {"model": docs.single}, **ERROR_RESPONSES},
            operation_id=f"update-{spec.version}-{spec.type_name}",
        )

    if Op.DELETE in spec.ops:

        async def delete_resource(id: str, ctx: Context = dep(Op.DELETE)) -> JsonResponse:
            obj = await service.load(ctx, path_uuid(id, spec.singular), for_update=True)
            document = await render_one(ctx, spec, obj)
            service.audit(ctx, "deleted", obj)
            await service.delete(ctx, obj)
            await ctx.session.flush()
            if obj in ctx.session:
                document = await render_one(ctx, spec, obj)  # soft delete: show the new state
            return JsonResponse(document)

        router.add_api_route(
            item,
            delete_resource,
            methods=["DELETE"],
            response_model=None,
            summary=summaries.get(Op.DELETE, f"Delete a {spec.singular}"),
            responses={200: {"model": docs.single}, **ERROR_RESPONSES},
            operation_id=f"delete-{spec.version}-{spec.type_name}",
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
            operation_id=f"delete-all-{spec.version}-{spec.type_name}",
        )

    return router


async def service_list(
    ctx: Context, spec: ResourceSpec[Any], stmt: Any, query: Any
) -> tuple[list[Any], int]:
    total = await spec.service.count(ctx, stmt, query.values)
    order = []
    for name, descending in query.sort or list(spec.default_sort):
        column = spec.sorts[name]
        order.append(column.desc() if descending else column.asc())
    ident = spec.model.id
    # Ties broken by id so pages never repeat or skip a row.
    last_desc = (
        bool(query.sort or spec.default_sort) and (query.sort or list(spec.default_sort))[-1][1]
    )
    order.append(ident.desc() if last_desc else ident.asc())
    rows = (
        (await ctx.session.execute(stmt.order_by(*order).limit(query.limit).offset(query.offset)))
        .scalars()
        .all()
    )
    return list(rows), int(total)
