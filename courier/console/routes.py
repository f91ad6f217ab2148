"""The console's pages, fragments and actions, mounted at ``/console/`` (docs/CONSOLE.md).

Pages render whole documents; fragments (``.../list``, ``.../tiles``, ``.../messages``) render
the part a live hint re-fetches. A fragment fetched because of a live hint carries ``live=1``
and is not counted as the person's activity (the inactivity timeout keeps running).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.templating import Jinja2Templates

from courier.config import Settings
from courier.console import patients, queries
from courier.console.actions import MESSAGES, may, post_message, run_action, spec_named
from courier.console.sessions import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    DRAFT_MAX,
    PRE_COOKIE,
    RESUME_COOKIE,
    Signed,
    carry_over,
    clear_cookie,
    csrf_ok,
    find_session,
    forget_draft,
    key_by_secret,
    lock_with_draft,
    lockable_path,
    new_pre_token,
    open_session,
    set_cookie,
    take_draft,
    user_by_password,
)
from courier.console.sessions import sign_out as end_session
from courier.console.stream import ConsoleStream
from courier.core.db import Database, commit
from courier.core.errors import ApiError
from courier.events.stream import newest_seq
from courier.jsonapi.context import Context
from courier.jsonapi.resource import Op
from courier.providers.common import load_provider_kinds

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

TABS = ("mine", "unread", "all")
SIGN_IN = "/console/sign-in"
PRE_COOKIE_SECONDS = 600


@asynccontextmanager
async def unit(request: Request) -> AsyncIterator[AsyncSession]:
    """One database session for a console request, committed once at the end."""
    database: Database = request.app.state.database
    async with database.request_turn(), database.sessionmaker() as session:
        try:
            yield session
            await commit(session)
        except BaseException:
            await session.rollback()
            raise


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _may_be_a_page(request: Request, live: bool) -> bool:
    """Whether the answer may be a whole page: a browser's navigation or form POST (it
    accepts HTML), not htmx's fragments, live refreshes or the scripts' fetches (ping,
    lock), which ask for no position."""
    if live or _is_htmx(request):
        return False
    return "text/html" in request.headers.get("accept", "")


def _to_sign_in(request: Request) -> Response:
    """Not signed in (or no longer): htmx is told to load the sign-in page, a browser is
    redirected there."""
    if _is_htmx(request):
        response: Response = Response(status_code=401, headers={"HX-Redirect": SIGN_IN})
    else:
        response = RedirectResponse(SIGN_IN, status_code=303)
    clear_cookie(response, request)
    return response


def _context(request: Request, session: AsyncSession, signed: Signed) -> Context:
    ctx = Context(session, signed.principal, _settings(request), request, request.state.request_id)
    # A key acts on behalf of whom each action names; a personal login as its own person.
    ctx.acting_individual_id = signed.principal.individual_id
    return ctx


def context_of(request: Request, session: AsyncSession, signed: Signed) -> Context:
    """The API context of a console request: the session's principal, as the API builds it."""
    return _context(request, session, signed)


def _sandboxed(settings: Settings) -> list[str]:
    return sorted(kind.name for kind in load_provider_kinds() if kind.is_sandbox(settings))


async def _shell(
    request: Request, session: AsyncSession, signed: Signed, **values: Any
) -> dict[str, Any]:
    settings = _settings(request)
    principal = signed.principal
    return {
        "request": request,
        "organization": await queries.organization_name(session, principal.require_organization()),
        "sandboxed": _sandboxed(settings),
        "role": principal.role.value if principal.role else "",
        "person": await queries.person_name(session, principal),
        "csrf_token": signed.csrf_token,
        "idle_minutes": signed.idle_seconds // 60,
        "idle_seconds": signed.idle_seconds,
        # The unsent reply this page had when it locked (once, after signing in again).
        "draft": take_draft(signed, settings, request.url.path),
        "live_after": getattr(request.state, "live_after", None),
        **values,
    }


