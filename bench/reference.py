"""The hand-written reference of ``bench/messaging.py --reference`` (issue 17, point 6).

The same message post and newest-100 read as Courier's, on Courier's own schema and database,
written directly with Starlette, asyncpg and orjson: what the work costs without Courier's
machinery (FastAPI, pydantic, SQLAlchemy, middleware). Kept honest: it runs the statements a
post needs and Courier runs too, in one transaction:

post (``POST /v1/messaging-messages/``, the seed's body, a staff key posting for a subscriber)
    1. the API key by its secret's hash (revoked or expired: 401);
    2. the author's membership of the channel (not a subscriber: 422) and the channel's
       organization;
    3. the author's user (``user-id`` of the message);
    4. ``UPDATE messaging_channels SET last_seq = last_seq + 1 ... RETURNING last_seq``;
    5. ``INSERT`` the message;
    6. the author's read horizon moves to the new message;
    7. the audit row;
    8. the event ``messaging-messages.created`` (``RETURNING seq``);
    9. ``pg_notify`` for the organization's live streams;

newest (``GET /v1/messaging-messages/?channel-id=…&individual-id=…&page[limit]=100``)
    1. the API key; 2. the reader's membership; 3. the newest 101 messages (one more: is there
    a next page); 4. their reactions; 5. their attachments (ready ones) — rendered to JSON:API
    with orjson.

newest in SQL (``GET /in-sql/messaging-messages/?…``, the same parameters): the same read as
one statement, PostgreSQL building the whole JSON document: not an implementation of the
endpoint (no reader's horizon, authors' names or links), a measure of how far the read goes on
this machine when PostgreSQL does all the work (``bench/messaging.py --scenarios
newest-in-sql``).

Run by ``bench/messaging.py`` as ``uvicorn bench.reference:app`` with
``COURIER_REFERENCE_DSN`` (a ``postgresql://`` URL of the loaded database). PostgreSQL only.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

POOL_SIZE = 16  # as Courier's request_concurrency per process
MESSAGES = "messaging-messages"


def _json(status: int, document: Any) -> Response:
    return Response(orjson.dumps(document), status, media_type="application/vnd.api+json")


def _error(status: int, detail: str) -> Response:
    return _json(status, {"errors": [{"status": str(status), "detail": detail}]})


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _secret_hash(request: Request) -> str | None:
    """The hash of the bearer secret (how api_keys keeps it), or None without one."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret:
        return None
    return hashlib.sha256(secret.strip().encode()).hexdigest()


def _page_asked(request: Request) -> tuple[uuid.UUID, uuid.UUID, int] | None:
    """The newest read's channel, reader and page size, or None when they are not given."""
    try:
        channel = uuid.UUID(request.query_params["channel-id"])
        reader = uuid.UUID(request.query_params["individual-id"])
        limit = min(int(request.query_params.get("page[limit]", "50")), 100)
    except (KeyError, ValueError):
        return None
    return channel, reader, limit


async def _key(conn: asyncpg.Connection, request: Request) -> asyncpg.Record | None:
    digest = _secret_hash(request)
    if digest is None:
        return None
    key: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, organization_id, role FROM api_keys WHERE secret_hash = $1"
        " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
        digest,
    )
    return key


async def _subscribes(
    conn: asyncpg.Connection, org: uuid.UUID, channel: uuid.UUID, individual: uuid.UUID
) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM messaging_subscribers WHERE organization_id = $1"
        " AND channel_id = $2 AND individual_id = $3",
        org,
        channel,
        individual,
    )
    return found is not None


def _message(row: dict[str, Any], reactions: list[Any], attachments: list[Any]) -> dict[str, Any]:
    return {
        "type": MESSAGES,
        "id": str(row["id"]),
        "attributes": {
            "channel-id": str(row["channel_id"]),
            "seq": row["seq"],
            "individual-id": str(row["individual_id"]) if row["individual_id"] else None,
            "user-id": str(row["user_id"]) if row["user_id"] else None,
            "message": row["message"],
            "draft": row["draft"],
            "removed": row["removed"],
            "source": row["source"],
            "posted-time": _time(row["posted_time"]),
            "created-at": _time(row["created_at"]),
            "last-modified-at": _time(row["last_modified_at"]),
            "sentiment": row["sentiment"],
            "phrases": row["phrases"],
            "analyzed": row["analyzed"],
            "reactions": reactions,
            "attachments": attachments,
        },
    }


