"""The SQL of the people domain: individuals, users and individual groups; and what other
domains share: is this id an individual of the organization?"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Row, Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.errors import ApiError, ErrorItem, not_found
from courier.core.tenancy import ids_where, scoped
from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.individual import Individual
from courier.models.individual_group import (
    IndividualGroup,
    IndividualGroupLeader,
    IndividualGroupMember,
)
from courier.models.user import User


def individual_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees only its own individual."""
    return stmt.where(Individual.id == principal.individual_id)


def user_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees the user whose primary individual it is."""
    return stmt.where(User.primary_individual_id == principal.individual_id)


individuals_repository: Repository[Individual] = Repository(
    Individual, what="individual", individual_scope=individual_scope
)
users_repository: Repository[User] = Repository(User, what="user", individual_scope=user_scope)


def unknown_individual(
    ident: uuid.UUID, *, pointer: str | None, parameter: str | None, more: int = 0
) -> ApiError:
    name = (pointer or parameter or "individual-id").rsplit("/", 1)[-1]
    also = f" (and {more} more)" if more else ""
    return ApiError(
        404,
        [
            ErrorItem(
                f"{name} names no individual of this organization: {ident}{also}",
                "not-found",
                pointer=pointer,
                parameter=parameter,
            )
        ],
    )


async def require_individual(
    ctx: Context,
    ident: uuid.UUID,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
) -> Individual:
    """The organization's individual ``ident``, else 404: naming the body attribute
    (``pointer``) or query parameter it came from, or plainly "individual not found"."""
    found = await individuals_repository.get(ctx, ident, stmt=individuals_repository.statement(ctx))
    if found is None:
        if pointer is None and parameter is None:
            raise not_found("individual")
        raise unknown_individual(ident, pointer=pointer, parameter=parameter)
    return found


async def require_individuals(
    ctx: Context,
    ids: Sequence[uuid.UUID],
    pointer: str | Callable[[int], str],
    *,
    count_more: bool = False,
) -> None:
    """Every id names an individual of the organization, else 404.

    With ``pointer`` an attribute's JSON pointer: one error there naming the first unknown id
    (with ``count_more``: "(and N more)" when several are unknown). With ``pointer`` a function
    of an id's position in ``ids`` (e.g. ``/data/attributes/entries/3/individual-id``): one
    error per unknown entry, each at its own pointer, as a list."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return
    found = await individuals_repository.existing_ids(ctx, wanted)
    if callable(pointer):
        each = [
            ErrorItem(
                f"{attribute_path(pointer(index))} names no individual of this organization",
                "not-found",
                pointer=pointer(index),
            )
            for index, ident in enumerate(ids)
            if ident not in found
        ]
        if each:
            raise ApiError(404, each, {}, True)
        return
    unknown = [ident for ident in wanted if ident not in found]
    if unknown:
        more = len(unknown) - 1 if count_more else 0
        raise unknown_individual(unknown[0], pointer=pointer, parameter=None, more=more)


def attribute_path(pointer: str) -> str:
    """``/data/attributes/entries/3/individual-id`` as ``entries[3].individual-id``."""
    parts = pointer.removeprefix("/data/attributes/").split("/")
    path = parts[0]
    for part in parts[1:]:
        path += f"[{part}]" if part.isdigit() else f".{part}"
    return path


# --- users -----------------------------------------------------------------------------------


async def user_key_taken(ctx: Context, column: Any, key: str, *, exclude: uuid.UUID | None) -> bool:
    """Whether another user of the organization (not ``exclude``) has ``key`` in ``column``
    (a folded username or email)."""
    stmt = users_repository.statement(ctx, User.id).where(column == key)
    if exclude is not None:
        stmt = stmt.where(User.id != exclude)
    return (await ctx.session.execute(stmt.limit(1))).first() is not None


# --- individual groups -----------------------------------------------------------------------

# Members and leaders: the two link tables of a group, one row per (group, individual).
GroupLink = type[IndividualGroupMember] | type[IndividualGroupLeader]


def groups_with_member(ctx: Context, individual_id: uuid.UUID) -> Select[Any]:
    """The ids of the groups that have ``individual_id`` among their members."""
    return scoped(
        select(IndividualGroupMember.group_id), IndividualGroupMember, ctx.organization_id
    ).where(IndividualGroupMember.individual_id == individual_id)


async def group_links(
    ctx: Context, model: GroupLink, group_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The members (or leaders, by ``model``) of each group, in id order: one query."""
    by_group: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if not group_ids:
        return by_group
    stmt = (
        scoped(
            cast("Select[Any]", select(model.group_id, model.individual_id)),
            model,
            ctx.organization_id,
        )
        .where(model.group_id.in_(group_ids))
        .order_by(model.group_id, model.individual_id)
    )
    for group_id, individual_id in (await ctx.session.execute(stmt)).all():
        by_group[group_id].append(individual_id)
    return by_group


async def remove_group_links(
    ctx: Context, model: GroupLink, group_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> None:
    """Remove these individuals from the group's members (or leaders, by ``model``)."""
    await ctx.session.execute(
        scoped(delete(model), model, ctx.organization_id).where(
            model.group_id == group_id, model.individual_id.in_(individual_ids)
        )
    )


async def group_parent(ctx: Context, group_id: uuid.UUID) -> Row[Any] | None:
    """The organization's group ``group_id`` as ``(id, parent_id)``, or None."""
    chain = cast("Select[Any]", select(IndividualGroup.id, IndividualGroup.parent_id))
    stmt = scoped(chain, IndividualGroup, ctx.organization_id)
    found: Row[Any] | None = (
        await ctx.session.execute(stmt.where(IndividualGroup.id == group_id))
    ).first()
    return found


async def users_of_individual(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[uuid.UUID]:
    """The ids of the users whose primary individual is ``individual_id`` (all of them)."""
    return await ids_where(session, organization_id, User.primary_individual_id, individual_id)


async def individuals_by_id(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Individual]:
    """The organization's individuals of ``individual_ids`` (those that exist), by id."""
    if not individual_ids:
        return {}
    stmt = scoped(select(Individual), Individual, organization_id).where(
        Individual.id.in_(list(dict.fromkeys(individual_ids)))
    )
    return {row.id: row for row in (await session.execute(stmt)).scalars()}
