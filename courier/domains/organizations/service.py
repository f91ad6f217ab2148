"""Organizations: created by the master key (or `courier admin`), seen by their own keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from courier.core.auth import PrincipalKind
from courier.core.tenancy import unscoped
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.organization import Organization


class OrganizationService(CrudService[Organization]):
    def query(self, ctx: Context) -> Select[Any]:
        stmt = unscoped(select(Organization), "organizations are the tenants themselves")
        if ctx.principal.kind is PrincipalKind.MASTER:
            return stmt
        return stmt.where(Organization.id == ctx.principal.organization_id)

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Organization:
        organization = Organization(**attrs.model_dump())
        ctx.session.add(organization)
        return organization
