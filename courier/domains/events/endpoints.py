"""``GET /v1/events/``: the organization's events as Server-Sent Events (see
:mod:`courier.events.stream` for how streams wake, read and resume)."""

import uuid

from fastapi import APIRouter, Depends, Request
from starlette.responses import StreamingResponse

from courier.core.auth import Permission
from courier.core.errors import ApiError, ErrorItem, invalid_parameter
from courier.core.http import accepts_event_stream
from courier.events.patterns import check_pattern
from courier.events.stream import EventStream, newest_seq
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.routes import ERROR_RESPONSES

router = APIRouter(tags=["operations"])


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


PARAMETERS = frozenset({"filter[type]", "last-event-id", "individual-id", "format"})
MAX_LAST_EVENT_ID = 2**63 - 1
# One event of the stream as its fields (the WHATWG event-stream format): ``id`` the event's
# seq, ``event`` its type, ``data`` the event document as JSON.
SSE_EVENT: dict[str, object] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
}


def _parse_last_event_id(raw: str | None) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_LAST_EVENT_ID:
        raise invalid_parameter("last-event-id", "must be the id: of an event of this stream")
    return value


def _last_event_id(request: Request) -> int | None:
    """Where to resume: the ``Last-Event-ID`` header (a reconnecting EventSource sends it),
    else the ``last-event-id`` parameter. Either, when given, must be an event id (400)."""
    parameter = _parse_last_event_id(request.query_params.get("last-event-id"))
    header = request.headers.get("last-event-id")
    return parameter if header is None else _parse_last_event_id(header)


def _types(request: Request) -> list[str] | None:
    raw = request.query_params.getlist("filter[type]")
    if not raw:
        return None
    try:
        return [check_pattern(part.strip()) for value in raw for part in value.split(",")]
    except ValueError as exc:
        raise invalid_parameter("filter[type]", str(exc)) from exc


@router.get(
    "/v1/events/",
    response_model=None,
    response_class=EventStreamResponse,
    summary="Server-Sent Events stream of changes the caller may see (Last-Event-ID resumes)",
    responses={
        200: {
            "description": "text/event-stream: `id: <seq>`, `event: <type>`, `data: <JSON>`",
            # Before OpenAPI 3.2 (itemSchema), a stream's schema describes each of its events.
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **ERROR_RESPONSES,
    },
    openapi_extra={
        "parameters": [
            {
                "name": "filter[type]",
                "in": "query",
                "description": "Comma-separated event types, resource types or prefixes "
                "ending in * (api-keys.created, api-keys, messaging-*)",
                "schema": {
                    "type": "string",
                    "pattern": r"^\s*(?:[a-z0-9][a-z0-9.-]*\*?|\*)\s*"
                    r"(?:,\s*(?:[a-z0-9][a-z0-9.-]*\*?|\*)\s*)*$",
                },
            },
            {
                "name": "last-event-id",
                "in": "query",
                "description": "Resume after this event id (as the Last-Event-ID header does)",
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": "Last-Event-ID",
                "in": "header",
                "description": "Resume after this event id: the events since are replayed "
                "(24 hours at most), then the stream goes on live",
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": "individual-id",
                "in": "query",
                "description": "Only the events that concern this individual (an individual "
                "token always sees only its own)",
                "schema": {"type": "string", "format": "uuid"},
            },
        ]
    },
    operation_id="stream-v1-events",
)
async def stream_events(
    request: Request, ctx: Context = Depends(context_dependency(Permission.READ))
) -> EventStreamResponse:
    """Each event is sent as `id: <seq>`, `event: <type>` and one `data:` line of JSON:
    `{"id": <event uuid>, "type", "resource-type", "resource-id", "occurred-at", "data"}`.

    An API key (any role) receives every event of its organization; an individual access
    token only the events that concern its individual. A comment (`: keep-alive`) is sent
    when the stream has been quiet for a while. On reconnection the browser's EventSource
    sends `Last-Event-ID`, and the events committed since are replayed before the stream
    goes on live. Events carry ids only: read the resource for its contents."""
    unknown = sorted(set(request.query_params) - PARAMETERS)
    if unknown:
        raise ApiError(
            400,
            [
                ErrorItem(
                    f"{name} is not a parameter of this endpoint", "unknown-parameter", None, name
                )
                for name in unknown
            ],
            {},
            True,
        )
    if not accepts_event_stream(request.headers.get("accept")):
        raise ApiError(
            406, [ErrorItem("this endpoint answers only text/event-stream", "not-acceptable")]
        )
    types = _types(request)
    last_event_id = _last_event_id(request)
    if last_event_id is None:
        # From now on, taken before the response starts: once a client sees the response
        # (EventSource's "open"), nothing committed after that is missed.
        last_event_id = await newest_seq(ctx.session, ctx.organization_id)
    individual_id: uuid.UUID | None = ctx.acting_individual_id
    stream = EventStream(
        database=request.app.state.database,
        settings=ctx.settings,
        hub=request.app.state.event_hub,
        organization_id=ctx.organization_id,
        authorization=request.headers.get("authorization", ""),
        individual_id=individual_id,
        types=types,
        last_event_id=last_event_id,
    )
    return EventStreamResponse(
        stream.messages(),
        headers={
            "Cache-Control": "no-cache, no-store",
            "X-Accel-Buffering": "no",  # proxies must pass each event on at once
        },
    )
