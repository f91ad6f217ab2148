"""Pages of a list: one :func:`paginate` for every list endpoint, declared or not.

It counts the rows the statement finds (or takes a total the caller keeps as a counter), orders
them with ties broken by id (so pages never repeat or skip a row), and fetches one page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.jsonapi.query import ListQuery


@dataclass
class Page:
    rows: list[Any]
    total: int


async def count_rows(session: AsyncSession, stmt: Select[Any]) -> int:
    """How many rows ``stmt`` finds (its tenancy marks carried over to the count)."""
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    options = stmt.get_execution_options()
    return int((await session.execute(count.execution_options(**options))).scalar_one())


def sort_order(
    sorts: Mapping[str, Any],
    requested: Sequence[tuple[str, bool]],
    default: Sequence[tuple[str, bool]],
    ident: Any,
) -> list[Any]:
    """ORDER BY for the requested (else default) sort, the id last in the same direction as
    the last sort key (ties broken by id)."""
    chosen = list(requested or default)
    order = [sorts[name].desc() if descending else sorts[name].asc() for name, descending in chosen]
    last_descending = bool(chosen) and chosen[-1][1]
    order.append(ident.desc() if last_descending else ident.asc())
    return order


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    query: ListQuery,
    order: Sequence[Any],
    *,
    total: int | None = None,
    rows: bool = False,
) -> Page:
    """One page of ``stmt`` in ``order`` (which should end with the id) and the total.
    ``rows``: the statement selects several columns (an aggregate); the page holds its rows
    rather than the first column's values."""
    if total is None:
        total = await count_rows(session, stmt)
    page = stmt.order_by(*order).limit(query.limit).offset(query.offset)
    result = await session.execute(page)
    found = list(result.all()) if rows else list(result.scalars().all())
    return Page(found, total)
