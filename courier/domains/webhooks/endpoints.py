"""``GET /v1/webhooks/{id}/get-deliveries/``: delivery attempts of a webhook, newest first."""

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select

from courier.core.auth import Permission
from courier.core.handlers import JsonResponse
from courier.domains.webhooks.resource import webhooks
from courier.domains.webhooks.schemas import WebhookDeliveryRead
from courier.domains.webhooks.service import deliveries_query
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import DocumentModels, list_document, resource_object
from courier.jsonapi.query import PageBounds, parse_list_query
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid
from courier.models.webhook import WebhookDelivery

router = APIRouter(tags=["operations"])
DELIVERY_TYPE = "webhook-deliveries"
PAGE = PageBounds()
_documents = DocumentModels(DELIVERY_TYPE, WebhookDeliveryRead, None, None)


@router.get(
    "/v1/webhooks/{id}/get-deliveries/",
    response_model=None,
    summary="Delivery attempts of a webhook endpoint",
    responses={200: {"model": _documents.many}, **ERROR_RESPONSES},
    openapi_extra={
        "parameters": [
            {
                "name": "page[limit]",
                "in": "query",
                "schema": {
                    "type": "integer",
                    "minimum": PAGE.minimum,
                    "maximum": PAGE.maximum,
                    "default": PAGE.default,
                },
            },
            {
                "name": "page[offset]",
                "in": "query",
                "schema": {"type": "integer", "minimum": 0, "default": 0},
            },
        ]
    },
    operation_id="get-deliveries-v1-webhooks",
)
async def get_deliveries(
    id: str,
    request: Request,
    ctx: Context = Depends(context_dependency(Permission.MANAGE, individual_allowed=False)),
) -> JsonResponse:
    """Every attempt to deliver an event to this endpoint, newest first: the event, the
    attempt number, the receiver's status code or the error, how long it took, and when the
    next attempt is due if it failed. Admin only."""
    webhook = await webhooks.service.load(ctx, path_uuid(id, "webhook"))
    query = parse_list_query(request.query_params, filters=[], sorts=[], page=PAGE)
    stmt = deliveries_query(ctx, webhook)
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    total = (
        await ctx.session.execute(count.execution_options(**stmt.get_execution_options()))
    ).scalar_one()
    page = stmt.order_by(
        WebhookDelivery.attempted_at.desc(),
        WebhookDelivery.attempt.desc(),
        WebhookDelivery.id.desc(),
    )
    rows = (await ctx.session.execute(page.limit(query.limit).offset(query.offset))).scalars()
    data = [
        resource_object(
            DELIVERY_TYPE,
            row.id,
            WebhookDeliveryRead.model_validate(row).model_dump(mode="json", by_alias=True),
        )
        for row in rows
    ]
    return JsonResponse(list_document(request.url, query, data, int(total)))
