"""``GET /v1/sniffers/{id}/get-logs/``: the requests a sniffer recorded, newest first."""

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select

from courier.core.auth import Permission
from courier.core.handlers import JsonResponse
from courier.domains.sniffers.resource import sniffers
from courier.domains.sniffers.service import logs_query, present_log
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import list_document, resource_object
from courier.jsonapi.query import PageBounds, parse_list_query
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid
from courier.models.sniffer import SnifferLog

router = APIRouter(tags=["operations"])
LOG_TYPE = "sniffer-logs"
PAGE = PageBounds()


@router.get(
    "/v1/sniffers/{id}/get-logs/",
    response_model=None,
    summary="Requests and responses recorded by a sniffer",
    responses={200: {"description": "sniffer-logs, newest first"}, **ERROR_RESPONSES},
    openapi_extra={
        "parameters": [
            {
                "name": "page[limit]",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            },
            {
                "name": "page[offset]",
                "in": "query",
                "schema": {"type": "integer", "minimum": 0, "default": 0},
            },
        ]
    },
    operation_id="get-logs-v1-sniffers",
)
async def get_logs(
    id: str,
    request: Request,
    ctx: Context = Depends(context_dependency(Permission.MANAGE, individual_allowed=False)),
) -> JsonResponse:
    """Method, path, query, status, request and response bodies (secrets redacted, 8 KiB at
    most), request and trace ids, user agent and duration of each recorded request. Admin only."""
    sniffer = await sniffers.service.load(ctx, path_uuid(id, "sniffer"))
    query = parse_list_query(request.query_params, filters=[], sorts=[], page=PAGE)
    stmt = logs_query(ctx, sniffer)
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    total = (
        await ctx.session.execute(count.execution_options(**stmt.get_execution_options()))
    ).scalar_one()
    page = stmt.order_by(SnifferLog.created_at.desc(), SnifferLog.id.desc())
    rows = (await ctx.session.execute(page.limit(query.limit).offset(query.offset))).scalars()
    data = [resource_object(LOG_TYPE, row.id, present_log(row)) for row in rows]
    return JsonResponse(list_document(request.url, query, data, int(total)))
