"""fanouts: the generic fan-out's tables; bulk messages move onto them

Bulk messages kept their own recipients (``bulk_message_recipients``) and counters; they are
now a fan-out like any other (``courier.jobs.fanout``). Every sent bulk message gets its
``fanouts`` row (counts and state), its recipients become ``fanout_targets`` (the chosen
``text_key`` as data, channel and message as outcome), and its jobs are renamed to the
fan-out's (``messaging-bulk-messages.post-chunk`` -> ``.chunk``, payloads naming the fan-out),
so a bulk message caught half-way by the upgrade carries on. Downgrade moves them back.

Revision ID: 0019_fanouts
Revises: 0005, 0012
Create Date: 2026-12-10 09:00:00.000000
"""

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019_fanouts"
down_revision: str | Sequence[str] | None = ("0005", "0012")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BULK = "messaging-bulk-messages"
OLD_CHUNK, NEW_CHUNK, PLAN = f"{BULK}.post-chunk", f"{BULK}.chunk", f"{BULK}.plan"
BATCH = 1000
COUNTERS = ("recipient_count", "posted_count", "skipped_count", "chunk_count", "chunks_done")
STATES = {"queued": "queued", "posting": "running", "posted": "settled"}
TARGET_STATES = {"pending": "pending", "posted": "delivered", "skipped": "skipped"}

bulk_messages = sa.table(
    "messaging_bulk_messages",
    sa.column("id", sa.Uuid()),
    sa.column("organization_id", sa.Uuid()),
    sa.column("status", sa.String()),
    sa.column("recipient_count", sa.Integer()),
    sa.column("posted_count", sa.Integer()),
    sa.column("skipped_count", sa.Integer()),
    sa.column("chunk_count", sa.Integer()),
    sa.column("chunks_done", sa.Integer()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("submitted_at", sa.DateTime(timezone=True)),
    sa.column("posted_time", sa.DateTime(timezone=True)),
)
recipients = sa.table(
    "bulk_message_recipients",
    sa.column("organization_id", sa.Uuid()),
    sa.column("bulk_message_id", sa.Uuid()),
    sa.column("recipient_id", sa.Uuid()),
    sa.column("chunk", sa.Integer()),
    sa.column("text_key", sa.String()),
    sa.column("status", sa.String()),
    sa.column("skip_reason", sa.String()),
    sa.column("channel_id", sa.Uuid()),
    sa.column("message_id", sa.Uuid()),
    sa.column("done_at", sa.DateTime(timezone=True)),
)
fanouts = sa.table(
    "fanouts",
    sa.column("id", sa.Uuid()),
    sa.column("organization_id", sa.Uuid()),
    sa.column("kind", sa.String()),
    sa.column("subject_id", sa.Uuid()),
    sa.column("state", sa.String()),
    sa.column("target_count", sa.Integer()),
    sa.column("chunk_count", sa.Integer()),
    sa.column("chunks_done", sa.Integer()),
    sa.column("delivered_count", sa.Integer()),
    sa.column("skipped_count", sa.Integer()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("planned_at", sa.DateTime(timezone=True)),
    sa.column("settled_at", sa.DateTime(timezone=True)),
    sa.column("cancelled_at", sa.DateTime(timezone=True)),
)
targets = sa.table(
    "fanout_targets",
    sa.column("organization_id", sa.Uuid()),
    sa.column("fanout_id", sa.Uuid()),
    sa.column("target_id", sa.Uuid()),
    sa.column("chunk", sa.Integer()),
    sa.column("data", JSON),
    sa.column("state", sa.String()),
    sa.column("reason", sa.String()),
    sa.column("outcome", JSON),
    sa.column("done_at", sa.DateTime(timezone=True)),
)
jobs = sa.table(
    "jobs",
    sa.column("id", sa.Uuid()),
    sa.column("kind", sa.String()),
    sa.column("payload", JSON),
    sa.column("dedupe_key", sa.String()),
)


def upgrade() -> None:
    op.create_table(
        "fanouts",
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("target_count", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("delivered_count", sa.Integer(), nullable=False),
        sa.Column("skipped_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_fanouts_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fanouts")),
        sa.UniqueConstraint("organization_id", "kind", "subject_id", name="uq_fanouts_subject"),
    )
    with op.batch_alter_table("fanouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fanouts_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "fanout_targets",
        sa.Column("fanout_id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("data", JSON, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("outcome", JSON, nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["fanout_id"],
            ["fanouts.id"],
            name=op.f("fk_fanout_targets_fanout_id_fanouts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_fanout_targets_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("fanout_id", "target_id", name=op.f("pk_fanout_targets")),
    )
    with op.batch_alter_table("fanout_targets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fanout_targets_chunk", ["fanout_id", "chunk", "state"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_fanout_targets_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_fanout_targets_target_id"), ["target_id"], unique=False
        )

    connection = op.get_bind()
    fanout_of = _bulk_messages_to_fanouts(connection)
    _recipients_to_targets(connection, fanout_of)
    _rename_jobs(connection, fanout_of, up=True)

    with op.batch_alter_table("bulk_message_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulk_message_recipients_recipient_id"))
        batch_op.drop_index(batch_op.f("ix_bulk_message_recipients_organization_id"))
        batch_op.drop_index("ix_bulk_message_recipients_chunk")
    op.drop_table("bulk_message_recipients")
    with op.batch_alter_table("messaging_bulk_messages", schema=None) as batch_op:
        for column in COUNTERS:
            batch_op.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table("messaging_bulk_messages", schema=None) as batch_op:
        for column in COUNTERS:
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=False, server_default="0"))
    _create_recipients_table()
    connection = op.get_bind()
    fanout_of = _fanouts_to_bulk_messages(connection)
    _targets_to_recipients(connection, fanout_of)
    _rename_jobs(connection, fanout_of, up=False)

    with op.batch_alter_table("fanout_targets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fanout_targets_target_id"))
        batch_op.drop_index(batch_op.f("ix_fanout_targets_organization_id"))
        batch_op.drop_index("ix_fanout_targets_chunk")
    op.drop_table("fanout_targets")
    with op.batch_alter_table("fanouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fanouts_organization_id"))
    op.drop_table("fanouts")


