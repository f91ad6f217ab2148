"""``/v1/app-credentials/``: an organization's push credentials per app and platform. Admin
only: they are the keys of the organization's apps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from courier.core.auth import Permission
from courier.domains.app_credentials.schemas import (
    CREDENTIAL_TYPES,
    AppCredentialCreate,
    AppCredentialRead,
    AppCredentialUpdate,
)
from courier.domains.app_credentials.service import service
from courier.jsonapi import query as q
from courier.jsonapi.context import Context
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.push_device import AppCredential


def _include_archived(stmt: Select[Any], value: bool, _ctx: Context) -> Select[Any]:
    return stmt if value else stmt.where(AppCredential.archived.is_(False))


app_credentials = register(
    ResourceSpec(
        type_name="app-credentials",
        model=AppCredential,
        read_schema=AppCredentialRead,
        create_schema=AppCredentialCreate,
        update_schema=AppCredentialUpdate,
        service=service,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.eq(
                "filter[app-name]",
                AppCredential.app_name,
                q.parse_text(64),
                "Credentials of this app",
                schema={"type": "string", "maxLength": 64},
            ),
            q.enum(
                "filter[type]", AppCredential.type, CREDENTIAL_TYPES, "Credentials of a platform"
            ),
            q.Filter(
                "include[archived]",
                q.parse_bool,
                _include_archived,
                "Include archived credentials",
                schema={"type": "boolean", "default": False},
                default=False,
            ),
        ],
        sorts={"created-at": AppCredential.created_at},
        default_sort=[("created-at", False)],
        permissions={Op.LIST: Permission.MANAGE, Op.GET: Permission.MANAGE},
        summaries={
            Op.LIST: "List push credentials (filter[app-name], filter[type], include[archived])",
            Op.GET: "Get one credential (secret data never returned)",
            Op.CREATE: "Create push credentials for an app",
            Op.UPDATE: "Modify or archive a credential",
        },
        singular="app credential",
        tag="notifications",
    )
)