def _page(name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    request: Request = context["request"]
    return templates.TemplateResponse(request, name, context, status_code=status)


def _forbidden(request: Request, message: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "error.html", {"request": request, "message": message}, status_code=403
    )


async def _signed(request: Request, session: AsyncSession, *, touch: bool = True) -> Signed | None:
    """The request's live session (None: sign in again). Like an API request, it spends the
    key's rate-limit budget (429 past it)."""
    live = request.query_params.get("live") == "1"
    signed = await find_session(
        session, _settings(request), request.cookies.get(COOKIE), touch=touch and not live
    )
    limiter = getattr(request.app.state, "rate_limiter", None)
    if signed is not None and limiter is not None:
        await limiter.hook(request, signed.principal)
    organization_id = signed.principal.organization_id if signed is not None else None
    if organization_id is not None and _may_be_a_page(request, live):
        # Where the page's live stream starts (base.html), read before what the page shows,
        # so that whatever happens after what it shows is hinted (on PostgreSQL each
        # statement sees its own snapshot; read after, an event between would be lost).
        request.state.live_after = await newest_seq(session, organization_id)
    return signed


async def _checked_post(
    request: Request, session: AsyncSession, *, unknown: str | None = None, touch: bool = True
) -> tuple[Signed | None, dict[str, str], Response | None]:
    """A state-changing request: the session (else sign-in), then its CSRF token (else 403);
    with ``unknown`` (the path's id is not one), then a 404 saying so."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    signed = await _signed(request, session, touch=touch)
    if signed is None:
        return None, form, _to_sign_in(request)
    given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not csrf_ok(signed, given):
        return signed, form, _forbidden(request, "The request's CSRF token is missing or wrong.")
    if unknown is not None:
        return signed, form, _error(request, unknown, 404)
    return signed, form, None


# --- sign in and out ---------------------------------------------------------------------------


@router.get("/console")
async def console_bare() -> Response:
    return RedirectResponse("/console/", status_code=308)


@router.get("/console/")
async def console_home(request: Request) -> Response:
    async with unit(request) as session:
        signed = await _signed(request, session)
    return RedirectResponse("/console/today" if signed else SIGN_IN, status_code=303)


def _sign_in_page(request: Request, error: str | None, status: int) -> Response:
    token = new_pre_token()
    response = templates.TemplateResponse(
        request,
        "sign_in.html",
        {
            "request": request,
            "error": error,
            "signin_token": token,
            "locked": request.query_params.get("locked") == "1",
        },
        status_code=status,
    )
    set_cookie(response, request, PRE_COOKIE, token, PRE_COOKIE_SECONDS)
    return response


@router.get("/console/sign-in")
async def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request, None, 200)


@router.post("/console/sign-in")
async def sign_in(request: Request) -> Response:
    """An API key, or a personal login's user name and password, becomes a session."""
    form = await request.form()
    secret = form.get("api-key")
    username = form.get("username")
    password = form.get("password")
    given = form.get("signin-token")
    expected = request.cookies.get(PRE_COOKIE)
    if not isinstance(given, str) or not expected or given != expected:
        return _forbidden(request, "The sign-in form has expired; reload it and try again.")
    personal = isinstance(username, str) and bool(username.strip())
    if personal:
        if not isinstance(password, str) or not password:
            return _sign_in_page(request, "Enter your password.", 400)
    elif not isinstance(secret, str) or not secret.strip():
        return _sign_in_page(request, "Enter your user name and password, or an API key.", 400)
    async with unit(request) as session:
        signer: Any
        if personal:
            assert isinstance(username, str) and isinstance(password, str)
            signer = await user_by_password(session, username, password)
            refusal = "This user name and password do not match an active login."
        else:
            assert isinstance(secret, str)
            signer = await key_by_secret(session, secret)
            refusal = "This API key is unknown, revoked or expired."
        if signer is None:
            return _sign_in_page(request, refusal, 401)
        token, row = await open_session(session, signer, request.cookies.get(COOKIE))
        back = await carry_over(session, request.cookies.get(RESUME_COOKIE), signer, row)
    response = RedirectResponse(back or "/console/today", status_code=303)
    set_cookie(response, request, COOKIE, token, 12 * 3600)
    clear_cookie(response, request, PRE_COOKIE)
    clear_cookie(response, request, RESUME_COOKIE)
    return response


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    async with unit(request) as session:
        signed, _form, refused = await _checked_post(request, session)
        if refused is not None:
            return refused
        assert signed is not None
        end_session(signed.row)
    response: Response = RedirectResponse(SIGN_IN, status_code=303)
    if _is_htmx(request):
        response = Response(status_code=204, headers={"HX-Redirect": SIGN_IN})
    clear_cookie(response, request)
    return response


@router.post("/console/lock")
async def lock(request: Request) -> Response:
    """The page locks for inactivity: it sends its ``path`` and unsent reply (``draft``) first.
    The session ends now (this is not activity); the browser keeps only the session's random
    token in a second cookie, so that signing in again as the same key or login reopens
    ``path`` with the draft. 204; 400 for a path that is not a console page or a draft
    longer than the limit."""
    async with unit(request) as session:
        signed, form, refused = await _checked_post(request, session, touch=False)
        if refused is not None:
            return refused
        assert signed is not None
        path = form.get("path", "")
        draft = form.get("draft", "")
        if not lockable_path(path):
            return _error(request, "path must be a console page (/console/...).", 400)
        if len(draft) > DRAFT_MAX:
            return _error(request, f"draft must be at most {DRAFT_MAX} characters.", 400)
        lock_with_draft(signed, _settings(request), path, draft)
    response = Response(status_code=204)
    set_cookie(response, request, RESUME_COOKIE, request.cookies.get(COOKIE, ""), 12 * 3600)
    clear_cookie(response, request)
    return response


@router.get("/console/ping")
async def ping(request: Request) -> Response:
    """The person is here ("Stay signed in", or typing): counts as activity. 204, or 401 with
    ``HX-Redirect`` once the session has ended."""
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request) if _is_htmx(request) else Response(status_code=401)
    return Response(status_code=204)


