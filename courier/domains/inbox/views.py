"""``GET /v1/communication-messages/``: the inbox view of one individual's channels.

Every channel the individual subscribes to, rendered exactly as ``messaging-channels`` objects
(:func:`courier.domains.messaging.render.render_channels`), filtered, sorted and paged. The
decisions the seed leaves open are recorded in ``docs/INBOX.md``; in short:

- Whose inbox: ``individual-id`` (required with an API key: 400), an individual token's own
  by default (another's: 403). An individual unknown to the organization: 404.
- ``filter[text]`` (at most 512 characters, any case, LIKE wildcards taken literally) finds
  channels whose own name, label or individual group's name contains it, or with a posted,
  not removed message whose text contains it. The message search is an ``EXISTS`` per
  candidate channel through the ``(channel_id, seq)`` index: it reads only the messages of the
  individual's own channels, never the organization's.
- ``filter[type]``: ``group-message`` is a channel of an individual group or with more than two
  subscribers; ``direct-message`` one without a group and exactly two; ``single`` one without a
  group and one subscriber. Courier has no ``multicast``, ``open`` or untyped (``none``)
  conversations yet: those values are accepted and match nothing.
- ``sort``: ``ack-timestamp`` (the individual's last ack, server time), ``last-timestamp`` (the
  channel's last posted message), ``unread-count`` (``last_seq - ack_seq``), ``-`` for
  descending, several comma-separated or repeated. Missing values sort last in either
  direction; ties are broken by channel id (in the direction of the last key), so pages never
  repeat or skip. Without ``sort``: newest activity first (last message, else creation).

Cost, whatever the number of channels: one count and one page query (the individual's
memberships joined to their channels, filtered, ordered, limited), then ``render_channels``'
fixed number of queries for the page.
"""

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import ColumnElement, Select, and_, case, exists, false, func, or_

from courier.core.auth import Permission
from courier.core.db import plans_for_values
from courier.core.handlers import JsonResponse
from courier.core.tenancy import in_organization
from courier.domains.inbox import repository as repo
from courier.domains.inbox.service import required_individual
from courier.domains.messaging.render import render_channels
from courier.domains.messaging.schemas import CHANNEL_TYPE, ChannelRead
from courier.domains.people.repository import require_individual
from courier.jsonapi import query as q
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import DocumentModels, list_document, resource_object
from courier.jsonapi.paging import paginate
from courier.jsonapi.routes import ERROR_RESPONSES, page_parameters
from courier.models.individual_group import IndividualGroup
from courier.models.messaging import (
    MessagingBookmark,
    MessagingChannel,
    MessagingMessage,
    MessagingSubscriber,
)

PATH = "/v1/communication-messages/"
PAGE = q.PageBounds(default=100, maximum=100)
TEXT_MAX = 512
CMP_ITEM_MAX = 40
CHANNEL_TYPES = ("direct-message", "group-message", "multicast", "none", "open", "single")

router = APIRouter(tags=["messaging"])

Sub = MessagingSubscriber
Channel = MessagingChannel


# --- filters ---------------------------------------------------------------------------------


def _viewer(ctx: Context) -> uuid.UUID:
    """The individual whose inbox this is (checked by the endpoint before any filter runs)."""
    viewer = ctx.acting_individual_id
    assert viewer is not None
    return viewer


def bookmarked_filter(stmt: Select[Any], value: bool, ctx: Context) -> Select[Any]:
    """Channels where the individual has any bookmark (true), or none (false)."""
    mark = exists().where(
        MessagingBookmark.individual_id == _viewer(ctx),
        MessagingBookmark.channel_id == Channel.id,
        in_organization(MessagingBookmark, ctx.organization_id),
    )
    return stmt.where(mark if value else ~mark)


def _like(column: Any, value: str) -> ColumnElement[bool]:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    condition: ColumnElement[bool] = func.lower(column).like(f"%{escaped.lower()}%", escape="\\")
    return condition


