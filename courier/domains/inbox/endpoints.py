"""Inbox routes that are not a resource's own: bulk badge counts (their own path and type) and
the communication summary (a computed document, not rows)."""

from typing import Any

from fastapi import APIRouter, Depends, Request

from courier.core.auth import Permission
from courier.core.errors import ApiError, ErrorItem, conflict
from courier.core.handlers import JsonResponse
from courier.domains.inbox.resource import badge_count_service
from courier.domains.inbox.schemas import (
    BULK_BADGE_COUNTS,
    SUMMARIES,
    BulkBadgeCountsRequest,
    CommunicationSummaryDocument,
)
from courier.domains.inbox.service import (
    check_summary,
)
from courier.domains.inbox.views import router as views_router
from courier.jsonapi import query as q
from courier.jsonapi.changes import record_changes
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.routes import ERROR_RESPONSES

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
    changes = await badge_count_service.do_set_bulk(ctx, body.data.attributes.values)
    await ctx.session.flush()
    record_changes(ctx, changes)
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
    ``direct-messages``. ``provider-messages``: those written by providers (the author's
    account type when the message was posted). ``notifications`` and
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


# The inbox view (GET /v1/communication-messages/) lives in views.py; mounted with this router.
router.include_router(views_router)