# --- Today -------------------------------------------------------------------------------------


Loader = Callable[[AsyncSession, Signed], Awaitable[dict[str, Any]]]


async def _screen(request: Request, load: Loader, template: str, nav: str | None) -> Response:
    """A signed-in screen: the whole page in the shell (under ``nav``) or, with no ``nav``,
    the fragment that a live update re-fetches."""
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        values = await load(session, signed)
        if nav is not None:
            return _page(template, await _shell(request, session, signed, nav=nav, **values))
    return _page(template, {"request": request, **values})


async def _tiles(session: AsyncSession, signed: Signed) -> dict[str, Any]:
    return {"tiles": await queries.tiles(session, signed.principal.require_organization())}


@router.get("/console/today")
async def today(request: Request) -> Response:
    return await _screen(request, _tiles, "today.html", nav="today")


@router.get("/console/today/tiles")
async def today_tiles(request: Request) -> Response:
    return await _screen(request, _tiles, "_tiles.html", nav=None)


# --- Inbox -------------------------------------------------------------------------------------


def _tab(request: Request) -> str:
    tab = request.query_params.get("tab", "all")
    return tab if tab in TABS else "all"


@dataclass(frozen=True)
class InboxFilter:
    """The inbox's care-team filter (a provider individual's conversations) and search (in
    the patient's display name, case-insensitive)."""

    tab: str
    member: uuid.UUID | None
    search: str

    @classmethod
    def of(cls, request: Request) -> InboxFilter:
        search = " ".join(request.query_params.get("q", "").split())[:100]
        return cls(_tab(request), _uuid(request.query_params.get("team")), search)

    def keeps(self, row: queries.InboxRow) -> bool:
        if self.member is not None and self.member not in row.team:
            return False
        return not self.search or self.search.casefold() in row.patient_name.casefold()

    def query(self, tab: str) -> str:
        """The query string of this filter on ``tab`` (links and live refreshes keep it)."""
        values = {"tab": tab, "team": str(self.member or ""), "q": self.search}
        return urlencode({k: v for k, v in values.items() if v})


def _inbox_values(rows: list[queries.InboxRow], chosen: InboxFilter) -> dict[str, Any]:
    rows = [r for r in rows if chosen.keeps(r)]
    counts = {
        "mine": sum(1 for r in rows if r.mine),
        "unread": sum(1 for r in rows if r.unread > 0),
        "all": len(rows),
    }
    shown = {
        "mine": [r for r in rows if r.mine],
        "unread": [r for r in rows if r.unread > 0],
        "all": rows,
    }[chosen.tab]
    return {"tab": chosen.tab, "counts": counts, "rows": shown, "tabs": TABS, "chosen": chosen}


