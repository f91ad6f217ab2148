"""Hand-written inbox routes: the badge-count list, bulk badge counts, communication summaries
and the summary repair action."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from courier.core.auth import Permission
from courier.core.errors import ApiError, ErrorItem, conflict
from courier.core.handlers import JsonResponse
from courier.domains.inbox.resource import badge_counts
from courier.domains.inbox.schemas import (
    BADGE_COUNTS,
    BULK_BADGE_COUNTS,
    SUMMARIES,
    BulkBadgeCountsRequest,
    CommunicationSummaryDocument,
)
from courier.domains.inbox.service import (
    check_summary,
    do_recalculate_communication_summary,
    required_individual,
    set_badge_counts,
)
from courier.domains.inbox.views import router as views_router
from courier.domains.people.repository import require_individual
from courier.domains.people.resource import individuals
from courier.jsonapi import query as q
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import DocumentModels, list_document, resource_object
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid, render_one
from courier.models.messaging import BadgeCount

router = APIRouter(tags=["inbox"])

INDIVIDUAL_PARAMETER: dict[str, Any] = {
    "name": "individual-id",
    "in": "query",
    "description": "Whose counts: required with an API key; an individual token's own by default",
    "schema": {"type": "string", "format": "uuid"},
}


def _refuse_unknown(request: Request, known: frozenset[str]) -> None:
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        raise ApiError(
            400,
            [
                ErrorItem(
                    f"{name} is not a parameter of this endpoint",
                    "unknown-parameter",
                    parameter=name,
                )
                for name in unknown
            ],
            {},
            True,
        )


# --- badge counts ----------------------------------------------------------------------------

BADGE_PAGE = q.PageBounds()
BADGE_FILTERS = [q.organization(BadgeCount.organization_id)]
_badge_documents = DocumentModels(BADGE_COUNTS, badge_counts.read_schema, None, None)


@router.get(
    f"/v1/{BADGE_COUNTS}/",
    response_model=None,
    summary="Badge counts of an individual (individual-id required with an API key)",
    responses={200: {"model": _badge_documents.many}, **ERROR_RESPONSES},
    openapi_extra={
        "parameters": [
            INDIVIDUAL_PARAMETER,
            {
                "name": "organization-id",
                "in": "query",
                "description": BADGE_FILTERS[0].description,
                "schema": {"type": "string", "format": "uuid"},
            },
            {
                "name": "page[limit]",
                "in": "query",
                "schema": {
                    "type": "integer",
                    "minimum": BADGE_PAGE.minimum,
                    "maximum": BADGE_PAGE.maximum,
                    "default": BADGE_PAGE.default,
                },
            },
            {"name": "page[offset]", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            {
                "name": "size",
                "in": "query",
                "description": "Alias of page[limit]",
                "schema": {"type": "integer", "minimum": 1, "maximum": BADGE_PAGE.maximum},
            },
            {
                "name": "start",
                "in": "query",
                "description": "1-based alias of page[offset]",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]
    },
    operation_id=f"list-v1-{BADGE_COUNTS}",
)
async def list_badge_counts(
    request: Request, ctx: Context = Depends(context_dependency(Permission.READ))
) -> JsonResponse:
    """The badge counts of one individual, by type. An individual token reads its own."""
    query = q.parse_list_query(
        request.query_params,
        filters=BADGE_FILTERS,
        sorts=[],
        page=BADGE_PAGE,
        extra=frozenset({"individual-id"}),
    )
    individual_id = required_individual(ctx)
    await require_individual(ctx, individual_id)
    service = badge_counts.service
    stmt = service.query(ctx).where(BadgeCount.individual_id == individual_id)
    for flt in BADGE_FILTERS:
        if flt.param in query.values:
            stmt = flt.apply(stmt, query.values[flt.param], ctx)
    total = (
        await ctx.session.execute(
            select(func.count())
            .select_from(stmt.order_by(None).subquery())
            .execution_options(**stmt.get_execution_options())
        )
    ).scalar_one()
    rows = list(
        (
            await ctx.session.execute(
                stmt.order_by(BadgeCount.type, BadgeCount.id)
                .limit(query.limit)
                .offset(query.offset)
            )
        )
        .scalars()
        .all()
    )
    data = [
        resource_object(BADGE_COUNTS, row.id, attributes)
        for row, attributes in zip(rows, await service.present(ctx, rows), strict=True)
    ]
    return JsonResponse(list_document(request.url, query, data, int(total)))


@router.post(
    f"/v1/{BULK_BADGE_COUNTS}/",
    response_model=None,
    status_code=201,
    summary="Set many badge counts at once (all or nothing)",
    responses={201: {"description": "Every value was set (body: null)"}, **ERROR_RESPONSES},
    operation_id=f"create-v1-{BULK_BADGE_COUNTS}",
)
async def set_bulk_badge_counts(
    body: BulkBadgeCountsRequest,
    ctx: Context = Depends(context_dependency(Permission.COMMUNICATE, individual_allowed=False)),
) -> JsonResponse:
    """Create or replace up to 1000 (individual, type) badge counts in one transaction.

    One bad value (invalid, another organization's, an unknown individual, or repeating the
    individual and type of an earlier value) fails the whole request with an error whose
    ``source.pointer`` names its index (``/data/attributes/values/3/count``); nothing is
    written. On success the body is ``null``, as the seed shows.
    """
    if body.data.type != BULK_BADGE_COUNTS:
        raise conflict(
            f"data.type must be {BULK_BADGE_COUNTS}", "type-mismatch", pointer="/data/type"
        )
    values = body.data.attributes.values
    changes = await set_badge_counts(ctx, values, bulk=True)
    await ctx.session.flush()
    service = badge_counts.service
    for change, value in zip(changes, values, strict=True):
        service.audit(
            ctx,
            "created" if change.created else "updated",
            change.row,
            sorted(value.model_fields_set),
        )
    return JsonResponse(None, status_code=201)


# --- communication summaries -----------------------------------------------------------------


@router.get(
    f"/v1/{SUMMARIES}/",
    response_model=None,
    summary="Unread messages, provider messages, notifications and video channels of an "
    "individual (include-senders)",
    responses={200: {"model": CommunicationSummaryDocument}, **ERROR_RESPONSES},
    openapi_extra={
        "parameters": [
            INDIVIDUAL_PARAMETER,
            {
                "name": "include-senders",
                "in": "query",
                "description": "Include message-senders: unread counts per author individual-id",
                "schema": {"type": "boolean", "default": False},
            },
        ]
    },
    operation_id=f"get-v1-{SUMMARIES}",
)
async def get_communication_summary(
    request: Request, ctx: Context = Depends(context_dependency(Permission.READ))
) -> JsonResponse:
    """Counts for a badge: every number is *unread*.

    ``messages``: unread messages over the individual's unarchived channels
    (``last_seq - ack_seq`` per channel). ``message-types`` splits them into
    ``group-messages`` (channels of an individual group or with more than two subscribers) and
    ``direct-messages``. ``provider-messages``: those written by providers. ``notifications`` and
    ``video-channels`` come from their domains (0 until they count).
    """
    _refuse_unknown(request, frozenset({"individual-id", "include-senders", "format"}))
    raw = request.query_params.get("include-senders")
    try:
        include_senders = raw is not None and q.parse_bool(raw)
    except ValueError as exc:
        raise ApiError(
            400,
            [ErrorItem(f"include-senders {exc}", "invalid-parameter", parameter="include-senders")],
            {},
            True,
        ) from exc
    summary = await check_summary(ctx, include_senders=include_senders)
    return JsonResponse(summary.document(include_senders))


class RecalculateRequest(BaseModel):
    """The action takes no options: ``{}``."""

    model_config = ConfigDict(extra="forbid")


@router.post(
    "/v1/individuals/{id}/recalculate-communication-summary/",
    response_model=None,
    status_code=201,
    summary="Recompute an individual's communication summary",
    responses={
        201: {"model": DocumentModels("individuals", individuals.read_schema, None, None).single},
        **ERROR_RESPONSES,
    },
    operation_id="recalculate-v1-individuals-communication-summary",
    tags=["people"],
)
async def recalculate_communication_summary(
    id: str,
    body: RecalculateRequest | None = None,
    ctx: Context = Depends(context_dependency(Permission.COMMUNICATE, individual_allowed=False)),
) -> JsonResponse:
    """Repair the counters behind the individual's unread counts (staff and admin keys).

    Every channel the individual subscribes to gets its ``last_seq``, last message id and time
    recomputed from its messages, and any read horizon past its channel's last message is
    clamped to it. Returns the individual; ``meta`` says how many rows were repaired.
    """
    individual, report = await do_recalculate_communication_summary(
        ctx, path_uuid(id, "individual")
    )
    document = await render_one(ctx, individuals, individual)
    document["meta"] = {
        "channels": report.channels,
        "repaired-channels": report.repaired_channels,
        "clamped-subscribers": report.clamped_subscribers,
    }
    return JsonResponse(document, status_code=201)


# The inbox view (GET /v1/communication-messages/) lives in views.py; mounted with this router.
router.include_router(views_router)
