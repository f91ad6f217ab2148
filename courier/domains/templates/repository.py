"""The SQL of notification templates: the resource's rows, and a template by id or name."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import ApiError, ErrorItem
from courier.core.tenancy import scoped
from courier.jsonapi.repository import Repository
from courier.models.template import Template

templates_repository: Repository[Template] = Repository(Template, what="template")


async def template_by_id(
    session: AsyncSession, organization_id: uuid.UUID, template_id: uuid.UUID | None
) -> Template | None:
    """The organization's template ``template_id`` (None: there is none, e.g. deleted)."""
    stmt = scoped(select(Template), Template, organization_id).where(Template.id == template_id)
    found: Template | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def find_template(session: AsyncSession, organization_id: uuid.UUID, ref: str) -> Template:
    """The organization's template whose id, or else name, is ``ref`` (the seed's
    ``template-id`` is a string of up to 255 characters); 404 naming ``template-id`` otherwise:
    another organization's template is not found either."""
    stmt = scoped(select(Template), Template, organization_id)
    found: Template | None = None
    try:
        ident = uuid.UUID(ref)
    except ValueError:
        ident = None
    if ident is not None:
        found = (await session.execute(stmt.where(Template.id == ident))).scalar_one_or_none()
    if found is None:
        found = (await session.execute(stmt.where(Template.name == ref))).scalar_one_or_none()
    if found is None:
        raise ApiError(
            404,
            [
                ErrorItem(
                    f"template-id names no template of this organization: {ref}",
                    "not-found",
                    pointer="/template-id",
                )
            ],
        )
    return found
