"""The templates screen (issue 18, screen 9): each template rendered per channel with sample
data, for a sample patient of the organization, including what a sensitive template leaves on
a lock screen and in a text; and **Send yourself a test**, which is ``POST /v1/multicasts/``
to the signed-in person (a personal login's person, or whom "I am" names for a key).

The reply box's ``/`` picker uses the same rendering: the organization's templates by name
(those needing no data) and one of them rendered for the conversation's patient.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import PlainTextResponse, Response

from courier.console import queries
from courier.console.actions import create, may, readable, refusal_of, spec_named
from courier.console.routes import (
    _checked_post,
    _error,
    _page,
    _shell,
    _signed,
    _to_sign_in,
    _uuid,
    context_of,
    unit,
)
from courier.console.sessions import Signed
from courier.core.errors import ApiError
from courier.domains.templates.render import (
    SAMPLE_RECIPIENT,
    DataError,
    RenderError,
    render,
    sample_data,
)
from courier.domains.templates.service import recipient_for
from courier.jsonapi.context import Context
from courier.jsonapi.resource import Op
from courier.models.template import Template

router = APIRouter(include_in_schema=False)
TEMPLATES = "templates"
MULTICASTS = "multicasts"
SHOWN = 200
PUSH_NAMES = {"apn": "iOS push", "fcm": "Android push", "web": "Browser push"}
PICKED = 20  # templates the reply box's picker lists at once


async def _template(ctx: Context, ident: uuid.UUID | None) -> Template | None:
    if ident is None:
        return None
    stmt = readable(ctx, TEMPLATES, Op.GET).where(Template.id == ident)
    found: Template | None = (await ctx.session.execute(stmt)).scalar_one_or_none()
    return found


async def previews(ctx: Context, template: Template) -> tuple[dict[str, Any], str | None]:
    """The template rendered per channel with sample data, for a sample patient of this
    organization (its name, time zone and locale); or why it does not render."""
    own = await recipient_for(ctx.session, ctx.organization_id, None, None)
    recipient = dataclasses.replace(own, individual=SAMPLE_RECIPIENT.individual)
    try:
        rendered = render(template, None, sample_data(template.required_data or {}), recipient)
    except (DataError, RenderError, ValueError) as error:
        return {}, str(error)
    return rendered, None


async def _detail(
    request: Request, session: AsyncSession, signed: Signed, template: Template, **extra: Any
) -> dict[str, Any]:
    ctx = context_of(request, session, signed)
    rendered, problem = await previews(ctx, template)
    me = signed.principal.individual_id or signed.row.acting_individual_id
    return await _shell(
        request,
        session,
        signed,
        nav="templates",
        template=template,
        rendered=rendered,
        render_problem=problem,
        samples=sample_data(template.required_data or {}),
        push_names=PUSH_NAMES,
        can_test=may(ctx, MULTICASTS, Op.CREATE),
        me=me,
        **extra,
    )


@router.get("/console/templates")
async def template_list(request: Request) -> Response:
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        ctx = context_of(request, session, signed)
        stmt = readable(ctx, TEMPLATES).order_by(Template.name, Template.id).limit(SHOWN)
        rows = list((await session.execute(stmt)).scalars())
        page = await _shell(request, session, signed, nav="templates", templates=rows)
        return _page("templates.html", page)


@router.get("/console/templates/{template_id}")
async def template_detail(request: Request, template_id: str) -> Response:
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        template = await _template(context_of(request, session, signed), _uuid(template_id))
        if template is None:
            return _error(request, "No such template.", 404)
        return _page("template.html", await _detail(request, session, signed, template))


@router.post("/console/templates/{template_id}/test")
async def send_test(request: Request, template_id: str) -> Response:
    """``POST /v1/multicasts/`` of this template with its sample data, to yourself."""
    async with unit(request) as session:
        signed, _form, refused = await _checked_post(request, session)
        if refused is not None:
            return refused
        assert signed is not None
        ctx = context_of(request, session, signed)
        template = await _template(ctx, _uuid(template_id))
        if template is None:
            return _error(request, "No such template.", 404)
        me = signed.principal.individual_id or signed.row.acting_individual_id
        if me is None:
            # Permission first: a readonly key learns nothing more than a 403.
            try:
                ctx.principal.require(spec_named(MULTICASTS).permission(Op.CREATE))
            except ApiError as error:
                return _error(request, str(error), error.status)
            page = await _detail(
                request,
                session,
                signed,
                template,
                problem="Choose who you are in the inbox "
                "(I am) first: the test goes to that person.",
            )
            return _page("template.html", page, 422)
        attributes = {
            "filter-type": "individuals",
            "filter-value": {"individual-ids": [str(me)]},
            "template-id": str(template.id),
            "data": sample_data(template.required_data or {}),
        }
        try:
            await create(ctx, MULTICASTS, attributes)
        except ApiError as error:
            await session.rollback()
            if error.status == 403:
                return _error(request, str(error), 403)
            problem, status = str(error), error.status
        except ValidationError as error:
            await session.rollback()
            problem, status = refusal_of(error), 400
        else:
            page = await _detail(request, session, signed, template, sent=True)
            return _page("template.html", page)
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        template = await _template(context_of(request, session, signed), _uuid(template_id))
        assert template is not None
        page = await _detail(request, session, signed, template, problem=problem)
        return _page("template.html", page, status)


# --- the reply box's "/" picker ----------------------------------------------------------------


def reply_text(rendered: dict[str, Any]) -> str:
    """What a template puts in a reply: the full text the app shows (else the text message's,
    else the email's)."""
    for channel, part in (("app", "body"), ("sms", "body"), ("email", "text")):
        text = rendered.get(channel, {}).get(part)
        if isinstance(text, str) and text:
            return text
    return ""


@router.get("/console/conversations/{channel_id}/templates")
async def template_options(request: Request, channel_id: str) -> Response:
    """The picker's options: the organization's templates that need no data, whose name
    contains ``q`` (case-insensitive), by name (at most 20)."""
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        ctx = context_of(request, session, signed)
        ident = _uuid(channel_id)
        found = await queries.channel_of(session, ctx.organization_id, ident) if ident else None
        if found is None:
            return _error(request, "No such conversation.", 404)
        wanted = " ".join(request.query_params.get("q", "").split())[:100].casefold()
        stmt = readable(ctx, TEMPLATES).order_by(Template.name, Template.id)
        rows = [
            t
            for t in (await session.execute(stmt)).scalars()
            if not t.required_data and wanted in t.name.casefold()
        ][:PICKED]
        return _page(
            "_template_options.html", {"request": request, "options": rows, "channel": found}
        )


@router.get("/console/conversations/{channel_id}/templates/{template_id}")
async def template_for_patient(request: Request, channel_id: str, template_id: str) -> Response:
    """A template rendered for the conversation's patient (their name, time zone, the
    organization's locale): the text the picker puts in the reply box (text/plain)."""
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        ctx = context_of(request, session, signed)
        ident = _uuid(channel_id)
        found = await queries.conversation(session, ctx.organization_id, ident) if ident else None
        if found is None or found.patient is None:
            return PlainTextResponse("No such conversation.", status_code=404)
        template = await _template(ctx, _uuid(template_id))
        if template is None:
            return PlainTextResponse("No such template.", status_code=404)
        if template.required_data:
            keys = ", ".join(sorted(template.required_data))
            return PlainTextResponse(f"This template needs data ({keys}).", status_code=422)
        recipient = await recipient_for(session, ctx.organization_id, None, found.patient)
        try:
            rendered = render(template, found.patient.locale, {}, recipient)
        except (DataError, RenderError, ValueError) as error:
            return PlainTextResponse(str(error), status_code=422)
        return PlainTextResponse(reply_text(rendered))
