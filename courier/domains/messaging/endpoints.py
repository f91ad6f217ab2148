"""Hand-written messaging routes: the channel PATCH (JSON-Patch) and every action."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, create_model

from courier.core.auth import Permission
from courier.core.errors import conflict, invalid_parameter, precondition_failed
from courier.core.handlers import JsonResponse
from courier.core.http import etag_for, etag_matches
from courier.domains.messaging import channels as channel_rules
from courier.domains.messaging import messages as message_rules
from courier.domains.messaging import reactions
from courier.domains.messaging.access import require_actor
from courier.domains.messaging.resource import messaging_channels, messaging_messages
from courier.domains.messaging.schemas import (
    CHANNEL_TYPE,
    MESSAGE_TYPE,
    PROFILE_TYPE,
    AckBody,
    ChannelPatchRequest,
    ChannelRead,
    EmptyBody,
    MessageRead,
    PreferencesBody,
    ProfileRead,
    ReactionBody,
    ReceiptsRead,
    SmsBody,
    SubscribersBody,
)
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import resource_object, single_document
from courier.jsonapi.query import parse_uuid
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid, render_one

router = APIRouter(tags=["messaging"])

CHANNEL = f"/v1/{CHANNEL_TYPE}/{{id}}/"
MESSAGE = f"/v1/{MESSAGE_TYPE}/{{id}}/"

# Staff and admin keys manage channels; individual tokens and readonly keys may not.
manage_channel = Depends(context_dependency(Permission.COMMUNICATE, individual_allowed=False))
# Anyone who communicates (staff, admin, individual tokens for themselves).
communicate = Depends(context_dependency(Permission.COMMUNICATE))
read = Depends(context_dependency(Permission.READ))


def _document(name: str, type_name: str, attributes: type[BaseModel]) -> type[BaseModel]:
    type_literal: Any = Literal[type_name]
    resource = create_model(
        f"{name}Resource",
        id=(uuid.UUID, ...),
        type=(type_literal, type_name),
        attributes=(attributes, ...),
    )
    return create_model(
        f"{name}Document",
        data=(resource, ...),
        meta=(dict[str, Any], Field(default_factory=dict)),
    )


ChannelDocument = _document("MessagingChannelAction", CHANNEL_TYPE, ChannelRead)
MessageDocument = _document("MessagingMessageAction", MESSAGE_TYPE, MessageRead)
ProfileDocument = _document("IndividualProfile", PROFILE_TYPE, ProfileRead)


def _responses(model: type[BaseModel], status: int = 201) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model}, **ERROR_RESPONSES}


async def _channel(ctx: Context, raw_id: str) -> Any:
    return await channel_rules.channels.load(
        ctx, path_uuid(raw_id, "messaging channel"), for_update=True
    )


async def _render_channel(ctx: Context, channel: Any, status: int = 201) -> JsonResponse:
    return JsonResponse(await render_one(ctx, messaging_channels, channel), status_code=status)


async def _render_message(ctx: Context, message: Any, status: int = 201) -> JsonResponse:
    return JsonResponse(await render_one(ctx, messaging_messages, message), status_code=status)


# --- channels --------------------------------------------------------------------------------


@router.patch(
    CHANNEL,
    response_model=None,
    summary="Modify a channel: attributes is a list of JSON-Patch operations",
    responses=_responses(ChannelDocument, 200),
    operation_id=f"update-v1-{CHANNEL_TYPE}",
)
async def update_channel(
    id: str, body: ChannelPatchRequest, request: Request, ctx: Context = manage_channel
) -> JsonResponse:
    """``{"op": "replace"|"add"|"remove", "path": "/name", "value": ...}`` on ``/name``,
    ``/label``, ``/floating``, ``/subscription-type``, ``/event-settings`` (or
    ``/event-settings/enabled``), ``/individual-group-id`` (its members are subscribed),
    ``/text-number-id``, ``/observation-id``, ``/owner-id``. Any invalid operation: 400
    pointing at it (``/data/attributes/<index>/...``); nothing is applied."""
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
    await channel_rules.patch_channel(ctx, channel, body.data.attributes)
    return await _render_channel(ctx, channel, 200)


@router.post(
    CHANNEL + "archive/",
    status_code=201,
    response_model=None,
    summary="Archive a channel (nothing more can be posted in it)",
    responses=_responses(ChannelDocument),
    operation_id=f"archive-v1-{CHANNEL_TYPE}",
)
async def archive_channel(
    id: str, body: EmptyBody | None = None, ctx: Context = manage_channel
) -> JsonResponse:
    """Idempotent: archiving an archived channel changes nothing."""
    channel = await _channel(ctx, id)
    await channel_rules.set_archived(ctx, channel, True)
    return await _render_channel(ctx, channel)


@router.post(
    CHANNEL + "unarchive/",
    status_code=201,
    response_model=None,
    summary="Unarchive a channel",
    responses=_responses(ChannelDocument),
    operation_id=f"unarchive-v1-{CHANNEL_TYPE}",
)
async def unarchive_channel(
    id: str, body: EmptyBody | None = None, ctx: Context = manage_channel
) -> JsonResponse:
    """Idempotent: unarchiving a live channel changes nothing."""
    channel = await _channel(ctx, id)
    await channel_rules.set_archived(ctx, channel, False)
    return await _render_channel(ctx, channel)


@router.post(
    CHANNEL + "subscribe/",
    status_code=201,
    response_model=None,
    summary="Add subscribers (individual-ids)",
    responses=_responses(ChannelDocument),
    operation_id=f"subscribe-v1-{CHANNEL_TYPE}",
)
async def subscribe_channel(
    id: str, body: SubscribersBody, ctx: Context = manage_channel
) -> JsonResponse:
    """Individuals already subscribed stay as they are; newcomers find the history unread.
    An id that is no individual of the organization: 404 naming ``individual-ids``."""
    channel = await _channel(ctx, id)
    await channel_rules.subscribe(ctx, channel, body.individual_ids)
    return await _render_channel(ctx, channel)


@router.post(
    CHANNEL + "unsubscribe/",
    status_code=201,
    response_model=None,
    summary="Remove subscribers (individual-ids)",
    responses=_responses(ChannelDocument),
    operation_id=f"unsubscribe-v1-{CHANNEL_TYPE}",
)
async def unsubscribe_channel(
    id: str, body: SubscribersBody, ctx: Context = manage_channel
) -> JsonResponse:
    """Those not subscribed are ignored. The removed lose access to the channel at once."""
    channel = await _channel(ctx, id)
    await channel_rules.unsubscribe(ctx, channel, body.individual_ids)
    return await _render_channel(ctx, channel)


@router.post(
    CHANNEL + "set-preferences/",
    status_code=201,
    response_model=None,
    summary="Modify an individual's channel preferences (notify: all, mentions, none; pinned)",
    responses=_responses(ChannelDocument),
    operation_id=f"set-preferences-v1-{CHANNEL_TYPE}",
)
async def set_channel_preferences(
    id: str, body: PreferencesBody, ctx: Context = communicate
) -> JsonResponse:
    """An individual token sets its own preferences; a key names ``individual-id``, who must
    subscribe to the channel (422 otherwise). The channel is returned as that individual
    sees it."""
    individual_id = require_actor(ctx, body.individual_id, "/individual-id")
    channel = await _channel(ctx, id)
    await channel_rules.set_preferences(ctx, channel, individual_id, body)
    ctx.acting_individual_id = individual_id
    return await _render_channel(ctx, channel)


@router.post(
    CHANNEL + "set-sms/",
    status_code=201,
    response_model=None,
    summary="Enable/disable the SMS path of a channel, with an initial message",
    responses=_responses(ChannelDocument),
    operation_id=f"set-sms-v1-{CHANNEL_TYPE}",
)
async def set_channel_sms(id: str, body: SmsBody, ctx: Context = manage_channel) -> JsonResponse:
    """``active: true`` needs the channel's ``text-number-id`` (422 otherwise). Without an
    ``initial-message``, the organization's ``initial-sms-message`` preference applies."""
    channel = await _channel(ctx, id)
    await channel_rules.set_sms(ctx, channel, body)
    return await _render_channel(ctx, channel)


