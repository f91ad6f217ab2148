"""Migration 0019_fanouts: bulk messages' own recipients and counters move onto the generic
fan-out (and back on downgrade), with their jobs, so a bulk message caught half-way by the
upgrade carries on.

Runs on a database of its own (a fresh SQLite file, or a fresh PostgreSQL database next to
``COURIER_TEST_DATABASE_URL``): migrated to the heads, taken back to before the revision,
filled as the old code left it, then upgraded again.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

import courier.domains.messaging_bulk.jobs  # noqa: F401  (registers the fan-out's jobs)
from courier.config import Settings
from courier.core.db import Database
from courier.core.migrate import alembic_config, upgrade
from courier.domains.messaging_bulk.fanout import BULK_MESSAGES
from courier.jobs import run_until_idle
from courier.models.fanout import Fanout, FanoutTarget
from courier.models.individual import Individual
from courier.models.job import Job
from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber
from courier.models.organization import Organization

BEFORE = "0012"  # bulk messages, as they were
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Seed:
    """The ids of what the old code left behind."""

    def __init__(self) -> None:
        self.org = uuid.uuid4()
        self.sender, self.r1, self.r2, self.r3 = (uuid.uuid4() for _ in range(4))
        self.channel, self.message = uuid.uuid4(), uuid.uuid4()
        # posted (r1 reached, r2 skipped), posting (r3 pending), queued, draft
        self.posted, self.posting, self.queued, self.draft = (uuid.uuid4() for _ in range(4))
        self.chunk_job, self.plan_job = uuid.uuid4(), uuid.uuid4()


JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
LEGACY = sa.MetaData()
LEGACY_BULK = sa.Table(
    "messaging_bulk_messages",
    LEGACY,
    sa.Column("id", sa.Uuid()),
    sa.Column("organization_id", sa.Uuid()),
    sa.Column("sender_individual_id", sa.Uuid()),
    sa.Column("actor_type", sa.String()),
    sa.Column("actor_id", sa.String()),
    sa.Column("message", sa.Text()),
    sa.Column("message_js", JSON),
    sa.Column("individual_ids", JSON),
    sa.Column("individual_group_ids", JSON),
    sa.Column("auto_create_channel", sa.Boolean()),
    sa.Column("auto_ack", sa.Boolean()),
    sa.Column("draft", sa.Boolean()),
    sa.Column("status", sa.String()),
    *(
        sa.Column(name, sa.Integer())
        for name in (
            "recipient_count",
            "posted_count",
            "skipped_count",
            "chunk_count",
            "chunks_done",
        )
    ),
    sa.Column("submitted_at", sa.DateTime(timezone=True)),
    sa.Column("posted_time", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("last_modified_at", sa.DateTime(timezone=True)),
)
LEGACY_RECIPIENTS = sa.Table(
    "bulk_message_recipients",
    LEGACY,
    sa.Column("organization_id", sa.Uuid()),
    sa.Column("bulk_message_id", sa.Uuid()),
    sa.Column("recipient_id", sa.Uuid()),
    sa.Column("chunk", sa.Integer()),
    sa.Column("text_key", sa.String()),
    sa.Column("status", sa.String()),
    sa.Column("skip_reason", sa.String()),
    sa.Column("channel_id", sa.Uuid()),
    sa.Column("message_id", sa.Uuid()),
    sa.Column("done_at", sa.DateTime(timezone=True)),
)


async def seed(url: str, ids: Seed) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.insert(Organization.__table__), [{"id": ids.org, "name": "Migrated"}]
            )
            await connection.execute(
                sa.insert(Individual.__table__),
                [
                    {
                        "id": ident,
                        "organization_id": ids.org,
                        "first_name": "Pat",
                        "last_name": name,
                        "account_type": "provider" if ident == ids.sender else "participant",
                        "extended": {},
                    }
                    for ident, name in (
                        (ids.sender, "Sender"),
                        (ids.r1, "One"),
                        (ids.r2, "Two"),
                        (ids.r3, "Three"),
                    )
                ],
            )
            await connection.execute(
                sa.insert(MessagingChannel.__table__),
                [
                    {
                        "id": ids.channel,
                        "organization_id": ids.org,
                        "event_settings": {"enabled": True},
                        "sms_initial_message_js": {},
                        "last_seq": 1,
                    }
                ],
            )
            await connection.execute(
                sa.insert(MessagingSubscriber.__table__),
                [
                    {
                        "organization_id": ids.org,
                        "channel_id": ids.channel,
                        "individual_id": person,
                        "preferences": {},
                    }
                    for person in (ids.sender, ids.r1)
                ],
            )
            await connection.execute(
                sa.insert(MessagingMessage.__table__),
                [
                    {
                        "id": ids.message,
                        "organization_id": ids.org,
                        "channel_id": ids.channel,
                        "seq": 1,
                        "individual_id": ids.sender,
                        "message": "Hola",
                        "source": "bulk-message",
                        "destination": {},
                        "phrases": {},
                        "posted_time": T0,
                        "bulk_message_id": ids.posted,
                    }
                ],
            )
            common = {
                "organization_id": ids.org,
                "sender_individual_id": ids.sender,
                "actor_type": "api-key",
                "actor_id": "key",
                "message": "The clinic is closed today",
                "message_js": {"es_US": "Hola"},
                "individual_group_ids": [],
                "auto_create_channel": False,
                "auto_ack": True,
                "created_at": T0,
                "last_modified_at": T0,
                "posted_time": None,
                "submitted_at": T0,
                "draft": False,
            }
            await connection.execute(
                sa.insert(LEGACY_BULK),
                [
                    {
                        **common,
                        "id": ids.posted,
                        "individual_ids": [str(ids.r1), str(ids.r2)],
                        "status": "posted",
                        "recipient_count": 2,
                        "posted_count": 1,
                        "skipped_count": 1,
                        "chunk_count": 1,
                        "chunks_done": 1,
                        "posted_time": T0 + timedelta(minutes=1),
                    },
                    {
                        **common,
                        "id": ids.posting,
                        "individual_ids": [str(ids.r3)],
                        "status": "posting",
                        "recipient_count": 1,
                        "posted_count": 0,
                        "skipped_count": 0,
                        "chunk_count": 1,
                        "chunks_done": 0,
                    },
                    {
                        **common,
                        "id": ids.queued,
                        "individual_ids": [str(ids.r1)],
                        "status": "queued",
                        "recipient_count": 0,
                        "posted_count": 0,
                        "skipped_count": 0,
                        "chunk_count": 0,
                        "chunks_done": 0,
                    },
                    {
                        **common,
                        "id": ids.draft,
                        "individual_ids": [str(ids.r1)],
                        "status": "draft",
                        "draft": True,
                        "submitted_at": None,
                        "recipient_count": 0,
                        "posted_count": 0,
                        "skipped_count": 0,
                        "chunk_count": 0,
                        "chunks_done": 0,
                    },
                ],
            )
            recipient = {"organization_id": ids.org, "chunk": 0, "channel_id": None}
            await connection.execute(
                sa.insert(LEGACY_RECIPIENTS),
                [
                    {
                        **recipient,
                        "bulk_message_id": ids.posted,
                        "recipient_id": ids.r1,
                        "text_key": "es_US",
                        "status": "posted",
                        "skip_reason": None,
                        "channel_id": ids.channel,
                        "message_id": ids.message,
                        "done_at": T0 + timedelta(minutes=1),
                    },
                    {
                        **recipient,
                        "bulk_message_id": ids.posted,
                        "recipient_id": ids.r2,
                        "text_key": None,
                        "status": "skipped",
                        "skip_reason": "no-direct-channel",
                        "message_id": None,
                        "done_at": T0 + timedelta(minutes=1),
                    },
                    {
                        **recipient,
                        "bulk_message_id": ids.posting,
                        "recipient_id": ids.r3,
                        "text_key": None,
                        "status": "pending",
                        "skip_reason": None,
                        "message_id": None,
                        "done_at": None,
                    },
                ],
            )
            job = {
                "organization_id": ids.org,
                "state": "queued",
                "priority": 0,
                "run_at": T0,
                "attempts": 0,
                "max_attempts": 8,
                "created_at": T0,
            }
            await connection.execute(
                sa.insert(Job.__table__),
                [
                    {
                        **job,
                        "id": ids.chunk_job,
                        "kind": "messaging-bulk-messages.post-chunk",
                        "payload": {"bulk_message_id": str(ids.posting), "chunk": 0},
                        "dedupe_key": f"messaging-bulk-messages.post-chunk:{ids.posting}:0",
                    },
                    {
                        **job,
                        "id": ids.plan_job,
                        "kind": "messaging-bulk-messages.plan",
                        "payload": {"bulk_message_id": str(ids.queued)},
                        "dedupe_key": f"messaging-bulk-messages.plan:{ids.queued}",
                    },
                ],
            )
    finally:
        await engine.dispose()


async def rows(url: str, stmt: Any) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(stmt)).mappings())
    finally:
        await engine.dispose()


async def columns_of(url: str, table: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: {c["name"] for c in sa.inspect(sync).get_columns(table)}
            )
    finally:
        await engine.dispose()


async def fanouts_by_subject(url: str) -> dict[uuid.UUID, Any]:
    found = await rows(url, sa.select(Fanout.__table__))
    return {uuid.UUID(str(row["subject_id"])): row for row in found}


async def targets_by_recipient(url: str) -> dict[uuid.UUID, Any]:
    found = await rows(url, sa.select(FanoutTarget.__table__))
    return {uuid.UUID(str(row["target_id"])): row for row in found}


async def jobs_by_id(url: str) -> dict[uuid.UUID, Any]:
    found = await rows(url, sa.select(Job.__table__))
    return {uuid.UUID(str(row["id"])): row for row in found}


async def carry_on(settings: Settings) -> None:
    database = Database(settings)
    try:
        kinds = [BULK_MESSAGES.plan_kind, BULK_MESSAGES.chunk_kind]
        await run_until_idle(database, settings, kinds=kinds)
    finally:
        await database.dispose()


def test_bulk_messages_move_onto_fanouts_and_back(fresh_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=fresh_url, data_dir=tmp_path, run_worker=False)
    upgrade(settings)
    command.downgrade(alembic_config(fresh_url), BEFORE)
    ids = Seed()
    asyncio.run(seed(fresh_url, ids))

    upgrade(settings)

    assert "recipient_count" not in asyncio.run(columns_of(fresh_url, "messaging_bulk_messages"))
    fanouts = asyncio.run(fanouts_by_subject(fresh_url))
    assert set(fanouts) == {ids.posted, ids.posting, ids.queued}  # a draft was never sent
    summary = {
        subject: (
            row["kind"],
            row["state"],
            row["target_count"],
            row["chunk_count"],
            row["chunks_done"],
            row["delivered_count"],
            row["skipped_count"],
        )
        for subject, row in fanouts.items()
    }
    assert summary == {
        ids.posted: ("messaging-bulk-messages", "settled", 2, 1, 1, 1, 1),
        ids.posting: ("messaging-bulk-messages", "running", 1, 1, 0, 0, 0),
        ids.queued: ("messaging-bulk-messages", "queued", 0, 0, 0, 0, 0),
    }
    assert fanouts[ids.posted]["settled_at"] is not None
    targets = asyncio.run(targets_by_recipient(fresh_url))
    assert set(targets) == {ids.r1, ids.r2, ids.r3}
    reached = targets[ids.r1]
    assert (reached["state"], reached["reason"], reached["data"], reached["outcome"]) == (
        "delivered",
        None,
        {"text-key": "es_US"},
        {"channel-id": str(ids.channel), "message-id": str(ids.message)},
    )
    assert (targets[ids.r2]["state"], targets[ids.r2]["reason"]) == ("skipped", "no-direct-channel")
    assert (targets[ids.r3]["state"], targets[ids.r3]["data"]) == ("pending", None)
    assert str(targets[ids.r3]["fanout_id"]) == str(fanouts[ids.posting]["id"])
    jobs = asyncio.run(jobs_by_id(fresh_url))
    chunk, plan = jobs[ids.chunk_job], jobs[ids.plan_job]
    assert (chunk["kind"], chunk["payload"], chunk["dedupe_key"]) == (
        "messaging-bulk-messages.chunk",
        {"fanout_id": str(fanouts[ids.posting]["id"]), "chunk": 0},
        f"messaging-bulk-messages.chunk:{ids.posting}:0",
    )
    assert (plan["kind"], plan["payload"], plan["dedupe_key"]) == (
        "messaging-bulk-messages.plan",
        {"fanout_id": str(fanouts[ids.queued]["id"])},
        f"messaging-bulk-messages.plan:{ids.queued}",
    )

    # The bulk messages caught half-way carry on: the posting one finishes its chunk, the
    # queued one is planned and posted.
    asyncio.run(carry_on(settings))
    fanouts = asyncio.run(fanouts_by_subject(fresh_url))
    assert {subject: row["state"] for subject, row in fanouts.items()} == dict.fromkeys(
        (ids.posted, ids.posting, ids.queued), "settled"
    )
    assert (fanouts[ids.posting]["skipped_count"], fanouts[ids.queued]["delivered_count"]) == (1, 1)
    statuses = asyncio.run(rows(fresh_url, sa.select(LEGACY_BULK.c.id, LEGACY_BULK.c.status)))
    assert {r["id"]: r["status"] for r in statuses} == {
        ids.posted: "posted",
        ids.posting: "posted",
        ids.queued: "posted",
        ids.draft: "draft",
    }

    # And back: the counters and recipients as the old code keeps them.
    command.downgrade(alembic_config(fresh_url), BEFORE)
    counters = ("recipient_count", "posted_count", "skipped_count", "chunk_count", "chunks_done")
    old = asyncio.run(rows(fresh_url, sa.select(LEGACY_BULK)))
    counts = {r["id"]: tuple(r[name] for name in counters) for r in old}
    assert counts == {
        ids.posted: (2, 1, 1, 1, 1),
        ids.posting: (1, 0, 1, 1, 1),
        ids.queued: (1, 1, 0, 1, 1),
        ids.draft: (0, 0, 0, 0, 0),
    }
    recipients = asyncio.run(rows(fresh_url, sa.select(LEGACY_RECIPIENTS)))
    back = {
        (r["bulk_message_id"], r["recipient_id"]): (
            r["status"],
            r["skip_reason"],
            r["text_key"],
            r["message_id"] is not None,
        )
        for r in recipients
    }
    assert back == {
        (ids.posted, ids.r1): ("posted", None, "es_US", True),
        (ids.posted, ids.r2): ("skipped", "no-direct-channel", None, False),
        (ids.posting, ids.r3): ("skipped", "no-direct-channel", None, False),
        (ids.queued, ids.r1): ("posted", None, None, True),
    }
    chunk = asyncio.run(jobs_by_id(fresh_url))[ids.chunk_job]
    assert (chunk["kind"], chunk["payload"]) == (
        "messaging-bulk-messages.post-chunk",
        {"bulk_message_id": str(ids.posting), "chunk": 0},
    )
