"""The admin screen (issue 18, screen 10): API keys, personal console logins, webhooks with
their recent deliveries, jobs and the audit log. Admin role only: the navigation shows it to
admins, and every route answers 403 to anyone else, whatever the page rendered.

Reads are the API's reads (``GET /v1/<type>/``'s rows and permission, :func:`readable`);
changes are the API's operations (:func:`create`, :func:`delete`).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from courier.console import queries
from courier.console.actions import create, delete, readable, refusal_of
from courier.console.routes import (
    _checked_post,
    _forbidden,
    _page,
    _shell,
    _signed,
    _to_sign_in,
    _uuid,
    context_of,
    unit,
)
from courier.console.sessions import Signed
from courier.core.auth import Permission
from courier.core.errors import ApiError, not_found
from courier.domains.webhooks.service import do_get_deliveries
from courier.jsonapi.context import Context
from courier.models.api_key import ApiKey
from courier.models.audit_event import AuditEvent
from courier.models.console_user import ConsoleUser
from courier.models.job import Job
from courier.models.webhook import Webhook, WebhookDelivery

router = APIRouter(include_in_schema=False)
ADMIN = "/console/admin"
SHOWN = 50  # rows of each list (the newest)
DELIVERIES_SHOWN = 5  # recent deliveries per webhook
ROLES = ("readonly", "staff", "admin")


def is_admin(signed: Signed) -> bool:
    return signed.principal.can(Permission.MANAGE)


async def _rows(ctx: Context, type_name: str, order: Any, limit: int = SHOWN) -> list[Any]:
    stmt = readable(ctx, type_name).order_by(*order).limit(limit)
    return list((await ctx.session.execute(stmt)).scalars())


async def admin_values(ctx: Context) -> dict[str, Any]:
    session = ctx.session
    org = ctx.organization_id
    keys = await _rows(ctx, "api-keys", (ApiKey.created_at.desc(), ApiKey.id))
    users = await _rows(ctx, "console-users", (ConsoleUser.username_key, ConsoleUser.id))
    team = await queries.provider_individuals(session, org)
    names = {p.id: queries.display_name(p) for p in team}
    hooks = await _rows(ctx, "webhooks", (Webhook.created_at.desc(), Webhook.id))
    deliveries: dict[uuid.UUID, list[WebhookDelivery]] = {}
    for hook in hooks:
        stmt = (await do_get_deliveries(ctx, hook, None)).order_by(
            WebhookDelivery.attempted_at.desc(), WebhookDelivery.id
        )
        found = await session.execute(stmt.limit(DELIVERIES_SHOWN))
        deliveries[hook.id] = list(found.scalars())
    jobs = await _rows(ctx, "jobs", (Job.created_at.desc(), Job.id))
    audit = await _rows(ctx, "audit-events", (AuditEvent.occurred_at.desc(), AuditEvent.id))
    # The audit log names people by id: console logins name their individual.
    people = names | await queries.names_of(
        session, org, {_uuid(a.actor_id) for a in audit} - set(names) - {None}
    )
    return {
        "keys": keys,
        "users": users,
        "team": team,
        "names": names,
        "webhooks": hooks,
        "deliveries": deliveries,
        "jobs": jobs,
        "audit": audit,
        "people": {str(k): v for k, v in people.items()},
        "roles": ROLES,
    }


async def _admin_page(
    request: Request, session: AsyncSession, signed: Signed, status: int = 200, **extra: Any
) -> Response:
    ctx = context_of(request, session, signed)
    values = await admin_values(ctx)
    page = await _shell(request, session, signed, nav="admin", **values, **extra)
    return _page("admin.html", page, status)


@router.get(ADMIN)
async def admin(request: Request) -> Response:
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        if not is_admin(signed):
            return _forbidden(request, "The admin screen is for the admin role.")
        return await _admin_page(request, session, signed)


async def _change(request: Request, run: Any, *, done: str) -> Response:
    """A state-changing admin request: session, CSRF, admin, then the API operation ``run``;
    a refusal renders the admin page with the API's reason and status."""
    async with unit(request) as session:
        signed, form, refused = await _checked_post(request, session)
        if refused is not None:
            return refused
        assert signed is not None
        if not is_admin(signed):
            return _forbidden(request, "The admin screen is for the admin role.")
        ctx = context_of(request, session, signed)
        try:
            shown = await run(ctx, form)
        except ApiError as error:
            await session.rollback()
            problem, status = str(error), error.status
        except ValidationError as error:
            await session.rollback()
            problem, status = refusal_of(error), 400
        else:
            if shown is None:
                return RedirectResponse(f"{ADMIN}#{done}", status_code=303)
            return await _admin_page(request, session, signed, **shown)
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        return await _admin_page(request, session, signed, status, problem=problem, where=done)


@router.post(f"{ADMIN}/api-keys")
async def create_key(request: Request) -> Response:
    """``POST /v1/api-keys/``: the secret is on this page once, never again."""

    async def run(ctx: Context, form: dict[str, str]) -> dict[str, Any]:
        made = await create(
            ctx, "api-keys", {"name": form.get("name", ""), "role": form.get("role")}
        )
        return {"new_secret": made.revealed.get("secret"), "new_key": made.obj.name}

    return await _change(request, run, done="api-keys")


@router.post(ADMIN + "/api-keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    """``DELETE /v1/api-keys/{id}/``."""
    return await _revoke(request, "api-keys", key_id, "API key")


@router.post(f"{ADMIN}/console-users")
async def create_user(request: Request) -> Response:
    """``POST /v1/console-users/``: a personal login for a care-team member."""

    async def run(ctx: Context, form: dict[str, str]) -> dict[str, Any]:
        attributes = {
            "username": form.get("username", ""),
            "password": form.get("password", ""),
            "role": form.get("role"),
            "individual-id": form.get("individual-id") or None,
        }
        made = await create(ctx, "console-users", attributes)
        return {"new_user": made.obj.username}

    return await _change(request, run, done="console-users")


@router.post(ADMIN + "/console-users/{user_id}/revoke")
async def revoke_user(request: Request, user_id: str) -> Response:
    """``DELETE /v1/console-users/{id}/``."""
    return await _revoke(request, "console-users", user_id, "console user")


async def _revoke(request: Request, type_name: str, raw_id: str, what: str) -> Response:
    """A revoke button of the admin screen: the API's delete, shown at its section."""

    async def run(ctx: Context, form: dict[str, str]) -> None:
        await delete(ctx, type_name, _id(raw_id, what))

    return await _change(request, run, done=type_name)


def _id(raw: str, what: str) -> uuid.UUID:
    ident = _uuid(raw)
    if ident is None:
        raise not_found(what)
    return ident