@router.get(
    CHANNEL + "get-profile/",
    response_model=None,
    summary="Profile (photo) of an individual as seen in this channel",
    responses=_responses(ProfileDocument, 200),
    operation_id=f"get-profile-v1-{CHANNEL_TYPE}",
    openapi_extra={
        "parameters": [
            {
                "name": "individual-id",
                "in": "query",
                "required": False,
                "description": "The viewer (required with an API key)",
                "schema": {"type": "string", "format": "uuid"},
            },
            {
                "name": "profile-individual-id",
                "in": "query",
                "required": True,
                "description": "Whose profile",
                "schema": {"type": "string", "format": "uuid"},
            },
        ]
    },
)
async def get_channel_profile(id: str, request: Request, ctx: Context = read) -> JsonResponse:
    """Both the viewer and the profile's individual must subscribe to the channel (else 404)."""
    viewer = ctx.acting_individual_id
    if viewer is None:
        raise invalid_parameter("individual-id", "is required with an API key: the viewer")
    raw = request.query_params.get("profile-individual-id")
    if not raw:
        raise invalid_parameter("profile-individual-id", "is required")
    try:
        profile_id = parse_uuid(raw)
    except ValueError as exc:
        raise invalid_parameter("profile-individual-id", str(exc)) from exc
    channel = await channel_rules.channels.load(ctx, path_uuid(id, "messaging channel"))
    photo = await channel_rules.profile_photo(ctx, channel, viewer, profile_id)
    attributes = ProfileRead(photo=photo).model_dump(mode="json", by_alias=True)
    return JsonResponse(single_document(resource_object(PROFILE_TYPE, profile_id, attributes)))


