"""Plugin actions: enable, disable (admin) and expand (staff, admin, individual tokens)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, create_model

from courier.core.auth import Permission
from courier.core.handlers import JsonResponse
from courier.domains.messaging_plugins import service
from courier.domains.messaging_plugins.resource import messaging_plugins
from courier.domains.messaging_plugins.schemas import (
    PLUGIN_TYPE,
    ExpandBody,
    ExpandRead,
    PluginRead,
)
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid, render_one

router = APIRouter(tags=["messaging-plugins"])

PLUGIN = f"/v1/{PLUGIN_TYPE}/{{id}}/"

manage = Depends(context_dependency(Permission.MANAGE, individual_allowed=False))
communicate = Depends(context_dependency(Permission.COMMUNICATE))

_type_literal: Any = Literal["messaging-plugins"]
PluginDocument = create_model(
    "MessagingPluginActionDocument",
    data=(
        create_model(
            "MessagingPluginActionResource",
            id=(uuid.UUID, ...),
            type=(_type_literal, PLUGIN_TYPE),
            attributes=(PluginRead, ...),
        ),
        ...,
    ),
    meta=(dict[str, Any], Field(default_factory=dict)),
)


class EmptyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {201: {"model": model}, **ERROR_RESPONSES}


async def _switch(ctx: Context, raw_id: str, enabled: bool) -> JsonResponse:
    plugin = await service.plugins.load(ctx, path_uuid(raw_id, "messaging plugin"), for_update=True)
    await service.set_enabled(ctx, plugin, enabled)
    return JsonResponse(await render_one(ctx, messaging_plugins, plugin), status_code=201)


@router.post(
    PLUGIN + "enable/",
    status_code=201,
    response_model=None,
    summary="Enable a plugin (admin)",
    responses=_responses(PluginDocument),
    operation_id=f"enable-v1-{PLUGIN_TYPE}",
)
async def enable_plugin(
    id: str, body: EmptyBody | None = None, ctx: Context = manage
) -> JsonResponse:
    """Idempotent: enabling an enabled plugin changes nothing."""
    return await _switch(ctx, id, True)


@router.post(
    PLUGIN + "disable/",
    status_code=201,
    response_model=None,
    summary="Disable a plugin (admin): it can no longer be expanded",
    responses=_responses(PluginDocument),
    operation_id=f"disable-v1-{PLUGIN_TYPE}",
)
async def disable_plugin(
    id: str, body: EmptyBody | None = None, ctx: Context = manage
) -> JsonResponse:
    """Idempotent: disabling a disabled plugin changes nothing."""
    return await _switch(ctx, id, False)


@router.post(
    PLUGIN + "expand/",
    status_code=201,
    response_model=None,
    summary="Expand a plugin for a channel into message text",
    responses=_responses(ExpandRead),
    operation_id=f"expand-v1-{PLUGIN_TYPE}",
)
async def expand_plugin(id: str, body: ExpandBody, ctx: Context = communicate) -> JsonResponse:
    """Renders the plugin for ``channel-id`` on behalf of the calling individual
    (``individual-id``, or the token's own). The channel must be one the caller sees (an
    individual token: one it subscribes to; else 404); a disabled plugin: 409; a template
    that cannot be rendered for this channel: 400. Nothing is posted: the text is returned."""
    plugin = await service.load_for_expand(ctx, path_uuid(id, "messaging plugin"))
    message = await service.expand(ctx, plugin, body)
    return JsonResponse({"message": message}, status_code=201)
