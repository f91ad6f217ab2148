"""The rules of messaging plugins: names, types and args, enabling, expanding for a channel.

- Admin keys create and modify plugins; every key reads them; individual tokens cannot list
  them, but may expand one (by id) in a channel they subscribe to.
- A name is 4 to 15 lower-case letters or digits, unique in the organization (409).
- ``args`` are checked by the plugin's type (``courier.domains.messaging_plugins.types``) on
  create and on every patch that names ``type`` or ``args``: 400 naming the arg.
- Expanding renders the plugin for a channel the caller can see (an individual token: one it
  subscribes to; else 404) on behalf of the calling individual (``individual-id`` of the body
  or query, or the token's own; with a key it must subscribe to the channel: 422). A disabled
  plugin: 409. Expanding changes nothing, so it is neither audited nor announced.
"""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo

from courier.core.errors import (
    ApiError,
    ErrorItem,
    bad_request,
    conflict,
    forbidden,
    not_found,
    unprocessable,
)
from courier.core.time import now_ms, utcnow
from courier.domains.messaging import repository as messaging
from courier.domains.messaging_plugins import repository as repo
from courier.domains.messaging_plugins.schemas import (
    ExpandBody,
    ExpandRead,
    PluginCreate,
    PluginUpdate,
)
from courier.domains.messaging_plugins.types import (
    PLUGIN_TYPES,
    ArgsError,
    ExpandContext,
    PluginType,
    RenderError,
    type_names,
)
from courier.domains.org_preferences.service import get_preference
from courier.domains.organizations.repository import organization as organization_row
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import SwitchableService, touch
from courier.models.individual import Individual
from courier.models.messaging import MessagingChannel
from courier.models.messaging_plugin import MessagingPlugin


def require_type(name: str) -> PluginType:
    plugin_type = PLUGIN_TYPES.get(name)
    if plugin_type is None:
        raise ApiError(
            400,
            [
                ErrorItem(
                    f"type must be one of: {', '.join(type_names())}",
                    "invalid-plugin-type",
                    pointer="/data/attributes/type",
                )
            ],
            {},
            True,
        )
    return plugin_type


def check_args(plugin_type: PluginType, args: dict[str, Any]) -> dict[str, Any]:
    try:
        return plugin_type.check_args(args)
    except ArgsError as exc:
        pointer = "/data/attributes/args" + (f"/{exc.path}" if exc.path else "")
        raise ApiError(
            400, [ErrorItem(exc.detail, "invalid-plugin-args", pointer=pointer)], {}, True
        ) from exc