def text_filter(stmt: Select[Any], value: str, ctx: Context) -> Select[Any]:
    """Name, label or group name of the channel, or the text of one of its posted messages.
    An empty text asks for nothing: every channel."""
    if not value:
        return stmt
    org = ctx.organization_id
    group_named = exists().where(
        IndividualGroup.id == Channel.individual_group_id,
        in_organization(IndividualGroup, org),
        _like(IndividualGroup.name, value),
    )
    said = exists().where(
        MessagingMessage.channel_id == Channel.id,
        in_organization(MessagingMessage, org),
        MessagingMessage.draft == false(),
        MessagingMessage.removed == false(),
        _like(MessagingMessage.message, value),
    )
    return stmt.where(
        or_(_like(Channel.name, value), _like(Channel.label, value), group_named, said)
    )


def subscriber_count(ctx: Context) -> Any:
    return repo.channel_subscriber_count(ctx.organization_id)


def type_filter(stmt: Select[Any], value: str, ctx: Context) -> Select[Any]:
    has_group = Channel.individual_group_id.is_not(None)
    no_group = Channel.individual_group_id.is_(None)
    members = subscriber_count(ctx)
    conditions: dict[str, ColumnElement[bool]] = {
        "group-message": or_(has_group, members > 2),
        "direct-message": and_(no_group, members == 2),
        "single": and_(no_group, members == 1),
    }
    return stmt.where(conditions.get(value, false()))


def parse_cmp_items(values: Sequence[str]) -> Any:
    for value in values:
        if len(value) > CMP_ITEM_MAX:
            raise ValueError(f"items must be at most {CMP_ITEM_MAX} characters")
    return q.parse_time_comparisons(values)


def accept_only(stmt: Select[Any], _value: Any, _ctx: Context) -> Select[Any]:
    """A parameter that shapes the rendering, not the rows (validated by the list parser)."""
    return stmt


BOOLEAN: dict[str, Any] = {"type": "boolean"}
UUID: dict[str, Any] = {"type": "string", "format": "uuid"}

FILTERS: list[q.Filter] = [
    q.boolean("filter[archived]", Channel.archived, "Archived channels (true) or the others"),
    q.Filter(
        "filter[bookmarked]",
        q.parse_bool,
        bookmarked_filter,
        "Channels where the individual has any bookmark (true), or none (false)",
        schema=BOOLEAN,
    ),
    dataclasses.replace(
        q.time_window("last-modified-time", Channel.last_modified_at),
        parse=parse_cmp_items,
        schema={
            "type": "array",
            "maxItems": 2,
            "items": {
                "type": "string",
                "maxLength": CMP_ITEM_MAX,
                "pattern": q.TIME_COMPARISON_PATTERN,
            },
        },
        description="Compare the channel's last-modified-time: a comparator (>, <, >=, <=) "
        "and an ISO 8601 time with an offset; give two to bound a window",
    ),
    q.uuid_eq(
        "filter[individual-group-id]",
        Channel.individual_group_id,
        "Channels of this individual group",
    ),
    q.Filter(
        "filter[text]",
        q.parse_text(TEXT_MAX),
        text_filter,
        "Channels whose name, label or group name contains this (any case), or with a posted, "
        "not removed message that does",
        schema={"type": "string", "maxLength": TEXT_MAX},
    ),
    q.Filter(
        "filter[type]",
        q.parse_enum(*CHANNEL_TYPES),
        type_filter,
        "group-message: a group's channel or more than two subscribers; direct-message: two "
        "subscribers, no group; single: one subscriber, no group; multicast, none and open "
        "match nothing yet",
        schema={"type": "string", "enum": list(CHANNEL_TYPES)},
    ),
    q.organization(Channel.organization_id),
    q.Filter(
        "use-group-name",
        q.parse_bool,
        accept_only,
        "Name a group's channel after its group (default true)",
        schema={**BOOLEAN, "default": True},
    ),
]


# --- sorts -----------------------------------------------------------------------------------


def _unread() -> ColumnElement[int]:
    behind = Channel.last_seq - Sub.ack_seq
    return case((behind > 0, behind), else_=0)


