"""The SQL of the people domain that other domains share: is this id an individual of the
organization?"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
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
