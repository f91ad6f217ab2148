"""The two routes of an upload resource whose start takes a JSON:API resource document.

``POST /v1/<type>/`` (a ``<type>`` create document: 201 with where to upload) and
``POST /v1/<type>/{id}/process-upload/`` (optional body; 201 with the resource). Kinds whose
start takes the seed's plain JSON declare the same two steps as actions instead
(``ActionSpec`` handlers calling :meth:`UploadService.start` and :meth:`UploadService.process`).

This module evaluates annotations at definition time (no ``from __future__ import
annotations``): FastAPI reads the per-resource document models from the endpoint signatures.
"""

import inspect
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from courier.core.auth import Permission
from courier.jsonapi.context import Context, acting_individual, context_dependency
from courier.jsonapi.documents import DocumentModels, WriteAttributes
from courier.jsonapi.resource import ResourceSpec
from courier.jsonapi.routes import ERROR_RESPONSES, check_document, path_uuid
from courier.uploads.schemas import ProcessBody, ProcessUploadBody, UploadStartDocument
from courier.uploads.service import UploadService


@dataclass(frozen=True)
class RouteText:
    """A route's OpenAPI summary and description (written as a docstring is)."""

    summary: str
    description: str


def upload_routes(
    spec: ResourceSpec[Any],
    create_schema: type[WriteAttributes],
    *,
    start: RouteText,
    process: RouteText,
    individuals: bool,
    permission: Permission = Permission.COMMUNICATE,
) -> APIRouter:
    """The start and process-upload routes of ``spec`` (whose service is an UploadService).

    ``individuals``: individual tokens may call them, and ``process-upload`` takes
    ``{"individual-id"}`` (the individual on whose behalf); else its body is ``{}``."""
    service = spec.service
    assert isinstance(service, UploadService)
    router = APIRouter(tags=[spec.tag])
    documents = DocumentModels(spec.type_name, spec.read_schema, create_schema, None)
    create_request: Any = documents.create_request
    context = Depends(context_dependency(permission, individual_allowed=individuals))
    suffix = f"{spec.version}-{spec.segment}"

    async def start_upload(body: create_request, ctx: Context = context) -> Response:
        attrs = check_document(body, spec, ctx=ctx)
        return await service.start(ctx, attrs)  # type: ignore[arg-type]

    process_body: Any = ProcessUploadBody if individuals else ProcessBody

    async def process_upload(
        id: str, body: process_body | None = None, ctx: Context = context
    ) -> Response:
        if isinstance(body, ProcessUploadBody) and body.individual_id is not None:
            ctx.acting_individual_id = acting_individual(ctx, str(body.individual_id))
        row = await service.load(ctx, path_uuid(id, spec.singular), for_update=True)
        return await service.process(ctx, row)

    router.add_api_route(
        spec.path,
        start_upload,
        methods=["POST"],
        response_model=None,
        status_code=201,
        summary=start.summary,
        description=inspect.cleandoc(start.description),
        responses={201: {"model": UploadStartDocument}, **ERROR_RESPONSES},
        operation_id=f"create-{suffix}",
    )
    router.add_api_route(
        spec.path + "{id}/process-upload/",
        process_upload,
        methods=["POST"],
        response_model=None,
        status_code=201,
        summary=process.summary,
        description=inspect.cleandoc(process.description),
        responses={201: {"model": documents.single}, **ERROR_RESPONSES},
        operation_id=f"process-upload-{suffix}",
    )
    return router
