"""``POST /v1/purge-data/`` and ``GET /v1/purge-data/{id}/`` (type ``system-purges``).

Annotations are evaluated at definition time (no ``from __future__ import annotations``):
FastAPI reads the request document model from the signature.
"""

from typing import Any

from fastapi import APIRouter, Depends

from courier.core.auth import Permission
from courier.core.errors import conflict
from courier.core.handlers import JsonResponse
from courier.domains.purges.schemas import PurgeCreate, PurgeRead
from courier.domains.purges.service import TYPE_NAME, do_request_purge, load_purge, present
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import DocumentModels, resource_object, single_document
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid

router = APIRouter(tags=["operations"])
_docs = DocumentModels(TYPE_NAME, PurgeRead, PurgeCreate, None)
PurgeRequest: Any = _docs.create_request
_admin = Depends(context_dependency(Permission.MANAGE, individual_allowed=False))


async def _render(ctx: Context, purge: Any) -> dict[str, Any]:
    attributes = (await present(ctx, [purge]))[0]
    return single_document(resource_object(TYPE_NAME, purge.id, attributes))


@router.post(
    "/v1/purge-data/",
    response_model=None,
    status_code=201,
    summary="Purge (or archive) all data of an entity, e.g. an individual",
    responses={201: {"model": _docs.single}, **ERROR_RESPONSES},
    operation_id="create-v1-purge-data",
)
async def create_purge(body: PurgeRequest, ctx: Context = _admin) -> JsonResponse:
    """Accept a purge (201, state ``queued``); a worker carries it out. Every domain's purge
    hook removes the entity's rows (with ``archive: true``, after writing them to
    ``<data_dir>/archives/<purge id>.jsonl.gz``). Poll ``GET /v1/purge-data/{id}/`` for the
    receipt: state, steps done, rows removed per table, archive location. Admin only."""
    data = body.data
    if data.type != TYPE_NAME:
        raise conflict(f"data.type must be {TYPE_NAME}", "type-mismatch", pointer="/data/type")
    attrs: PurgeCreate = data.attributes
    purge = await do_request_purge(
        ctx,
        entity_type=attrs.entity_type,
        entity_id=attrs.entity_id,
        archive=attrs.archive,
        reference_id=attrs.reference_id,
        request_id=attrs.request_id,
    )
    return JsonResponse(await _render(ctx, purge), status_code=201)


@router.get(
    "/v1/purge-data/{id}/",
    response_model=None,
    summary="Get one purge: its progress, and its receipt once completed",
    responses={200: {"model": _docs.single}, **ERROR_RESPONSES},
    operation_id="get-v1-purge-data",
)
async def get_purge(id: str, ctx: Context = _admin) -> JsonResponse:
    """State (queued, running, completed, failed), the hooks done, rows removed per table and
    the archive location. Admin only."""
    purge = await load_purge(ctx, path_uuid(id, "purge"))
    return JsonResponse(await _render(ctx, purge))