def _inbox(chosen: InboxFilter, *, with_team: bool) -> Loader:
    async def load(session: AsyncSession, signed: Signed) -> dict[str, Any]:
        org = signed.principal.require_organization()
        rows = await queries.inbox_rows(session, org, signed.row.acting_individual_id)
        values = _inbox_values(rows, chosen)
        if with_team:
            values["team"] = await queries.provider_individuals(session, org)
            values["acting"] = signed.row.acting_individual_id
            values["personal"] = signed.user is not None
        return values

    return load


@router.get("/console/inbox")
async def inbox(request: Request) -> Response:
    chosen = InboxFilter.of(request)
    return await _screen(request, _inbox(chosen, with_team=True), "inbox.html", "inbox")


@router.get("/console/inbox/list")
async def inbox_list(request: Request) -> Response:
    chosen = InboxFilter.of(request)
    return await _screen(request, _inbox(chosen, with_team=False), "_inbox_list.html", None)


@router.post("/console/acting-as")
async def acting_as(request: Request) -> Response:
    """Who "Mine" means, and the default author of replies: a care-team member (a provider
    individual of the organization), kept in the session. Empty: nobody."""
    async with unit(request) as session:
        signed, form, refused = await _checked_post(request, session)
        if refused is not None:
            return refused
        assert signed is not None
        if signed.user is not None:
            return _error(request, "A personal login always acts as its own person.", 422)
        org = signed.principal.require_organization()
        chosen = _uuid(form.get("individual-id"))
        team = {p.id for p in await queries.provider_individuals(session, org)}
        if chosen is not None and chosen not in team:
            return _error(request, "Choose a member of the care team.", 422)
        signed.row.acting_individual_id = chosen
    return RedirectResponse("/console/inbox?tab=mine", status_code=303)


# --- a conversation ----------------------------------------------------------------------------


def _uuid(raw: str | None) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _error(request: Request, message: str, status: int) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "error.html", {"request": request, "message": message}, status_code=status
    )


async def _conversation_values(
    request: Request, session: AsyncSession, signed: Signed, channel_id: uuid.UUID
) -> dict[str, Any] | None:
    org = signed.principal.require_organization()
    found = await queries.conversation(session, org, channel_id)
    if found is None or found.patient is None:
        return None
    ctx = _context(request, session, signed)
    blocked = await patients.sms_block(session, org, found.channel)
    if found.channel.with_sms:
        texted = await patients.sms_states(
            session, org, [m.id for m in found.messages if not m.from_patient]
        )
        for m in found.messages:
            m.sms = texted.get(m.id, "")
    return {
        "conversation": found,
        "patient_name": queries.display_name(found.patient),
        "panel": await patients.panel(session, org, found.patient, found.channel.id),
        "blocked": blocked,
        "can_send": may(ctx, MESSAGES, Op.CREATE) and not found.channel.archived and not blocked,
        "acting": signed.row.acting_individual_id,
        "personal": signed.user is not None,
        "can_mark_read": may(ctx, MESSAGES, Op.CREATE)
        and (signed.principal.individual_id or signed.row.acting_individual_id)
        in {p.id for p in found.team}
        and any(m.state == "unread" for m in found.messages),
    }


def _refusal(request: Request, message: str, status: int, alert: str) -> HTMLResponse:
    """The API's refusal, with its status: a page, or for htmx the reason in the alert whose
    id is ``alert`` (``HX-Retarget``), the form left as it was."""
    if not _is_htmx(request):
        return _error(request, message, status)
    return templates.TemplateResponse(
        request,
        "_error_fragment.html",
        {"request": request, "message": message},
        status_code=status,
        headers={"HX-Retarget": f"#{alert}", "HX-Reswap": "innerHTML"},
    )


def _reply_error(request: Request, message: str, status: int) -> HTMLResponse:
    """A refused reply: the reason in the form's alert, the draft left as it was."""
    return _refusal(request, message, status, "reply-error")


async def _conversation(request: Request, channel_id: str, *, whole_page: bool) -> Response:
    """A conversation: the whole page, or only its messages (the fragment live updates fetch)."""
    ident = _uuid(channel_id)
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        values = await _conversation_values(request, session, signed, ident) if ident else None
        if values is None:
            return _error(request, "No such conversation.", 404)
        if whole_page:
            page = await _shell(request, session, signed, nav="inbox", **values)
            return _page("conversation.html", page)
    return _page("_messages.html", {"request": request, **values})


@router.get("/console/conversations/{channel_id}")
async def conversation_page(request: Request, channel_id: str) -> Response:
    return await _conversation(request, channel_id, whole_page=True)


