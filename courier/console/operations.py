"""The operator screens of the console (docs/CONSOLE.md): **Calls** (each voice line's queue
and agents; staff join or leave as agents), today's **Visits** (with Join inside the join
window), **Escalations** (with Acknowledge) and the **Delivery log** (filters, a send's history,
Retry where the API allows it).

Every action is the API operation it stands for, through :mod:`courier.console.actions`: the
same permission check (403 whatever the page rendered), the same service, the same audit rows
and events. A readonly key sees no control.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from courier.console import operations_queries as ops
from courier.console.actions import action_named, create, may, run_action
from courier.console.error_codes import plain_words
from courier.console.queries import provider_individuals
from courier.console.routes import (
    Loader,
    _checked_post,
    _context,
    _error,
    _is_htmx,
    _page,
    _refusal,
    _screen,
    _shell,
    _signed,
    _to_sign_in,
    _uuid,
    templates,
    unit,
)
from courier.console.sessions import Signed
from courier.core.errors import ApiError, conflict, forbidden, not_found
from courier.core.time import utcnow
from courier.domains.video.service import join_url
from courier.jsonapi.context import Context
from courier.jsonapi.resource import Op

router = APIRouter(include_in_schema=False)


def waited(since: datetime | None, now: datetime | None = None) -> str:
    """A wait as a clock reads it (``4:05``, ``1:02:03``); the page's script keeps it
    ticking from the ``datetime`` attribute."""
    if since is None:
        return ""
    seconds = max(0, int(((now or utcnow()) - since).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def local(moment: datetime | None, zone: ZoneInfo, pattern: str = "%H:%M") -> str:
    return moment.astimezone(zone).strftime(pattern) if moment is not None else ""


templates.env.filters["waited"] = waited
templates.env.filters["local"] = local

AGENTS = "voice-queue-agents"
VISITS = "video-channels"
NOTIFICATIONS = "user-notifications"
JOBS = "jobs"


def may_act(ctx: Context, type_name: str, name: str, method: str = "POST") -> bool:
    """Whether the principal holds the permission the API declares for this action."""
    return ctx.principal.can(action_named(type_name, name, method).permission)


def _action_refusal(request: Request, message: str, status: int) -> Response:
    """The API's refusal: a page, or for htmx the reason in the screen's alert."""
    return _refusal(request, message, status, "action-error")


# An action: what to show with the refreshed screen ({"notice": ..., and e.g. "token"}).
Action = Callable[[Context, dict[str, str]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Screen:
    """Where an action's result shows: the screen's loader, its page (under ``nav``) and
    the fragment htmx swaps in."""

    load: Loader
    page: str
    fragment: str
    nav: str


async def _act(request: Request, act: Action, screen: Screen) -> Response:
    """A console action: session, CSRF, the API operation (its refusal shown with its
    status), then the screen again with what the action has to show: its fragment (htmx;
    the notice goes out of band, outside what live updates refresh) or the whole page."""
    async with unit(request) as session:
        signed, form, refused = await _checked_post(request, session)
        if refused is not None:
            return refused
        assert signed is not None
        ctx = _context(request, session, signed)
        try:
            shown = await act(ctx, form)
        except ApiError as error:
            await session.rollback()
            return _action_refusal(request, str(error), error.status)
        except ValidationError as error:
            await session.rollback()
            return _action_refusal(request, _validation_message(error), 400)
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        values = {**await screen.load(session, signed), **shown}
        if not _is_htmx(request):
            page = await _shell(request, session, signed, nav=screen.nav, **values)
            return _page(screen.page, page)
    return _page(screen.fragment, {"request": request, "oob": True, **values})


def _on_one(
    raw_id: str, what: str, type_name: str, name: str, notice: str, method: str = "POST"
) -> Action:
    """An action of the API on the one resource the path names (404 for an id that is not
    one), then ``notice``."""

    async def act(ctx: Context, form: dict[str, str]) -> dict[str, Any]:
        ident = _uuid(raw_id)
        if ident is None:
            raise not_found(what)
        await run_action(ctx, type_name, name, ident, method=method)
        return {"notice": notice}

    return act


def _validation_message(error: ValidationError) -> str:
    problems = error.errors()
    if not problems:
        return "The request is not valid."
    first = problems[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    return f"{where}: {first.get('msg', 'not valid')}" if where else str(first.get("msg"))


# --- Calls -------------------------------------------------------------------------------------


def _calls(request: Request) -> Loader:
    async def load(session: AsyncSession, signed: Signed) -> dict[str, Any]:
        org = signed.principal.require_organization()
        ctx = _context(request, session, signed)
        return {
            "lines": await ops.call_queues(session, org),
            "can_join": may(ctx, AGENTS, Op.CREATE),
            "can_leave": may_act(ctx, AGENTS, "", "DELETE"),
            "team": await provider_individuals(session, org),
            "acting": signed.row.acting_individual_id,
            "csrf_token": signed.csrf_token,
        }

    return load


def _calls_screen(request: Request) -> Screen:
    return Screen(_calls(request), "calls.html", "_calls.html", "calls")


@router.get("/console/calls")
async def calls(request: Request) -> Response:
    return await _screen(request, _calls(request), "calls.html", "calls")


@router.get("/console/calls/lines")
async def call_lines(request: Request) -> Response:
    return await _screen(request, _calls(request), "_calls.html", None)


@router.post("/console/calls/join")
async def join_queue(request: Request) -> Response:
    """``POST /v1/voice-queue-agents/``: a care-team member joins the line's queue, by
    browser (the answer's access token is shown once) or by phone."""

    async def act(ctx: Context, form: dict[str, str]) -> dict[str, Any]:
        by_phone = form.get("by") == "phone"
        attributes: dict[str, Any] = {"setting-id": form.get("line", ""), "use-pstn": by_phone}
        person = form.get("individual-id") or ""
        if person:
            attributes["individual-id"] = person
        if by_phone and form.get("phone-number", "").strip():
            attributes["phone-number"] = form["phone-number"].strip()
        created = await create(ctx, AGENTS, attributes)
        agent, revealed = created.obj, dict(created.revealed)
        if by_phone:
            return {"notice": f"Joined by phone: callers are put through to {agent.phone_number}."}
        return {
            "notice": f"Joined by browser as {agent.identity}.",
            "token": revealed.get("access-token"),
        }

    return await _act(request, act, _calls_screen(request))


@router.post("/console/calls/agents/{agent_id}/leave")
async def leave_queue(request: Request, agent_id: str) -> Response:
    """``DELETE /v1/voice-queue-agents/{id}/``: the agent leaves the queue."""

    act = _on_one(agent_id, "voice queue agent", AGENTS, "", "The agent left the queue.", "DELETE")
    return await _act(request, act, _calls_screen(request))


# --- Today's visits ----------------------------------------------------------------------------


def _visits(request: Request) -> Loader:
    async def load(session: AsyncSession, signed: Signed) -> dict[str, Any]:
        org = signed.principal.require_organization()
        visits, zone = await ops.todays_visits(session, org, utcnow())
        ctx = _context(request, session, signed)
        return {
            "visits": visits,
            "zone": zone,
            "can_join": may_act(ctx, VISITS, "get-credentials", "GET"),
            "csrf_token": signed.csrf_token,
        }

    return load


@router.get("/console/visits")
async def visits(request: Request) -> Response:
    return await _screen(request, _visits(request), "visits.html", "visits")


@router.get("/console/visits/list")
async def visits_list(request: Request) -> Response:
    return await _screen(request, _visits(request), "_visits.html", None)


@router.post("/console/visits/{visit_id}/join")
async def join_visit(request: Request, visit_id: str) -> Response:
    """``GET /v1/video-channels/{id}/get-credentials/`` with ``individual-id``: the acting
    care-team member (or the visit's first care-team participant) gets the credentials to
    join, within the join window (409 otherwise, with the API's reason)."""
    ident = _uuid(visit_id)
    async with unit(request) as session:
        missing = None if ident else "No such visit."
        signed, _form, refused = await _checked_post(request, session, unknown=missing)
        if refused is not None:
            return refused
        assert signed is not None and ident is not None
        org = signed.principal.require_organization()
        ctx = _context(request, session, signed)
        who = await ops.visit_participant(session, org, ident, signed.row.acting_individual_id)
        try:
            ctx.principal.require(action_named(VISITS, "get-credentials", "GET").permission)
            if who is None:
                raise forbidden("only the visit's participants get its credentials")
            ctx.acting_individual_id = who
            credentials = await run_action(ctx, VISITS, "get-credentials", ident, method="GET")
        except ApiError as error:
            await session.rollback()
            return _error(request, str(error), error.status)
        page = await _shell(
            request,
            session,
            signed,
            nav="visits",
            credentials=credentials,
            join_url=join_url(ctx.settings, ident),
        )
    return _page("visit_join.html", page)


# --- Escalations -------------------------------------------------------------------------------


def _escalations(request: Request) -> Loader:
    async def load(session: AsyncSession, signed: Signed) -> dict[str, Any]:
        org = signed.principal.require_organization()
        zone = await ops.organization_zone(session, org)
        ctx = _context(request, session, signed)
        return {
            "escalations": await ops.escalations(session, org),
            "zone": zone,
            "can_ack": may_act(ctx, NOTIFICATIONS, "ack"),
            "csrf_token": signed.csrf_token,
        }

    return load


@router.get("/console/escalations")
async def escalations(request: Request) -> Response:
    return await _screen(request, _escalations(request), "escalations.html", "escalations")


@router.get("/console/escalations/list")
async def escalations_list(request: Request) -> Response:
    return await _screen(request, _escalations(request), "_escalations.html", None)


@router.post("/console/escalations/{notification_id}/ack")
async def acknowledge(request: Request, notification_id: str) -> Response:
    """``POST /v1/user-notifications/{id}/ack/``: the ladder stops."""

    notice = "Acknowledged: the escalation stopped."
    act = _on_one(notification_id, "user notification", NOTIFICATIONS, "ack", notice)
    screen = Screen(_escalations(request), "escalations.html", "_escalations.html", "escalations")
    return await _act(request, act, screen)


# --- Delivery log ------------------------------------------------------------------------------


def _log_filter(request: Request) -> tuple[ops.LogFilter, list[str]]:
    """The log's filters from the query; what was not understood is named, not guessed."""
    params = request.query_params
    problems: list[str] = []
    chosen = ops.LogFilter()
    channel = params.get("channel") or None
    if channel is not None and channel not in ops.CHANNELS:
        problems.append(f"unknown channel: {channel}")
    else:
        chosen.channel = channel
    status = params.get("status") or None
    if status is not None and status not in (*ops.STATUSES, "failures"):
        problems.append(f"unknown status: {status}")
    else:
        chosen.status = status
    period = params.get("period") or "7d"
    if period not in (*ops.PERIODS, "all"):
        problems.append(f"unknown period: {period}")
    else:
        chosen.period = period
    for name in ("template", "patient"):
        raw = (params.get(name) or "").strip()
        if raw:
            ident = _uuid(raw)
            if ident is None:
                problems.append(f"{name} must be an id (a UUID)")
            else:
                setattr(chosen, name, ident)
    return chosen, problems


def _log(chosen: ops.LogFilter, problems: list[str]) -> Loader:

    async def load(session: AsyncSession, signed: Signed) -> dict[str, Any]:
        org = signed.principal.require_organization()
        zone = await ops.organization_zone(session, org)
        total, rows = await ops.delivery_log(session, org, utcnow(), chosen)
        return {
            "total": total,
            "deliveries": rows,
            "zone": zone,
            "chosen": chosen,
            "problems": problems,
            "channels": ops.CHANNELS,
            "statuses": ops.STATUSES,
            "periods": ops.PERIODS,
            "plain_words": plain_words,
        }

    return load


@router.get("/console/deliveries")
async def deliveries(request: Request) -> Response:
    chosen, problems = _log_filter(request)
    response = await _screen(request, _log(chosen, problems), "deliveries.html", "deliveries")
    if problems and response.status_code == 200:
        response.status_code = 400  # the page still renders, naming what was not understood
    return response


@router.get("/console/deliveries/list")
async def deliveries_list(request: Request) -> Response:
    return await _screen(request, _log(*_log_filter(request)), "_deliveries.html", None)


def _detail(request: Request, ident: uuid.UUID) -> Loader:
    async def load(session: AsyncSession, signed: Signed) -> dict[str, Any]:
        org = signed.principal.require_organization()
        ctx = _context(request, session, signed)
        return {
            "detail": await ops.delivery_detail(session, org, ident),
            "zone": await ops.organization_zone(session, org),
            "can_retry": may_act(ctx, JOBS, "retry"),
            "plain_words": plain_words,
            "csrf_token": signed.csrf_token,
        }

    return load


@router.get("/console/deliveries/{delivery_id}")
async def delivery(request: Request, delivery_id: str) -> Response:
    """One send: its state history, vendor id, error in plain words, and Retry where the
    API allows it."""
    ident = _uuid(delivery_id)
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        values = await _detail(request, ident)(session, signed) if ident else {"detail": None}
        if values["detail"] is None:
            return _error(request, "No such send.", 404)
        page = await _shell(request, session, signed, nav="deliveries", **values)
    return _page("delivery.html", page)


@router.get("/console/deliveries/{delivery_id}/detail")
async def delivery_fragment(request: Request, delivery_id: str) -> Response:
    ident = _uuid(delivery_id)
    if ident is None:
        return _error(request, "No such send.", 404)
    return await _screen(request, _detail(request, ident), "_delivery_detail.html", None)


@router.post("/console/deliveries/{delivery_id}/retry")
async def retry(request: Request, delivery_id: str) -> Response:
    """``POST /v1/jobs/{id}/retry/`` on the send's failed job: sent again with fresh
    attempts (admin). A send whose job did not fail has nothing to retry (409)."""
    ident = _uuid(delivery_id)

    async def act(ctx: Context, form: dict[str, str]) -> dict[str, Any]:
        detail = (
            await ops.delivery_detail(ctx.session, ctx.organization_id, ident) if ident else None
        )
        if detail is None:
            raise not_found("delivery")
        if detail.failed_job is None:
            raise conflict(
                "this send has no failed send job: the API offers no retry for it",
                "nothing-to-retry",
            )
        await run_action(ctx, JOBS, "retry", detail.failed_job.id)
        return {"notice": "The send was queued again."}

    loader = _detail(request, ident or uuid.UUID(int=0))
    screen = Screen(loader, "delivery.html", "_delivery_detail.html", "deliveries")
    return await _act(request, act, screen)