class PluginService(SwitchableService[MessagingPlugin]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> MessagingPlugin:
        assert isinstance(attrs, PluginCreate)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        args = check_args(require_type(attrs.type), attrs.args)
        await self.repository.require_free_name(ctx, attrs.name)
        now = now_ms()
        plugin = MessagingPlugin(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            name=attrs.name,
            type=attrs.type,
            args=args,
            enabled=True,
            created_at=now,
            created_by=ctx.principal.key_id,
            last_modified_at=now,
            last_modified_by=ctx.principal.key_id,
        )
        ctx.session.add(plugin)
        return plugin

    async def update(
        self, ctx: Context, obj: MessagingPlugin, attrs: WriteAttributes
    ) -> MessagingPlugin:
        assert isinstance(attrs, PluginUpdate)
        given = attrs.given()
        nulls = [
            ErrorItem(
                f"{name} must not be null", "null-attribute", pointer=f"/data/attributes/{name}"
            )
            for name, value in sorted(given.items())
            if value is None
        ]
        if nulls:
            raise ApiError(400, nulls, {}, True)
        changed = False
        if "type" in given or "args" in given:
            plugin_type = require_type(given.get("type", obj.type))
            # A new type with the old args must accept them too: checked like new ones.
            args = check_args(plugin_type, given.get("args", obj.args))
            if given.get("type", obj.type) != obj.type or args != obj.args:
                obj.type = plugin_type.name
                obj.args = args
                changed = True
        if "name" in given and given["name"] != obj.name:
            await self.repository.require_free_name(ctx, given["name"], exclude=obj.id)
            obj.name = given["name"]
            changed = True
        if changed:
            touch(ctx, obj)
        return obj

    async def load_for_expand(
        self, ctx: Context, ident: uuid.UUID, *, for_update: bool = False
    ) -> MessagingPlugin:
        """The organization's plugin, whoever asks (individual tokens cannot list plugins, but
        may expand one they were given). Expanding changes nothing: never locked."""
        found = await repo.plugin(ctx.session, ctx.organization_id, ident)
        if found is None:
            raise not_found("messaging plugin")
        return found

    async def do_expand(
        self, ctx: Context, plugin: MessagingPlugin, body: ExpandBody
    ) -> ExpandRead:
        """Renders the plugin for ``channel-id`` on behalf of the calling individual
        (``individual-id``, or the token's own). The channel must be one the caller sees (an
        individual token: one it subscribes to; else 404); a disabled plugin: 409; a template
        that cannot be rendered for this channel: 400. Nothing is posted: the text is
        returned."""
        return ExpandRead(message=await expand(ctx, plugin, body))


plugins = PluginService()


# --- expand ------------------------------------------------------------------------------


def _caller(ctx: Context, given: uuid.UUID | None) -> uuid.UUID | None:
    principal = ctx.principal
    if given is None:
        return ctx.acting_individual_id
    if principal.is_individual and given != principal.individual_id:
        raise forbidden("an individual token may act only as its own individual")
    if ctx.acting_individual_id is not None and ctx.acting_individual_id != given:
        raise bad_request(
            "individual-id differs between the query and the body",
            "conflicting-individual",
            pointer="/individual-id",
        )
    return given


def _no_channel(channel_id: uuid.UUID) -> ApiError:
    return ApiError(
        404,
        [
            ErrorItem(
                f"channel-id names no channel of this organization: {channel_id}",
                "not-found",
                pointer="/channel-id",
            )
        ],
    )


async def expand(ctx: Context, plugin: MessagingPlugin, body: ExpandBody) -> str:
    caller = _caller(ctx, body.individual_id)
    org = ctx.organization_id
    channel = await messaging.load_channel(ctx.session, org, body.channel_id, "/channel-id")
    individual: Individual | None = None
    if caller is not None:
        individual = await messaging.find_individual(ctx.session, org, caller)
        if individual is None:
            raise ApiError(
                404,
                [
                    ErrorItem(
                        f"individual-id names no individual of this organization: {caller}",
                        "not-found",
                        pointer="/individual-id",
                    )
                ],
            )
        if await messaging.find_subscriber(ctx.session, org, channel.id, caller) is None:
            if ctx.principal.is_individual:
                raise _no_channel(body.channel_id)  # a channel it cannot see does not exist
            raise unprocessable(
                f"individual {caller} does not subscribe to this channel", "not-a-subscriber"
            )
    if not plugin.enabled:
        raise conflict(f"the plugin {plugin.name!r} is disabled", "plugin-disabled")
    plugin_type = PLUGIN_TYPES.get(plugin.type)
    if plugin_type is None:
        raise conflict(
            f"the plugin's type {plugin.type!r} is not available on this server", "unknown-type"
        )
    context = await expand_context(ctx, channel, individual)
    try:
        return plugin_type.render(plugin.args, context)
    except RenderError as exc:
        raise bad_request(
            f"args of the plugin {plugin.name!r} could not be rendered for this channel: {exc}",
            "plugin-render-error",
        ) from exc


async def expand_context(
    ctx: Context, channel: MessagingChannel, individual: Individual | None
) -> ExpandContext:
    """Plain values of what a plugin may show (no ORM object reaches a template)."""
    org = ctx.organization_id
    session = ctx.session
    organization = await organization_row(session, org)
    subscriber_count = await repo.subscriber_count(session, org, channel.id)
    group: dict[str, Any] | None = None
    if channel.individual_group_id is not None:
        found = await repo.group_with_size(session, org, channel.individual_group_id)
        if found is not None:
            row, members = found
            group = {"id": str(row.id), "name": row.name, "member_count": members}
    # The name the channel shows by default: its group's, else its own, else the default title.
    name = group["name"] if group else channel.name
    if not name:
        name = await get_preference(session, org, "default-channel-title") or ""
    return ExpandContext(
        channel={
            "id": str(channel.id),
            "name": name,
            "label": channel.label or "",
            "subscriber_count": int(subscriber_count),
        },
        group=group,
        individual=(
            {
                "id": str(individual.id),
                "first_name": individual.first_name,
                "last_name": individual.last_name,
                "preferred_name": individual.preferred_name,
            }
            if individual is not None
            else None
        ),
        organization={
            "id": str(organization.id),
            "name": organization.name,
            "display_name": organization.display_name,
            "timezone": organization.timezone,
        },
        now=utcnow().astimezone(ZoneInfo(organization.timezone or "UTC")),
    )
