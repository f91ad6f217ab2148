"""``/v1/console-users/``: personal console logins of care-team members (admin only)."""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.console_users.repository import ConsoleUserRepository
from courier.domains.console_users.schemas import (
    ConsoleUserCreate,
    ConsoleUserRead,
    ConsoleUserUpdate,
)
from courier.domains.console_users.service import ConsoleUserService
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.console_user import ConsoleUser

console_users = register(
    ResourceSpec(
        type_name="console-users",
        model=ConsoleUser,
        read_schema=ConsoleUserRead,
        create_schema=ConsoleUserCreate,
        update_schema=ConsoleUserUpdate,
        service=ConsoleUserService(),
        repository=ConsoleUserRepository(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE, Op.DELETE}),
        filters=[
            q.enum(
                "filter[role]",
                ConsoleUser.role,
                ["admin", "staff", "readonly"],
                "Logins with this role",
            ),
            q.uuid_eq(
                "filter[individual-id]", ConsoleUser.individual_id, "Logins of this individual"
            ),
        ],
        sorts={"username": ConsoleUser.username_key, "created-at": ConsoleUser.created_at},
        default_sort=[("created-at", False)],
        permissions={Op.LIST: Permission.MANAGE, Op.GET: Permission.MANAGE},
        summaries={
            Op.LIST: "List the organization's personal console logins (admin)",
            Op.GET: "Get one console login (never its password)",
            Op.CREATE: "Create a personal console login for a provider individual, with a role",
            Op.UPDATE: "Change a console login's role or password (a new password ends its "
            "sessions)",
            Op.DELETE: "Revoke a console login: it stops working and its sessions end",
        },
        singular="console user",
    )
)