# --- messages --------------------------------------------------------------------------------


@router.post(
    MESSAGE + "ack/",
    status_code=201,
    response_model=None,
    summary="Acknowledge a message and all before it (allow-past to move back)",
    responses=_responses(MessageDocument),
    operation_id=f"ack-v1-{MESSAGE_TYPE}",
)
async def ack_message(id: str, body: AckBody, ctx: Context = communicate) -> JsonResponse:
    """Moves the reader's read horizon to this message. It never moves back unless
    ``allow-past`` is true. With the organization's ``group-provider-ack``, a provider's ack
    counts for every provider of the channel."""
    message = await message_rules.acknowledge(ctx, path_uuid(id, "messaging message"), body)
    return await _render_message(ctx, message)


@router.post(
    MESSAGE + "add-reaction/",
    status_code=201,
    response_model=None,
    summary="Add a reaction (dislike, like, lol, love, sad, wow)",
    responses=_responses(MessageDocument),
    operation_id=f"add-reaction-v1-{MESSAGE_TYPE}",
)
async def add_message_reaction(
    id: str, body: ReactionBody, ctx: Context = communicate
) -> JsonResponse:
    """One reaction per individual and type: adding the same one again changes nothing."""
    message = await reactions.add_reaction(ctx, path_uuid(id, "messaging message"), body)
    return await _render_message(ctx, message)


@router.post(
    MESSAGE + "delete-reaction/",
    status_code=201,
    response_model=None,
    summary="Remove a reaction",
    responses=_responses(MessageDocument),
    operation_id=f"delete-reaction-v1-{MESSAGE_TYPE}",
)
async def delete_message_reaction(
    id: str, body: ReactionBody, ctx: Context = communicate
) -> JsonResponse:
    """A reaction the individual has not given: 404."""
    message = await reactions.delete_reaction(ctx, path_uuid(id, "messaging message"), body)
    return await _render_message(ctx, message)


@router.get(
    MESSAGE + "get-receipts/",
    response_model=None,
    summary="Read and unread receipts of a message",
    responses={200: {"model": ReceiptsRead}, **ERROR_RESPONSES},
    operation_id=f"get-receipts-v1-{MESSAGE_TYPE}",
)
async def get_message_receipts(id: str, ctx: Context = read) -> JsonResponse:
    """The channel's subscribers other than the author: ``read`` if their horizon reached the
    message (with when), else ``unread``."""
    message = await message_rules.messages.load(ctx, path_uuid(id, "messaging message"))
    read_receipts, unread = await message_rules.receipts(ctx, message)
    return JsonResponse({"read": read_receipts, "unread": unread})
