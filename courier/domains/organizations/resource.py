from __future__ import annotations

from sqlalchemy import func

from courier.core.auth import Permission
from courier.domains.organizations.repository import OrganizationRepository
from courier.domains.organizations.schemas import (
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
)
from courier.domains.organizations.service import OrganizationService
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.organization import Organization

organizations = register(
    ResourceSpec(
        type_name="organizations",
        model=Organization,
        read_schema=OrganizationRead,
        create_schema=OrganizationCreate,
        update_schema=OrganizationUpdate,
        service=OrganizationService(),
        repository=OrganizationRepository(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.contains("filter[name]", Organization.name, "Organizations whose name contains this")
        ],
        # Case-insensitive, so the order is the same whatever the database's collation.
        sorts={
            "name": func.lower(Organization.name),
            "last-modified-time": Organization.last_modified_at,
        },
        default_sort=[("name", False)],
        permissions={Op.CREATE: Permission.MASTER},
        tenant=False,
        summaries={
            Op.LIST: "List organizations the caller may see",
            Op.GET: "Get one organization",
            Op.CREATE: "Create an organization (master key only)",
            Op.UPDATE: "Modify an organization",
        },
        singular="organization",
    )
)