def _bulk_messages_to_fanouts(connection: sa.Connection) -> dict[uuid.UUID, uuid.UUID]:
    """A fan-out per sent bulk message, with its counts; bulk message -> fan-out."""
    fanout_of: dict[uuid.UUID, uuid.UUID] = {}
    rows = []
    sent = sa.select(bulk_messages).where(bulk_messages.c.status.in_(list(STATES)))
    for bulk in connection.execute(sent).mappings():
        fanout_of[bulk["id"]] = uuid.uuid4()
        planned = bulk["status"] != "queued"
        rows.append(
            {
                "id": fanout_of[bulk["id"]],
                "organization_id": bulk["organization_id"],
                "kind": BULK,
                "subject_id": bulk["id"],
                "state": STATES[bulk["status"]],
                "target_count": bulk["recipient_count"],
                "chunk_count": bulk["chunk_count"],
                "chunks_done": bulk["chunks_done"],
                "delivered_count": bulk["posted_count"],
                "skipped_count": bulk["skipped_count"],
                "created_at": bulk["submitted_at"] or bulk["created_at"],
                "planned_at": (bulk["submitted_at"] or bulk["created_at"]) if planned else None,
                "settled_at": bulk["posted_time"] if bulk["status"] == "posted" else None,
                "cancelled_at": None,
            }
        )
    _insert(connection, fanouts, rows)
    return fanout_of


def _recipients_to_targets(
    connection: sa.Connection, fanout_of: dict[uuid.UUID, uuid.UUID]
) -> None:
    rows = []
    for row in connection.execute(sa.select(recipients)).mappings():
        fanout_id = fanout_of.get(row["bulk_message_id"])
        if fanout_id is None:  # pragma: no cover - recipients are written when sent
            continue
        posted = row["status"] == "posted"
        rows.append(
            {
                "organization_id": row["organization_id"],
                "fanout_id": fanout_id,
                "target_id": row["recipient_id"],
                "chunk": row["chunk"],
                "data": {"text-key": row["text_key"]} if row["text_key"] else None,
                "state": TARGET_STATES.get(row["status"], row["status"]),
                "reason": row["skip_reason"],
                "outcome": (
                    {
                        "channel-id": _text(row["channel_id"]),
                        "message-id": _text(row["message_id"]),
                    }
                    if posted
                    else None
                ),
                "done_at": row["done_at"],
            }
        )
    _insert(connection, targets, rows)


