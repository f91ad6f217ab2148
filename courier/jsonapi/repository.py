"""Repositories: the SQL of a domain, tenant-scoped through one helper, written once.

Every resource has a :class:`Repository` (its spec makes a default one). ``statement(ctx)`` is
the organization's rows; ``readable(ctx)`` what the caller may see (an individual token only
what the resource's ``individual_scope`` leaves it, else nothing); the loaders answer 404 for
anything else, so another organization's ids leak nothing. A domain subclasses it in its
``repository.py`` when its rules need more (e.g. bookmarks narrowed to ``individual-id``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, false, select

from courier.core import db
from courier.core.auth import Principal
from courier.core.errors import conflict, not_found
from courier.core.tenancy import scoped, unscoped
from courier.jsonapi.context import Context

M = TypeVar("M")

IndividualScope = Callable[[Select[Any], Principal], Select[Any]]
CHUNK = 500  # ids per IN (...) list: under every database's bound-parameter limit


def is_postgres(ctx: Context) -> bool:
    return db.is_postgres(ctx.session)


class Repository(Generic[M]):
    def __init__(
        self,
        model: type[M],
        *,
        what: str = "",
        tenant: bool = True,
        individual_scope: IndividualScope | None = None,
    ) -> None:
        self.model = model
        self.what = what or model.__name__.lower()
        self.tenant = tenant
        self.individual_scope = individual_scope

    def statement(self, ctx: Context, *columns: Any) -> Select[Any]:
        """``SELECT model`` (or ``columns``) over the caller's organization's rows."""
        stmt: Select[Any] = select(*columns) if columns else select(self.model)
        if self.tenant:
            return scoped(stmt, self.model, ctx.organization_id)
        return unscoped(stmt, f"{self.what}: not a tenant table")

    def readable(self, ctx: Context) -> Select[Any]:
        """The rows the caller may see: the organization's, narrowed for an individual token
        by ``individual_scope`` (none: an individual sees nothing)."""
        stmt = self.statement(ctx)
        if ctx.principal.is_individual:
            if self.individual_scope is None:
                return stmt.where(false())
            return self.individual_scope(stmt, ctx.principal)
        return stmt

    async def get(
        self,
        ctx: Context,
        ident: uuid.UUID,
        *,
        for_update: bool = False,
        stmt: Select[Any] | None = None,
    ) -> M | None:
        """The row ``ident`` among ``stmt`` (default: the readable rows), or None. With
        ``for_update`` the row is locked (PostgreSQL) until the request commits."""
        query = (self.readable(ctx) if stmt is None else stmt).where(
            self.model.id == ident  # type: ignore[attr-defined]
        )
        if for_update and is_postgres(ctx):
            query = query.with_for_update()
        found: M | None = (await ctx.session.execute(query)).scalar_one_or_none()
        return found

    async def load(self, ctx: Context, ident: uuid.UUID, *, for_update: bool = False) -> M:
        """The readable row ``ident``, else 404."""
        found = await self.get(ctx, ident, for_update=for_update)
        if found is None:
            raise not_found(self.what)
        return found

    async def all(self, ctx: Context, stmt: Select[Any]) -> list[M]:
        return list((await ctx.session.execute(stmt)).scalars().all())

    async def existing_ids(self, ctx: Context, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Which of ``ids`` name rows of the organization (chunked IN lists)."""
        wanted = list(dict.fromkeys(ids))
        found: set[uuid.UUID] = set()
        column = self.model.id  # type: ignore[attr-defined]
        base = self.statement(ctx, column)
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            found.update((await ctx.session.execute(base.where(column.in_(chunk)))).scalars())
        return found

    async def require_free_name(
        self, ctx: Context, name: str, *, exclude: uuid.UUID | None = None
    ) -> None:
        """409 ``duplicate-name`` when another of the organization's rows (not ``exclude``)
        already has ``name``; a uniquely named resource checks it before create and rename."""
        model: Any = self.model
        stmt = self.statement(ctx, model.id).where(model.name == name)
        if exclude is not None:
            stmt = stmt.where(model.id != exclude)
        if (await ctx.session.execute(stmt.limit(1))).scalar_one_or_none() is not None:
            raise conflict(
                f"a {self.what} named {name!r} already exists in this organization",
                "duplicate-name",
                pointer="/data/attributes/name",
            )