async def post_message(request: Request) -> Response:
    try:
        attributes = orjson.loads(await request.body())["data"]["attributes"]
        channel = uuid.UUID(attributes["channel-id"])
        author = uuid.UUID(attributes["individual-id"])
        text = str(attributes["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return _error(400, "a message needs channel-id, individual-id and message")
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        key = await _key(conn, request)
        if key is None:
            return _error(401, "unknown API key")
        org = key["organization_id"]
        if not await _subscribes(conn, org, channel, author):
            return _error(422, "the individual does not subscribe to the channel")
        user = await conn.fetchval(
            "SELECT id FROM users WHERE organization_id = $1 AND primary_individual_id = $2"
            " ORDER BY created_at, id LIMIT 1",
            org,
            author,
        )
        ident = uuid.uuid4()
        now = datetime.now(UTC)
        seq = await conn.fetchval(
            "UPDATE messaging_channels SET last_seq = last_seq + 1, last_message_id = $3,"
            " last_message_at = $4, last_modified_at = $4"
            " WHERE organization_id = $1 AND id = $2 RETURNING last_seq",
            org,
            channel,
            ident,
            now,
        )
        await conn.execute(
            "INSERT INTO messaging_messages (id, organization_id, channel_id, seq,"
            " individual_id, user_id, message, draft, removed, source, destination,"
            " posted_time, created_at, last_modified_at, phrases, analyzed)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, false, false, 'api', '[]', $8, $8, $8,"
            " '[]', false)",
            ident,
            org,
            channel,
            seq,
            author,
            user,
            text,
            now,
        )
        await conn.execute(
            "UPDATE messaging_subscribers SET ack_seq = $4, ack_message_id = $5, ack_time = $6"
            " WHERE organization_id = $1 AND channel_id = $2 AND individual_id = $3"
            " AND ack_seq < $4",
            org,
            channel,
            author,
            seq,
            ident,
            now,
        )
        await conn.execute(
            "INSERT INTO audit_events (id, organization_id, occurred_at, actor_type, actor_id,"
            " action, resource_type, resource_id, changed_fields)"
            " VALUES ($1, $2, $3, 'api-key', $4, 'created', $5, $6, $7)",
            uuid.uuid4(),
            org,
            now,
            str(key["id"]),
            MESSAGES,
            ident,
            orjson.dumps({"fields": ["channel-id", "individual-id", "message"]}).decode(),
        )
        event_seq = await conn.fetchval(
            "INSERT INTO events (id, organization_id, type, resource_type, resource_id,"
            " individual_ids, data, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " RETURNING seq",
            uuid.uuid4(),
            org,
            f"{MESSAGES}.created",
            MESSAGES,
            ident,
            orjson.dumps([str(author)]).decode(),
            orjson.dumps({"channel-id": str(channel), "seq": seq}).decode(),
            now,
        )
        await conn.execute("SELECT pg_notify('courier_events', $1)", f"{org}:{event_seq}")
    row = {
        "id": ident,
        "channel_id": channel,
        "seq": seq,
        "individual_id": author,
        "user_id": user,
        "message": text,
        "draft": False,
        "removed": False,
        "source": "api",
        "posted_time": now,
        "created_at": now,
        "last_modified_at": now,
        "sentiment": None,
        "phrases": [],
        "analyzed": False,
    }
    return _json(201, {"data": _message(row, [], [])})


async def newest_messages(request: Request) -> Response:
    asked = _page_asked(request)
    if asked is None:
        return _error(400, "channel-id and individual-id are required")
    channel, reader, limit = asked
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        key = await _key(conn, request)
        if key is None:
            return _error(401, "unknown API key")
        org = key["organization_id"]
        if not await _subscribes(conn, org, channel, reader):
            return _error(404, "no such channel")
        rows = await conn.fetch(
            "SELECT id, channel_id, seq, individual_id, user_id, message, draft, removed,"
            " source, posted_time, created_at, last_modified_at, sentiment, phrases, analyzed"
            " FROM messaging_messages WHERE organization_id = $1 AND channel_id = $2"
            " AND NOT draft ORDER BY seq DESC LIMIT $3",
            org,
            channel,
            limit + 1,
        )
        page = rows[:limit]
        ids = [row["id"] for row in page]
        reactions = await conn.fetch(
            "SELECT message_id, individual_id, reaction_type FROM messaging_reactions"
            " WHERE organization_id = $1 AND message_id = ANY($2::uuid[])"
            " ORDER BY created_at, id",
            org,
            ids,
        )
        attachments = await conn.fetch(
            "SELECT message_id, id, filename, content_type, content_size"
            " FROM messaging_attachments WHERE organization_id = $1"
            " AND message_id = ANY($2::uuid[]) AND status = 'ready' ORDER BY created_at, id",
            org,
            ids,
        )
    by_message: dict[uuid.UUID, list[Any]] = {}
    for reaction in reactions:
        by_message.setdefault(reaction["message_id"], []).append(
            {"individual-id": str(reaction["individual_id"]), "type": reaction["reaction_type"]}
        )
    files: dict[uuid.UUID, list[Any]] = {}
    for attachment in attachments:
        files.setdefault(attachment["message_id"], []).append(
            {
                "id": str(attachment["id"]),
                "filename": attachment["filename"],
                "content-type": attachment["content_type"],
                "size": attachment["content_size"],
            }
        )
    data = [
        _message(
            {**dict(row), "phrases": orjson.loads(row["phrases"])},
            by_message.get(row["id"], []),
            files.get(row["id"], []),
        )
        for row in page
    ]
    document: dict[str, Any] = {"data": data, "links": {}}
    if len(rows) > limit:
        document["links"]["next"] = f"{request.url.path}?page[after]={page[-1]['seq']}"
    return _json(200, document)


# The newest-100 read with every step in one statement, PostgreSQL building the document's
# JSON (``json_agg``), the server passing it on (asyncpg hands over the text, encoded once
# more): no framework, no decoding of rows, no rendering, one round trip. Not a way to serve
# Courier (it skips what Courier answers with: the reader's horizon, authors' names,
# pagination links); it measures how far the read can go on this machine when PostgreSQL does
# all of it (``bench/messaging.py --scenarios newest-in-sql``).
_TIME = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
NEWEST_IN_SQL = f"""
WITH key AS (
    SELECT organization_id FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL
    AND (expires_at IS NULL OR expires_at > now())
), member AS (
    SELECT 1 FROM messaging_subscribers s JOIN key ON s.organization_id = key.organization_id
    WHERE s.channel_id = $2 AND s.individual_id = $3
), page AS (
    SELECT m.* FROM messaging_messages m JOIN key ON m.organization_id = key.organization_id
    WHERE m.channel_id = $2 AND NOT m.draft AND EXISTS (SELECT 1 FROM member)
    ORDER BY m.seq DESC LIMIT $4
)
SELECT (SELECT count(*) FROM key), (SELECT count(*) FROM member),
json_build_object('data', coalesce(json_agg(
    json_build_object('type', 'messaging-messages', 'id', p.id, 'attributes', json_build_object(
        'channel-id', p.channel_id, 'seq', p.seq, 'individual-id', p.individual_id,
        'user-id', p.user_id, 'message', p.message, 'draft', p.draft, 'removed', p.removed,
        'source', p.source, 'posted-time', {_TIME.format("p.posted_time")},
        'created-at', {_TIME.format("p.created_at")},
        'last-modified-at', {_TIME.format("p.last_modified_at")},
        'sentiment', p.sentiment, 'phrases', p.phrases, 'analyzed', p.analyzed,
        'reactions', (
            SELECT coalesce(json_agg(json_build_object(
                'individual-id', r.individual_id, 'type', r.reaction_type
            ) ORDER BY r.created_at, r.id), '[]')
            FROM messaging_reactions r
            WHERE r.organization_id = p.organization_id AND r.message_id = p.id
        ),
        'attachments', (
            SELECT coalesce(json_agg(json_build_object(
                'id', a.id, 'filename', a.filename, 'content-type', a.content_type,
                'size', a.content_size
            ) ORDER BY a.created_at, a.id), '[]')
            FROM messaging_attachments a
            WHERE a.organization_id = p.organization_id AND a.message_id = p.id
            AND a.status = 'ready'
        )
    ))
    ORDER BY p.seq DESC
), '[]'), 'links', '{{}}'::json)::text
FROM page p
"""


async def newest_in_sql(request: Request) -> Response:
    asked = _page_asked(request)
    if asked is None:
        return _error(400, "channel-id and individual-id are required")
    channel, reader, limit = asked
    digest = _secret_hash(request)
    if digest is None:
        return _error(401, "unknown API key")
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        keys, members, body = await conn.fetchrow(NEWEST_IN_SQL, digest, channel, reader, limit)
    if not keys:
        return _error(401, "unknown API key")
    if not members:
        return _error(404, "no such channel")
    return Response(body.encode(), 200, media_type="application/vnd.api+json")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    dsn = os.environ["COURIER_REFERENCE_DSN"]
    app.state.pool = await asyncpg.create_pool(
        dsn, min_size=2, max_size=POOL_SIZE, server_settings={"jit": "off"}
    )
    try:
        yield
    finally:
        await app.state.pool.close()


async def ready(_request: Request) -> Response:
    return Response(b"ok")


app = Starlette(
    routes=[
        Route("/v1/messaging-messages/", post_message, methods=["POST"]),
        Route("/v1/messaging-messages/", newest_messages, methods=["GET"]),
        Route("/in-sql/messaging-messages/", newest_in_sql, methods=["GET"]),
        Route("/readyz", ready),
    ],
    lifespan=lifespan,
)
