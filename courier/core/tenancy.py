"""The one way to query a tenant table.

Every ORM statement that touches a table of a :class:`~courier.models.base.TenantMixin` model
must pass through :func:`scoped` (the request's organization) or :func:`unscoped` (a deliberate
cross-organization read, e.g. a worker claiming jobs, with its reason). A guard on every session
refuses any other statement, so a forgotten tenant filter fails loudly in tests instead of
leaking another organization's rows.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import Delete, Select, Update, visitors

Stmt = TypeVar("Stmt", Select[Any], Update, Delete)

_OPTION = "courier_tenant"


class TenantScopeError(RuntimeError):
    """A statement touched a tenant table without going through the scoping helper."""


def scoped(stmt: Stmt, model: Any, organization_id: uuid.UUID) -> Stmt:
    """Restrict ``stmt`` to the rows of ``model`` that belong to ``organization_id``."""
    return stmt.where(model.organization_id == organization_id).execution_options(
        **{_OPTION: organization_id}
    )


async def ids_where(
    session: AsyncSession, organization_id: uuid.UUID, column: Any, value: Any
) -> list[uuid.UUID]:
    """The ids of the rows of ``column``'s model in ``organization_id`` whose ``column`` is
    ``value`` (e.g. everything of one individual, for a purge)."""
    model = column.class_
    stmt = scoped(select(model.id).where(column == value), model, organization_id)
    return list((await session.execute(stmt)).scalars())


def in_organization(model: Any, organization_id: uuid.UUID) -> ColumnElement[bool]:
    """The condition that rows of ``model`` belong to ``organization_id``.

    For the other tenant tables of a statement that :func:`scoped` already marks (joins,
    subqueries): ``scoped`` filters only its own model, and conditions are never written by hand.
    """
    condition: ColumnElement[bool] = model.organization_id == organization_id
    return condition


def scoped_parts(stmt: Any, organization_id: uuid.UUID) -> Any:
    """Mark a compound statement (a UNION) whose every part filters each of its tenant tables
    with :func:`in_organization` for ``organization_id``."""
    return stmt.execution_options(**{_OPTION: organization_id})


def unscoped(stmt: Stmt, reason: str) -> Stmt:
    """Mark a statement that deliberately spans organizations (workers, the master key)."""
    if not reason:
        raise ValueError("an unscoped query needs a reason")
    return stmt.execution_options(**{_OPTION: f"unscoped: {reason}"})


def tenant_tables(stmt: Any) -> set[str]:
    names: set[str] = set()
    for element in visitors.iterate(stmt):
        if isinstance(element, Table) and element.info.get("tenant"):
            names.add(element.name)
    return names


@event.listens_for(Session, "do_orm_execute")
def _guard(state: ORMExecuteState) -> None:
    if state.is_relationship_load or state.is_column_load:
        return  # navigating from a row that was already loaded through a scoped query
    if state.execution_options.get(_OPTION) is not None:
        return
    tables = tenant_tables(state.statement)
    if tables:
        raise TenantScopeError(
            f"query on tenant table(s) {sorted(tables)} without courier.core.tenancy.scoped()"
        )


def mark_tenant_tables() -> None:
    """Flag the tables of every TenantMixin model (called once the models are imported)."""
    from courier.models.base import Base, TenantMixin

    for mapper in Base.registry.mappers:
        if issubclass(mapper.class_, TenantMixin):
            for table in mapper.tables:
                table.info["tenant"] = True  # type: ignore[attr-defined]