@router.get("/console/conversations/{channel_id}/messages")
async def conversation_messages(request: Request, channel_id: str) -> Response:
    return await _conversation(request, channel_id, whole_page=False)


@router.post("/console/conversations/{channel_id}/reply")
async def reply(request: Request, channel_id: str) -> Response:
    """``POST /v1/messaging-messages/`` on behalf of the chosen care-team member."""
    ident = _uuid(channel_id)
    async with unit(request) as session:
        missing = None if ident else "No such conversation."
        signed, form, refused = await _checked_post(request, session, unknown=missing)
        if refused is not None:
            return refused
        assert signed is not None and ident is not None
        author = _uuid(form.get("individual-id")) or signed.row.acting_individual_id
        if signed.user is not None:
            author = signed.user.individual_id  # a personal login replies as its person
        if author is None:
            return _reply_error(request, "Choose who replies.", 422)
        ctx = _context(request, session, signed)
        org = signed.principal.require_organization()
        try:
            ctx.principal.require(spec_named(MESSAGES).permission(Op.CREATE))
            channel = await queries.channel_of(session, org, ident)
            blocked = await patients.sms_block(session, org, channel) if channel else None
            if blocked:
                return _reply_error(request, blocked, 422)
            await post_message(ctx, ident, author, form.get("message", ""))
            forget_draft(signed.row)  # sent: a kept draft is stale
        except ApiError as error:
            await session.rollback()
            return _reply_error(request, str(error), error.status)
        except ValidationError:
            await session.rollback()
            return _reply_error(request, "The reply is not valid.", 400)
    if _is_htmx(request):
        async with unit(request) as session:
            signed = await _signed(request, session)
            if signed is None:
                return _to_sign_in(request)
            values = await _conversation_values(request, session, signed, ident)
        return _page("_messages.html", {"request": request, **(values or {})})
    return RedirectResponse(f"/console/conversations/{ident}", status_code=303)


@router.post("/console/conversations/{channel_id}/read")
async def mark_read(request: Request, channel_id: str) -> Response:
    """``POST /v1/messaging-messages/{last}/ack/`` for the person the session acts as: the
    conversation is read up to its last message, in that person's name."""
    ident = _uuid(channel_id)
    async with unit(request) as session:
        missing = None if ident else "No such conversation."
        signed, _form, refused = await _checked_post(request, session, unknown=missing)
        if refused is not None:
            return refused
        assert signed is not None and ident is not None
        ctx = _context(request, session, signed)
        reader = signed.principal.individual_id or signed.row.acting_individual_id
        try:
            ctx.principal.require(spec_named(MESSAGES).permission(Op.CREATE))
            if reader is None:
                return _reply_error(request, "Choose who you are (I am) first.", 422)
            last = await queries.last_message_id(session, ctx.organization_id, ident)
            if last is None:
                return _error(request, "No such conversation.", 404)
            await run_action(ctx, MESSAGES, "ack", last, {"individual-id": str(reader)})
        except ApiError as error:
            await session.rollback()
            return _reply_error(request, str(error), error.status)
    return RedirectResponse(f"/console/conversations/{ident}", status_code=303)


# --- live hints --------------------------------------------------------------------------------


def _resume_id(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


@router.get("/console/events")
async def events(request: Request) -> Response:
    cookie = request.cookies.get(COOKIE, "")
    async with unit(request) as session:
        signed = await find_session(session, _settings(request), cookie, touch=False)
        if signed is None:
            return Response(status_code=401)
        org = signed.principal.require_organization()
        # Where the stream starts: the browser's Last-Event-ID when it reconnects; else the
        # position the page was rendered at (``after``, base.html), so what happened between
        # the render and this request is hinted too; else now, taken before the response
        # starts, so that the browser's "open" (the console's "Live") means from here on
        # nothing is missed.
        start = _resume_id(request.headers.get("last-event-id", ""))
        if start is None:
            start = _resume_id(request.query_params.get("after", ""))
        if start is None:
            start = await newest_seq(session, org)
    stream = ConsoleStream(
        database=request.app.state.database,
        settings=_settings(request),
        hub=request.app.state.event_hub,
        organization_id=org,
        authorization="",
        last_event_id=start,
        cookie=cookie,
    )
    return StreamingResponse(
        stream.hints(),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )
