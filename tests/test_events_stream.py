"""GET /v1/events/: Server-Sent Events over a real socket (uvicorn in the test's event loop).

The ASGI test transport buffers whole responses, so streams are read from a real server that
serves an app of this module (a short heartbeat) on the test database; events are caused
through the session's app, as another request of the same process would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from courier.app import create_app
from courier.core.db import commit
from courier.events import publish, write_events
from courier.events.stream import Cursor, EventStream, PostgresListener, StreamHub
from tests.conftest import MASTER, Org, doc, make_settings
from tests.factories import individual_token, make_individual_id

DEADLINE = 30.0


# --- helpers (also used by the two-replica test) ---------------------------------------------


@dataclass
class ServerSentEvent:
    id: str | None
    event: str | None
    data: str

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.data)
        return parsed


@dataclass
class EventParser:
    """Turns the lines of a text/event-stream into events and comments (the SSE format)."""

    comments: list[str] = field(default_factory=list)
    _fields: dict[str, str] = field(default_factory=dict)
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> ServerSentEvent | None:
        if line == "":
            event = None
            if self._data:
                event = ServerSentEvent(
                    self._fields.get("id"), self._fields.get("event"), "\n".join(self._data)
                )
            self._fields, self._data = {}, []
            return event
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        else:
            self._fields[name] = value
        return None

    def parse(self, lines: Iterable[str]) -> Iterable[ServerSentEvent]:
        for line in lines:
            event = self.feed(line)
            if event is not None:
                yield event


class StreamReader:
    """Reads one open stream: events in order, comments on the side."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.parser = EventParser()
        self._lines = response.aiter_lines()

    async def _line(self) -> str:
        return await anext(self._lines)

    async def wait_comment(self, text: str, deadline: float = DEADLINE) -> None:
        async def wait() -> None:
            while text not in self.parser.comments:
                event = self.parser.feed(await self._line())
                assert event is None, f"unexpected event before {text!r}: {event}"

        await asyncio.wait_for(wait(), deadline)

    async def next_event(self, deadline: float = DEADLINE) -> ServerSentEvent:
        async def wait() -> ServerSentEvent:
            while True:
                event = self.parser.feed(await self._line())
                if event is not None:
                    return event

        return await asyncio.wait_for(wait(), deadline)


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def open_stream(
    base: str, headers: dict[str, str], params: dict[str, str] | None = None
) -> AsyncIterator[StreamReader]:
    async with (
        httpx.AsyncClient(base_url=base, timeout=DEADLINE, trust_env=False) as http,
        http.stream(
            "GET",
            "/v1/events/",
            headers={"Accept": "text/event-stream", **headers},
            params=params,
        ) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = StreamReader(response)
        await reader.wait_comment("connected")
        yield reader


async def publish_events(
    app: Any, org_id: str, *events: tuple[str, str, Iterable[str]]
) -> list[str]:
    """Publish (resource type, verb, individual ids) events in one transaction; their ids."""
    idents = []
    async with app.state.database.sessionmaker() as session:
        for resource_type, verb, individuals in events:
            event = publish(
                session,
                organization_id=uuid.UUID(org_id),
                resource_type=resource_type,
                verb=verb,
                resource_id=uuid.uuid4(),
                individual_ids=[uuid.UUID(i) for i in individuals],
            )
            idents.append(str(event.id))
        await commit(session)
    return idents


async def wait_until(condition: Any, deadline: float = DEADLINE) -> None:
    stop = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < stop, "condition not met in time"
        await asyncio.sleep(0.05)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def stream_app(database_url: str, data_dir: Path) -> AsyncIterator[Any]:
    application = create_app(
        make_settings(database_url, data_dir, event_stream_heartbeat_seconds=1.0)
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def base(stream_app: Any) -> AsyncIterator[str]:
    async with serving(stream_app) as url:
        yield url


# --- tests -----------------------------------------------------------------------------------


async def test_api_key_receives_its_organizations_events(
    base: str, stream_app: Any, client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    async with open_stream(base, org.readonly) as stream:
        foreign = await client.post(
            "/v1/api-keys/",
            headers=other_org.admin,
            json=doc("api-keys", {"name": "x", "role": "staff"}),
        )
        assert foreign.status_code == 201
        created = await client.post(
            "/v1/api-keys/", headers=org.admin, json=doc("api-keys", {"name": "y", "role": "staff"})
        )
        assert created.status_code == 201
        key_id = created.json()["data"]["id"]
        event = await stream.next_event()
    assert event.event == "api-keys.created"
    assert event.id is not None and int(event.id) > 0
    body = event.json
    assert set(body) == {"id", "type", "resource-type", "resource-id", "occurred-at", "data"}
    uuid.UUID(body["id"])
    assert body["type"] == "api-keys.created"
    assert body["resource-type"] == "api-keys"
    assert body["resource-id"] == key_id
    assert body["occurred-at"].endswith("Z")
    assert body["data"] == {"id": key_id}
    # The client has gone: its stream ends and lets go of the hub.
    hub: StreamHub = stream_app.state.event_hub
    await wait_until(lambda: hub.streams(uuid.UUID(org.id)) == 0)


async def test_what_is_committed_once_the_response_has_started_is_sent(
    base: str, stream_app: Any, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream's position is taken when the request is answered, not when its body first
    reads: an event committed after the response headers (EventSource's "open") and before
    the stream's first read (here held back a second) is sent."""
    original = EventStream.start_cursor

    async def late(self: EventStream) -> Cursor:
        await asyncio.sleep(1.0)
        return await original(self)

    monkeypatch.setattr(EventStream, "start_cursor", late)
    async with (
        httpx.AsyncClient(base_url=base, timeout=DEADLINE, trust_env=False) as http,
        http.stream(
            "GET", "/v1/events/", headers={"Accept": "text/event-stream", **org.readonly}
        ) as response,
    ):
        assert response.status_code == 200
        (ident,) = await publish_events(stream_app, org.id, ("api-keys", "created", ()))
        reader = StreamReader(response)
        await reader.wait_comment("connected")
        event = await reader.next_event()
    assert event.json["id"] == ident


async def test_individual_token_sees_only_its_own_events(
    base: str, stream_app: Any, client: httpx.AsyncClient, org: Org
) -> None:
    alice = await make_individual_id(client, org)
    bob = await make_individual_id(client, org)
    token = {"Authorization": f"Bearer {await individual_token(client, org, alice)}"}
    async with open_stream(base, token) as stream:
        published = await publish_events(
            stream_app,
            org.id,
            ("care-notes", "created", [bob]),
            ("care-notes", "created", []),
            ("care-notes", "updated", [bob, alice]),
        )
        first = await stream.next_event()
        assert first.json["id"] == published[2]
        later = await publish_events(stream_app, org.id, ("care-notes", "deleted", [bob]))
        later += await publish_events(stream_app, org.id, ("care-notes", "deleted", [alice]))
        second = await stream.next_event()
        assert second.json["id"] == later[1]
    # A key may narrow its stream to one individual the same way.
    async with open_stream(base, org.readonly, {"individual-id": bob}) as stream:
        published = await publish_events(
            stream_app, org.id, ("care-notes", "created", [alice]), ("care-notes", "created", [bob])
        )
        assert (await stream.next_event()).json["id"] == published[1]
    # ... but a token may not ask for someone else's.
    refused = await client.get(f"/v1/events/?individual-id={bob}", headers=token)
    assert refused.status_code == 403


async def test_last_event_id_resumes_without_gaps_or_duplicates(
    base: str, stream_app: Any, org: Org
) -> None:
    params = {"filter[type]": "resume-checks"}
    async with open_stream(base, org.readonly, params) as stream:
        first = await publish_events(stream_app, org.id, ("resume-checks", "created", []))
        event = await stream.next_event()
        assert event.json["id"] == first[0]
        resume_at = event.id
    assert resume_at is not None
    missed = await publish_events(stream_app, org.id, ("resume-checks", "updated", []))
    missed += await publish_events(
        stream_app, org.id, ("resume-checks", "updated", []), ("resume-checks", "deleted", [])
    )
    received = []
    ids = []
    async with open_stream(base, {**org.readonly, "Last-Event-ID": resume_at}, params) as stream:
        for _ in missed:
            event = await stream.next_event()
            received.append(event.json["id"])
            ids.append(int(event.id or 0))
        live = await publish_events(stream_app, org.id, ("resume-checks", "created", []))
        event = await stream.next_event()
        received.append(event.json["id"])
        ids.append(int(event.id or 0))
    assert received == missed + live
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] > int(resume_at)
    # The query parameter works like the header (for clients that cannot set headers).
    async with open_stream(base, org.readonly, {**params, "last-event-id": str(ids[2])}) as stream:
        assert (await stream.next_event()).json["id"] == live[0]


async def test_type_filter_and_heartbeat(base: str, stream_app: Any, org: Org) -> None:
    params = {"filter[type]": "widgets.*,gadgets.deleted"}
    async with open_stream(base, org.readonly, params) as stream:
        published = await publish_events(
            stream_app,
            org.id,
            ("gadgets", "created", []),
            ("widgets", "updated", []),
            ("gadgets", "deleted", []),
        )
        assert (await stream.next_event()).json["id"] == published[1]
        assert (await stream.next_event()).json["id"] == published[2]
        await stream.wait_comment("keep-alive")  # the module's app beats every second


async def test_stream_ends_when_its_key_is_revoked(
    base: str, client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("courier.events.stream.REVALIDATE_SECONDS", 0.2)
    created = await client.post(
        "/v1/api-keys/", headers=org.admin, json=doc("api-keys", {"name": "tv", "role": "readonly"})
    )
    key = created.json()["data"]
    headers = {"Authorization": f"Bearer {key['attributes']['secret']}"}
    async with open_stream(base, headers, {"filter[type]": "quiet-things"}) as stream:
        revoked = await client.delete(f"/v1/api-keys/{key['id']}/", headers=org.admin)
        assert revoked.status_code == 200
        await stream.wait_comment("the credentials of this stream are no longer valid")
        with pytest.raises(StopAsyncIteration):
            await stream.next_event()


async def test_revocation_ends_streams_at_once_not_at_the_next_recheck(
    base: str, client: httpx.AsyncClient, org: Org
) -> None:
    """The periodic re-check stays at REVALIDATE_SECONDS (60 s); the revocation's own event
    ends the key's stream, and the stream of a token the key issued, within DEADLINE."""
    created = await client.post(
        "/v1/api-keys/", headers=org.admin, json=doc("api-keys", {"name": "tv", "role": "admin"})
    )
    key = created.json()["data"]
    headers = {"Authorization": f"Bearer {key['attributes']['secret']}"}
    patient = await make_individual_id(client, org)
    by_this_key = Org(org.id, headers, headers, headers, key["id"], key["attributes"]["secret"])
    token = {"Authorization": f"Bearer {await individual_token(client, by_this_key, patient)}"}
    async with open_stream(base, headers) as by_key, open_stream(base, token) as by_token:
        revoked = await client.delete(f"/v1/api-keys/{key['id']}/", headers=org.admin)
        assert revoked.status_code == 200
        for stream in (by_key, by_token):
            await stream.wait_comment("the credentials of this stream are no longer valid")
            with pytest.raises(StopAsyncIteration):
                await stream.next_event()


async def test_stream_refusals(client: httpx.AsyncClient, org: Org) -> None:
    anonymous = await client.get("/v1/events/", headers={"Accept": "text/event-stream"})
    assert anonymous.status_code == 401
    master = await client.get("/v1/events/", headers={**MASTER, "Accept": "text/event-stream"})
    assert master.status_code == 403
    json_only = await client.get("/v1/events/", headers={**org.readonly, "Accept": "text/csv"})
    assert json_only.status_code == 406
    assert json_only.json()["statusCode"] == 406
    bad_type = await client.get("/v1/events/?filter[type]=Not A Type", headers=org.readonly)
    assert bad_type.status_code == 400
    assert bad_type.json()["errors"][0]["source"] == {"parameter": "filter[type]"}
    bad_id = await client.get("/v1/events/", headers={**org.readonly, "Last-Event-ID": "yesterday"})
    assert bad_id.status_code == 400
    assert bad_id.json()["errors"][0]["source"] == {"parameter": "last-event-id"}
    # A malformed parameter is refused even beside a good header (which would take precedence).
    both = await client.get(
        "/v1/events/?last-event-id=0.5", headers={**org.readonly, "Last-Event-ID": "0"}
    )
    assert both.status_code == 400
    assert both.json()["errors"][0]["source"] == {"parameter": "last-event-id"}
    unknown = await client.get("/v1/events/?filter[colour]=red", headers=org.readonly)
    assert unknown.status_code == 400


async def test_late_commit_is_sent_once_with_the_resume_point(
    app: Any, org: Org, database_url: str
) -> None:
    """Two transactions commit out of seq order: the stream sends both, each once."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serializes writers: events commit in seq order there")
    database = app.state.database
    stream = EventStream(
        database=database,
        settings=app.state.settings,
        hub=StreamHub(),
        organization_id=uuid.UUID(org.id),
        authorization="",
    )
    cursor = await stream.start_cursor()
    async with database.sessionmaker() as slow:
        early = publish(
            slow,
            organization_id=uuid.UUID(org.id),
            resource_type="late-checks",
            verb="created",
            resource_id=None,
        )
        await write_events(slow)  # takes its seq now, commits later
        fast_ids = await publish_events(app, org.id, ("late-checks", "updated", []))
        first, _, _ = await stream.read(cursor)
        await commit(slow)
    second, _, _ = await stream.read(cursor)
    third, _, _ = await stream.read(cursor)
    events = list(EventParser().parse(b"".join(first + second).decode().split("\n")))
    assert [e.json["id"] for e in events] == [fast_ids[0], str(early.id)]
    # The late event carries the highest seq already sent: resuming from it skips nothing.
    assert events[0].id == events[1].id and int(events[1].id or 0) > early.seq
    assert third == []


def test_cursor_settles_behind_its_position() -> None:
    cursor = Cursor(10)
    for seq in (12, 11, 15):
        assert cursor.is_new(seq)
        cursor.note(seq)
    assert not cursor.is_new(12) and cursor.is_new(13) and cursor.position == 15
    cursor.settle(100.0)
    assert cursor.floor == 10  # a late 13 or 14 would still be sent
    cursor.settle(200.0)
    assert cursor.floor == 15 and cursor.seen == set()
    assert not cursor.is_new(13)


async def test_postgres_listener_wakes_streams(app: Any, org: Org, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    hub = StreamHub()  # not one of the apps' hubs: only a notification can wake it
    task = asyncio.create_task(PostgresListener(app.state.settings, hub).run())
    try:
        await wait_until(lambda: hub.listening)
        wake = hub.subscribe(uuid.UUID(org.id))
        await publish_events(app, org.id, ("notify-checks", "created", []))
        await asyncio.wait_for(wake.wait(), DEADLINE)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not hub.listening
