"""Organizations are the tenants themselves: the master key sees every one, a key its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from courier.core.auth import PrincipalKind
from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.organization import Organization


class OrganizationRepository(Repository[Organization]):
    def __init__(self) -> None:
        super().__init__(Organization, what="organization", tenant=False)

    def readable(self, ctx: Context) -> Select[Any]:
        stmt = super().readable(ctx)
        if ctx.principal.kind is PrincipalKind.MASTER:
            return stmt
        return stmt.where(Organization.id == ctx.principal.organization_id)
