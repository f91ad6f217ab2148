"""The request context handed to services: session, principal, settings, request id."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.auth import ROLE_PERMISSIONS, Permission, Principal, Role, authenticate
from courier.core.db import Database, commit
from courier.core.errors import conflict, forbidden, invalid_parameter
from courier.jsonapi.query import parse_uuid


@dataclass
class Context:
    session: AsyncSession
    principal: Principal
    settings: Settings
    request: Request
    request_id: str
    acting_individual_id: uuid.UUID | None = None
    # The parsed query parameters a declared action names (ActionSpec.parameters).
    query: dict[str, Any] = field(default_factory=dict)

    @property
    def organization_id(self) -> uuid.UUID:
        return self.principal.require_organization()


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, committed once after the endpoint returns successfully."""
    database: Database = request.app.state.database
    async with database.request_turn(), database.sessionmaker() as session:
        request.state.session = session
        try:
            yield session
            await commit(session)
        except IntegrityError as exc:
            await session.rollback()
            raise conflict(
                "the change conflicts with an existing resource", "integrity-conflict"
            ) from exc
        except BaseException:
            await session.rollback()
            raise


RateLimitHook = Callable[[Request, Principal], Awaitable[None]]


async def request_principal(request: Request, session: AsyncSession) -> Principal:
    """The caller, authenticated on the request's session, within its rate limits."""
    settings: Settings = request.app.state.settings
    principal = await authenticate(
        session, settings, request.headers.get("authorization"), request.app.state.key_cache
    )
    request.state.principal = principal
    hook: RateLimitHook | None = getattr(request.app.state, "rate_limit_hook", None)
    if hook is not None:
        await hook(request, principal)
    return principal


@dataclass(frozen=True)
class AccessRule:
    """What a route asks of its caller; kept so tests can walk every route's rule."""

    permission: Permission
    individual_allowed: bool
    individual_exempt: bool


ACCESS_RULES: dict[Callable[..., Any], AccessRule] = {}


def context_dependency(
    permission: Permission, *, individual_allowed: bool = True, individual_exempt: bool = False
) -> Callable[..., Awaitable[Context]]:
    """A FastAPI dependency that authenticates, checks ``permission`` and builds a Context.

    ``individual_exempt``: an individual token skips the permission check (the operation is
    confined to its own rows by the resource's individual scope).
    """

    async def dependency(
        request: Request,
        session: AsyncSession = Depends(request_session, scope="function"),
    ) -> Context:
        # Called, not a sub-dependency: FastAPI's solving of each nested dependency costs
        # about as much as authenticating a cached key.
        principal = await request_principal(request, session)
        if principal.is_individual and not individual_allowed:
            roles = [r.value for r in Role if permission in ROLE_PERMISSIONS[r]]
            instead = f"an API key with role {' or '.join(roles)}" if roles else "the master key"
            raise forbidden(f"an individual access token cannot use this endpoint; use {instead}")
        if not (principal.is_individual and individual_exempt):
            principal.require(permission)
        ctx = Context(
            session, principal, request.app.state.settings, request, request.state.request_id
        )
        ctx.acting_individual_id = acting_individual(ctx, request.query_params.get("individual-id"))
        return ctx

    ACCESS_RULES[dependency] = AccessRule(permission, individual_allowed, individual_exempt)
    return dependency


def acting_individual(ctx: Context, raw: str | None) -> uuid.UUID | None:
    """The individual on whose behalf the call is made (CONVENTIONS.md, Credentials)."""
    if raw is None:
        return ctx.principal.individual_id
    try:
        individual_id = parse_uuid(raw)
    except ValueError as exc:
        raise invalid_parameter("individual-id", "must be a UUID") from exc
    if ctx.principal.is_individual and individual_id != ctx.principal.individual_id:
        raise forbidden("an individual token may act only as its own individual")
    return individual_id
