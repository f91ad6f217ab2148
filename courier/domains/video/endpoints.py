"""``GET /video/join/<visit>/<individual>``: the appless join link (``links.py``). Not an API
operation: it takes no credentials but its own signature, and answers the credentials a
browser client passes to the video engine's SDK."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from courier.config import Settings
from courier.core.db import commit
from courier.core.errors import ApiError, ErrorItem, not_found
from courier.core.time import utcnow
from courier.domains.video.links import JOIN_PREFIX, valid
from courier.domains.video.repository import load_visit_of_link
from courier.domains.video.service import issue_credentials

router = APIRouter()


def _refused() -> ApiError:
    return ApiError(
        401,
        [ErrorItem("the join link is not valid or has expired", "invalid-join-link")],
    )


@router.get(JOIN_PREFIX + "/{visit_id}/{individual_id}", include_in_schema=False)
async def join(visit_id: str, individual_id: str, request: Request) -> JSONResponse:
    """The credentials of an appless participant, for a link Courier signed."""
    settings: Settings = request.app.state.settings
    try:
        visit_ident, individual = uuid.UUID(visit_id), uuid.UUID(individual_id)
        expires = int(request.query_params.get("expires", ""))
    except ValueError as exc:
        raise not_found("join link") from exc
    given = request.query_params.get("sig", "")
    if not valid(settings, visit_ident, individual, expires, given, utcnow()):
        raise _refused()
    async with request.app.state.database.sessionmaker() as session:
        visit = await load_visit_of_link(session, visit_ident)
        if visit is None or not visit.appless:
            raise not_found("video channel")
        credentials = await issue_credentials(session, settings, visit, individual)
        await commit(session)
    return JSONResponse(credentials.model_dump(mode="json", by_alias=True))