# name -> (expression, whether it may be NULL)
SORTS: dict[str, tuple[Any, bool]] = {
    "ack-timestamp": (Sub.ack_time, True),
    "last-timestamp": (Channel.last_message_at, True),
    "unread-count": (_unread(), False),
}
SORT_VALUES = [value for name in SORTS for value in (name, f"-{name}")]


def order_by(sort: list[tuple[str, bool]]) -> list[Any]:
    """ORDER BY for ``sort``: NULLs last in both directions, ties by channel id."""
    if not sort:
        activity = func.coalesce(Channel.last_message_at, Channel.created_at)
        return [activity.desc(), Channel.id.desc()]
    order: list[Any] = []
    for name, descending in sort:
        expression, nullable = SORTS[name]
        if nullable:  # portable NULLS LAST: SQLite and PostgreSQL put NULLs at opposite ends
            order.append(case((expression.is_(None), 1), else_=0).asc())
        order.append(expression.desc() if descending else expression.asc())
    order.append(Channel.id.desc() if sort[-1][1] else Channel.id.asc())
    return order


# --- the endpoint ----------------------------------------------------------------------------


def inbox_statement(ctx: Context, individual_id: uuid.UUID) -> Select[Any]:
    """The individual's channels: its memberships joined to their channels."""
    return repo.inbox_channels(ctx.organization_id, individual_id)


def _parameters() -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": "individual-id",
            "in": "query",
            "required": False,
            "description": "Whose inbox: required with an API key; an individual token's own by "
            "default",
            "schema": UUID,
        }
    ]
    for flt in FILTERS:
        params.append(
            {
                "name": flt.param,
                "in": "query",
                "required": False,
                "description": flt.description,
                "schema": flt.schema,
                **({"style": "form", "explode": True} if flt.repeatable else {}),
            }
        )
    params += [
        *page_parameters(PAGE),
        {
            "name": "sort",
            "in": "query",
            "description": "Comma-separated or repeated; '-' for descending. Missing times sort "
            "last either way; ties by channel id. Default: newest activity first",
            "style": "form",
            "explode": True,
            "schema": {"type": "array", "items": {"type": "string", "enum": SORT_VALUES}},
        },
    ]
    return params


_documents = DocumentModels(CHANNEL_TYPE, ChannelRead, None, None)


@router.get(
    PATH,
    response_model=None,
    summary="Inbox view: an individual's channels (filter[type], filter[text], "
    "filter[bookmarked]; sort by ack-timestamp, last-timestamp, unread-count)",
    responses={200: {"model": _documents.many}, **ERROR_RESPONSES},
    openapi_extra={"parameters": _parameters()},
    operation_id="list-v1-communication-messages",
)
async def list_communication_messages(
    request: Request, ctx: Context = Depends(context_dependency(Permission.READ))
) -> JsonResponse:
    """Every channel the individual subscribes to, as ``messaging-channels`` objects seen by
    that individual (unread counts, bookmark, preferences), one page at a time."""
    query = q.parse_list_query(
        request.query_params,
        filters=FILTERS,
        sorts=list(SORTS),
        page=PAGE,
        extra=frozenset({"individual-id"}),
    )
    individual_id = required_individual(ctx)
    await require_individual(ctx, individual_id)
    stmt = inbox_statement(ctx, individual_id)
    for flt in FILTERS:
        if flt.param in query.values:
            stmt = flt.apply(stmt, query.values[flt.param], ctx)
    # The count and the page are planned for this individual: prepared and run more than five
    # times, their generic plan probed every channel of a person in 5,000 (15 ms, not 6).
    async with plans_for_values(ctx.session):
        page = await paginate(ctx.session, stmt, query, order_by(query.sort))
    channels, total = page.rows, page.total
    data = [
        resource_object(CHANNEL_TYPE, channel.id, attributes)
        for channel, attributes in zip(channels, await render_channels(ctx, channels), strict=True)
    ]
    return JsonResponse(list_document(request, query, data, int(total)))
