"""Organizations: created by the master key (or `courier admin`), seen by their own keys."""

from __future__ import annotations

from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.organization import Organization


class OrganizationService(CrudService[Organization]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Organization:
        organization = Organization(**attrs.model_dump())
        ctx.session.add(organization)
        return organization
