"""The one hand-written messaging route: the channel PATCH, whose ``attributes`` is a list of
JSON-Patch operations rather than an attributes object (every action is declared in
``resource.py``)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request

from courier.core.auth import Permission
from courier.core.errors import conflict, precondition_failed
from courier.core.handlers import JsonResponse
from courier.core.http import etag_for, etag_matches
from courier.domains.messaging import channels as channel_rules
from courier.domains.messaging.resource import messaging_channels
from courier.domains.messaging.schemas import CHANNEL_TYPE, ChannelPatchRequest
from courier.jsonapi.changes import record_changes
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.routes import ERROR_RESPONSES, documents_of, path_uuid, render_one

router = APIRouter(tags=["messaging"])

# Staff and admin keys manage channels; individual tokens and readonly keys may not.
manage_channel = Depends(context_dependency(Permission.COMMUNICATE, individual_allowed=False))


@router.patch(
    f"/v1/{CHANNEL_TYPE}/{{id}}/",
    response_model=None,
    summary="Modify a channel: attributes is a list of JSON-Patch operations",
    responses={200: {"model": documents_of(messaging_channels).single}, **ERROR_RESPONSES},
    operation_id=f"update-v1-{CHANNEL_TYPE}",
)
async def update_channel(
    id: str, body: ChannelPatchRequest, request: Request, ctx: Context = manage_channel
) -> JsonResponse:
    """RFC 6902 operations (``add``, ``remove``, ``replace``, ``move``, ``copy``, ``test``)
    on ``/name``, ``/label``, ``/floating``, ``/subscription-type``, ``/event-settings`` (or
    ``/event-settings/enabled``), ``/individual-group-id`` (its members are subscribed),
    ``/text-number-id``, ``/observation-id``, ``/owner-id``. A malformed operation: 400
    pointing at it (``/data/attributes/<index>/...``); a failed ``test``: 409; either way
    nothing is applied."""
    ident = path_uuid(id, "messaging channel")
    if body.data.type != CHANNEL_TYPE:
        raise conflict(f"data.type must be {CHANNEL_TYPE}", "type-mismatch", pointer="/data/type")
    if body.data.id != str(ident):
        raise conflict("data.id must be the id in the path", "id-mismatch", pointer="/data/id")
    channel = await channel_rules.channels.load(ctx, ident, for_update=True)
    if_match = request.headers.get("if-match")
    if if_match is not None:
        current = orjson.dumps(await render_one(ctx, messaging_channels, channel))
        if not etag_matches(if_match, etag_for(current)):
            raise precondition_failed()
    result = await channel_rules.patch_channel(ctx, channel, body.data.attributes)
    record_changes(ctx, result.changes)
    return JsonResponse(await render_one(ctx, messaging_channels, result.obj))
