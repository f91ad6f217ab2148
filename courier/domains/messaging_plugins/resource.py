"""``messaging-plugins``: list, get, create, patch; the actions enable, disable (admin) and
expand (staff, admin and individual tokens, on any plugin of the organization)."""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.messaging_plugins.schemas import (
    PLUGIN_TYPE,
    ExpandBody,
    ExpandRead,
    PluginCreate,
    PluginRead,
    PluginUpdate,
)
from courier.domains.messaging_plugins.service import plugins
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, EmptyBody
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.messaging_plugin import MessagingPlugin


def _parse_name(text: str) -> str:
    if not 4 <= len(text) <= 15 or not text.isascii() or not text.isalnum() or text.lower() != text:
        raise ValueError("must be 4 to 15 lower-case letters or digits (^[a-z0-9]+$)")
    return text


messaging_plugins = register(
    ResourceSpec(
        type_name=PLUGIN_TYPE,
        model=MessagingPlugin,
        read_schema=PluginRead,
        create_schema=PluginCreate,
        update_schema=PluginUpdate,
        service=plugins,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.eq(
                "filter[name]",
                MessagingPlugin.name,
                _parse_name,
                "The plugin with this name",
                schema={
                    "type": "string",
                    "pattern": "^[a-z0-9]+$",
                    "minLength": 4,
                    "maxLength": 15,
                },
            ),
            q.eq(
                "filter[type]",
                MessagingPlugin.type,
                q.parse_text(255),
                "Plugins of this type (template, link)",
                schema={"type": "string", "maxLength": 255},
            ),
        ],
        sorts={"name": MessagingPlugin.name, "created-at": MessagingPlugin.created_at},
        default_sort=[("name", False)],
        summaries={
            Op.LIST: "List plugins (filter[name], filter[type])",
            Op.GET: "Get one plugin",
            Op.CREATE: "Create a plugin (admin): name ^[a-z0-9]{4,15}$, unique in the "
            "organization; type template or link with its args",
            Op.UPDATE: "Modify a plugin's name, type or args (admin)",
        },
        singular="messaging plugin",
        tag="messaging-plugins",
        actions=[
            ActionSpec(
                "enable",
                plugins.do_enable,
                summary="Enable a plugin (admin)",
                body=EmptyBody,
            ),
            ActionSpec(
                "disable",
                plugins.do_disable,
                summary="Disable a plugin (admin): it can no longer be expanded",
                body=EmptyBody,
            ),
            ActionSpec(
                "expand",
                plugins.do_expand,
                summary="Expand a plugin for a channel into message text",
                body=ExpandBody,
                permission=Permission.COMMUNICATE,
                individuals=True,
                # Individual tokens cannot list plugins but may expand one they were given.
                loader=plugins.load_for_expand,
                response=ExpandRead,
            ),
        ],
    )
)
