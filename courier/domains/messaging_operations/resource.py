"""``messaging-operations``: list, get, create (admin only); the work is done by a job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from courier.core.auth import Permission
from courier.domains.messaging_operations.schemas import (
    OPERATION_TYPE,
    OPERATION_TYPES,
    OperationCreate,
    OperationRead,
)
from courier.domains.messaging_operations.service import operations
from courier.jsonapi import query as q
from courier.jsonapi.context import Context
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.messaging_operation import MessagingOperation


def _shown_only(stmt: Select[Any], _value: Any, _ctx: Context) -> Select[Any]:
    """include-args shapes the rendering, not the rows (validated by the list parser)."""
    return stmt


messaging_operations = register(
    ResourceSpec(
        type_name=OPERATION_TYPE,
        model=MessagingOperation,
        read_schema=OperationRead,
        create_schema=OperationCreate,
        service=operations,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.enum(
                "filter[type]", MessagingOperation.type, OPERATION_TYPES, "Operations of this type"
            ),
            q.Filter(
                "include-args",
                q.parse_bool,
                _shown_only,
                "Show each operation's args (default false: args is null)",
                schema={"type": "boolean", "default": False},
            ),
        ],
        sorts={
            "created-at": MessagingOperation.created_at,
            "last-modified-at": MessagingOperation.last_modified_at,
        },
        default_sort=[("created-at", True)],
        permissions={op: Permission.MANAGE for op in (Op.LIST, Op.GET, Op.CREATE)},
        summaries={
            Op.LIST: "List operations, newest first (admin; filter[type], include-args)",
            Op.GET: "Get one operation with its status and logs (admin; include-args=true: "
            "with its args)",
            Op.CREATE: "Start an asynchronous operation (admin): move-group moves channels "
            "from one individual group to another, their subscribers following",
        },
        singular="messaging operation",
        tag="messaging-operations",
    )
)
