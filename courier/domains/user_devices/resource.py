"""``/v1/user-devices/``: push devices of individuals, and each device's push logs
(``get-logs``). Staff keys register and list devices for the organization; an individual
token registers, lists, reads and deletes its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from courier.core.auth import Permission
from courier.core.errors import forbidden
from courier.domains.user_devices.repository import devices, newest_first
from courier.domains.user_devices.schemas import (
    DEVICE_TYPES,
    UserDeviceCreate,
    UserDeviceLogRead,
    UserDeviceRead,
)
from courier.domains.user_devices.service import do_get_logs, present_logs, service
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, Listing
from courier.jsonapi.context import Context
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.push_device import UserDevice


def _all_users(stmt: Select[Any], value: bool, ctx: Context) -> Select[Any]:
    # An API key acts for the organization: it always sees every individual's devices.
    if value and ctx.principal.is_individual:
        raise forbidden("an individual token sees its own devices only (all-users)")
    return stmt


user_devices = register(
    ResourceSpec(
        type_name="user-devices",
        model=UserDevice,
        read_schema=UserDeviceRead,
        create_schema=UserDeviceCreate,
        service=service,
        repository=devices,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.DELETE}),
        filters=[
            q.Filter(
                "all-users",
                q.parse_bool,
                _all_users,
                "Every individual's devices (what an API key always sees; an individual "
                "token may not: 403)",
                schema={"type": "boolean", "default": False},
            ),
            q.eq(
                "filter[app-name]",
                UserDevice.app_name,
                q.parse_text(64),
                "Devices of this app",
                schema={"type": "string", "maxLength": 64},
            ),
            q.eq(
                "filter[app-version]",
                UserDevice.app_version,
                q.parse_text(20),
                "Devices running this app version",
                schema={"type": "string", "maxLength": 20},
            ),
            q.uuid_eq(
                "filter[individual-id]", UserDevice.individual_id, "Devices of this individual"
            ),
            q.eq(
                "filter[model]",
                UserDevice.model,
                q.parse_text(64),
                "Devices of this model",
                schema={"type": "string", "maxLength": 64},
            ),
            q.enum("filter[type]", UserDevice.type, DEVICE_TYPES, "Devices of this platform"),
            q.eq(
                "token",
                UserDevice.token,
                q.parse_text(1024),
                "The device with this token",
                schema={"type": "string", "maxLength": 1024},
            ),
        ],
        sorts={"created-at": UserDevice.created_at},
        default_sort=[("created-at", False)],
        permissions={Op.CREATE: Permission.COMMUNICATE, Op.DELETE: Permission.COMMUNICATE},
        individual_ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.DELETE}),
        summaries={
            Op.LIST: "List devices (all-users, filter[app-name], filter[type] apn|fcm|web, token)",
            Op.GET: "Get one device",
            Op.CREATE: "Register a device push token",
            Op.DELETE: "Unregister a device",
        },
        singular="user device",
        tag="notifications",
        actions=[
            ActionSpec(
                "get-logs",
                do_get_logs,
                summary="Pushes sent to a device",
                method="GET",
                permission=Permission.READ,
                individuals=True,
                listing=Listing(
                    "user-device-logs",
                    UserDeviceLogRead,
                    order=newest_first,
                    present=present_logs,
                ),
            )
        ],
    )
)
