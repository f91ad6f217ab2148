"""The SQL of the people domain that other domains share: is this id an individual of the
organization?"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select

from courier.core.auth import Principal
from courier.core.errors import ApiError, ErrorItem, not_found
from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.individual import Individual
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


def unknown_individual(ident: uuid.UUID, *, pointer: str | None, parameter: str | None) -> ApiError:
    name = (pointer or parameter or "individual-id").rsplit("/", 1)[-1]
    return ApiError(
        404,
        [
            ErrorItem(
                f"{name} names no individual of this organization: {ident}",
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


async def require_individuals(ctx: Context, ids: Iterable[uuid.UUID], pointer: str) -> None:
    """Every id names an individual of the organization, else 404 pointing at the attribute."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return
    found = await individuals_repository.existing_ids(ctx, wanted)
    for ident in wanted:
        if ident not in found:
            raise unknown_individual(ident, pointer=pointer, parameter=None)
