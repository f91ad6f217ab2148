from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.api_keys.repository import api_keys_repository
from courier.domains.api_keys.schemas import ApiKeyCreate, ApiKeyRead
from courier.domains.api_keys.service import ApiKeyService
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.api_key import ApiKey

api_keys = register(
    ResourceSpec(
        type_name="api-keys",
        model=ApiKey,
        read_schema=ApiKeyRead,
        create_schema=ApiKeyCreate,
        service=ApiKeyService(),
        repository=api_keys_repository,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.DELETE, Op.DELETE_ALL}),
        filters=[
            q.enum(
                "filter[role]", ApiKey.role, ["admin", "staff", "readonly"], "Keys with this role"
            ),
        ],
        sorts={"name": ApiKey.name, "created-at": ApiKey.created_at},
        default_sort=[("created-at", False)],
        permissions={Op.LIST: Permission.MANAGE, Op.GET: Permission.MANAGE},
        summaries={
            Op.LIST: "List API keys of an organization (secrets never shown again)",
            Op.GET: "Get one API key",
            Op.CREATE: "Create an API key with a role; the secret is returned once",
            Op.DELETE: "Revoke an API key",
            Op.DELETE_ALL: "Revoke every key of the organization but the caller's (delete_all=1; "
            "the master key names the organization with organization-id)",
        },
        singular="API key",
    )
)