def _fanouts_to_bulk_messages(connection: sa.Connection) -> dict[uuid.UUID, uuid.UUID]:
    """Counts back onto the bulk messages; fan-out -> bulk message."""
    bulk_of: dict[uuid.UUID, uuid.UUID] = {}
    mine = sa.select(fanouts).where(fanouts.c.kind == BULK)
    for fanout in connection.execute(mine).mappings():
        bulk_of[fanout["id"]] = fanout["subject_id"]
        connection.execute(
            bulk_messages.update()
            .where(bulk_messages.c.id == fanout["subject_id"])
            .values(
                recipient_count=fanout["target_count"],
                posted_count=fanout["delivered_count"],
                skipped_count=fanout["skipped_count"],
                chunk_count=fanout["chunk_count"],
                chunks_done=fanout["chunks_done"],
            )
        )
    return bulk_of


def _targets_to_recipients(connection: sa.Connection, bulk_of: dict[uuid.UUID, uuid.UUID]) -> None:
    back = {state: old for old, state in TARGET_STATES.items()}
    rows = []
    mine = sa.select(targets).where(targets.c.fanout_id.in_(list(bulk_of)))
    for row in connection.execute(mine).mappings() if bulk_of else []:
        outcome = row["outcome"] or {}
        rows.append(
            {
                "organization_id": row["organization_id"],
                "bulk_message_id": bulk_of[row["fanout_id"]],
                "recipient_id": row["target_id"],
                "chunk": row["chunk"],
                "text_key": (row["data"] or {}).get("text-key"),
                "status": back.get(row["state"], row["state"]),
                "skip_reason": row["reason"],
                "channel_id": _uuid(outcome.get("channel-id")),
                "message_id": _uuid(outcome.get("message-id")),
                "done_at": row["done_at"],
            }
        )
    _insert(connection, recipients, rows)


def _rename_jobs(
    connection: sa.Connection, fanout_of: dict[uuid.UUID, uuid.UUID], *, up: bool
) -> None:
    """The fan-out's jobs name the fan-out (up) or the bulk message (down) in their payload;
    the chunk jobs are renamed. ``fanout_of``: bulk -> fan-out (up), fan-out -> bulk (down)."""
    source = (PLAN, OLD_CHUNK) if up else (PLAN, NEW_CHUNK)
    key_in, key_out = ("bulk_message_id", "fanout_id") if up else ("fanout_id", "bulk_message_id")
    found = connection.execute(sa.select(jobs).where(jobs.c.kind.in_(source))).mappings()
    for job in list(found):
        payload = dict(job["payload"] or {})
        if key_in not in payload:
            continue
        mapped = fanout_of.get(uuid.UUID(str(payload.pop(key_in))))
        if mapped is None:
            continue
        payload[key_out] = str(mapped)
        kind = job["kind"]
        if kind != PLAN:
            kind = NEW_CHUNK if up else OLD_CHUNK
        dedupe = job["dedupe_key"]
        if dedupe and kind != PLAN:
            dedupe = kind + dedupe[dedupe.index(":") :]
        connection.execute(
            jobs.update()
            .where(jobs.c.id == job["id"])
            .values(kind=kind, payload=payload, dedupe_key=dedupe)
        )


def _create_recipients_table() -> None:
    op.create_table(
        "bulk_message_recipients",
        sa.Column("bulk_message_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_id", sa.Uuid(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("text_key", sa.String(length=35), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("skip_reason", sa.String(length=64), nullable=True),
        sa.Column("channel_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bulk_message_id"],
            ["messaging_bulk_messages.id"],
            name=op.f("fk_bulk_message_recipients_bulk_message_id_messaging_bulk_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["messaging_channels.id"],
            name=op.f("fk_bulk_message_recipients_channel_id_messaging_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messaging_messages.id"],
            name=op.f("fk_bulk_message_recipients_message_id_messaging_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_bulk_message_recipients_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["individuals.id"],
            name=op.f("fk_bulk_message_recipients_recipient_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "bulk_message_id", "recipient_id", name=op.f("pk_bulk_message_recipients")
        ),
    )
    with op.batch_alter_table("bulk_message_recipients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bulk_message_recipients_chunk", ["bulk_message_id", "chunk", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_bulk_message_recipients_organization_id"),
            ["organization_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_bulk_message_recipients_recipient_id"), ["recipient_id"], unique=False
        )


def _insert(connection: sa.Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        connection.execute(table.insert(), rows[start : start + BATCH])


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))
