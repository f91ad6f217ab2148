"""The console's patient timeline (issue 18, screen 4): everything Courier did with one patient
(messages, texts, emails, notifications, calls, visits, consent changes) in one list, newest
first. Reading it needs the API's read permission on individuals, and every view writes an
audit row (``individuals`` ``viewed-timeline``, by the session's principal: a personal login
names its person).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from courier.console import patients, queries
from courier.console.actions import spec_named
from courier.console.routes import (
    _error,
    _page,
    _shell,
    _signed,
    _to_sign_in,
    _uuid,
    context_of,
    unit,
)
from courier.core.errors import ApiError
from courier.jsonapi.changes import change, record_changes
from courier.jsonapi.resource import Op

router = APIRouter(include_in_schema=False)
INDIVIDUALS = "individuals"
VIEWED = "viewed-timeline"


@router.get("/console/patients/{individual_id}/timeline")
async def timeline(request: Request, individual_id: str) -> Response:
    ident = _uuid(individual_id)
    async with unit(request) as session:
        signed = await _signed(request, session)
        if signed is None:
            return _to_sign_in(request)
        ctx = context_of(request, session, signed)
        try:
            ctx.principal.require(spec_named(INDIVIDUALS).permission(Op.GET))
        except ApiError as error:
            return _error(request, str(error), error.status)
        org = ctx.organization_id
        person = await patients.patient(session, org, ident) if ident else None
        if person is None:
            return _error(request, "No such patient.", 404)
        entries = await patients.timeline(session, org, person)
        # Viewing a patient's record is audited (who looked, when); nothing is published.
        record_changes(ctx, [change(INDIVIDUALS, person.id, VIEWED, published=False)])
        values = {
            "person": person,
            "patient_name": queries.display_name(person),
            "entries": entries,
            "kinds": sorted({e.kind for e in entries}),
        }
        return _page("timeline.html", await _shell(request, session, signed, nav="inbox", **values))
