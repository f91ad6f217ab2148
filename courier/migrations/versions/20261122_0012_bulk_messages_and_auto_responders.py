"""bulk messages and auto-responders

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-22 23:47:25.793645
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messaging_bulk_messages",
        sa.Column("sender_individual_id", sa.Uuid(), nullable=True),
        sa.Column("sender_individual_group_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("actor_type", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "message_js", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "individual_ids",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "individual_group_ids",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("auto_create_channel", sa.Boolean(), nullable=False),
        sa.Column("auto_ack", sa.Boolean(), nullable=False),
        sa.Column("draft", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.Column("posted_count", sa.Integer(), nullable=False),
        sa.Column("skipped_count", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posted_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_bulk_messages_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_individual_group_id"],
            ["individual_groups.id"],
            name=op.f("fk_messaging_bulk_messages_sender_individual_group_id_individual_groups"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sender_individual_id"],
            ["individuals.id"],
            name=op.f("fk_messaging_bulk_messages_sender_individual_id_individuals"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_bulk_messages")),
    )
    with op.batch_alter_table("messaging_bulk_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messaging_bulk_messages_created_by"), ["created_by"], unique=False
        )
        batch_op.create_index(
            "ix_messaging_bulk_messages_org_created",
            ["organization_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_bulk_messages_organization_id"),
            ["organization_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_bulk_messages_sender_individual_id"),
            ["sender_individual_id"],
            unique=False,
        )

    op.create_table(
        "messaging_responders",
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("args", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column(
            "calendar_args",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("individual_group_id", sa.Uuid(), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["individual_group_id"],
            ["individual_groups.id"],
            name=op.f("fk_messaging_responders_individual_group_id_individual_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_messaging_responders_individual_id_individuals"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_responders_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_responders")),
    )
    with op.batch_alter_table("messaging_responders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_responders_group",
            ["organization_id", "individual_group_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_responders_individual_id"), ["individual_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_responders_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "messaging_bulk_attachments",
        sa.Column("bulk_message_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("claimed_content_type", sa.String(length=255), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("content_size", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rejection", sa.String(length=64), nullable=True),
        sa.Column("upload_key", sa.String(length=512), nullable=True),
        sa.Column("upload_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("storage_key", sa.String(length=512), nullable=True),
        sa.Column("thumbnail_key", sa.String(length=512), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bulk_message_id"],
            ["messaging_bulk_messages.id"],
            name=op.f("fk_messaging_bulk_attachments_bulk_message_id_messaging_bulk_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_bulk_attachments_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_bulk_attachments")),
    )
    with op.batch_alter_table("messaging_bulk_attachments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_bulk_attachments_bulk", ["bulk_message_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_bulk_attachments_organization_id"),
            ["organization_id"],
            unique=False,
        )

    op.create_table(
        "messaging_responder_replies",
        sa.Column("responder_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("last_reply_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger_message_id", sa.Uuid(), nullable=True),
        sa.Column("reply_message_id", sa.Uuid(), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["messaging_channels.id"],
            name=op.f("fk_messaging_responder_replies_channel_id_messaging_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_responder_replies_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["responder_id"],
            ["messaging_responders.id"],
            name=op.f("fk_messaging_responder_replies_responder_id_messaging_responders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "responder_id", "channel_id", name=op.f("pk_messaging_responder_replies")
        ),
    )
    with op.batch_alter_table("messaging_responder_replies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messaging_responder_replies_channel_id"), ["channel_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_responder_replies_organization_id"),
            ["organization_id"],
            unique=False,
        )

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


def downgrade() -> None:
    with op.batch_alter_table("bulk_message_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulk_message_recipients_recipient_id"))
        batch_op.drop_index(batch_op.f("ix_bulk_message_recipients_organization_id"))
        batch_op.drop_index("ix_bulk_message_recipients_chunk")

    op.drop_table("bulk_message_recipients")
    with op.batch_alter_table("messaging_responder_replies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_responder_replies_organization_id"))
        batch_op.drop_index(batch_op.f("ix_messaging_responder_replies_channel_id"))

    op.drop_table("messaging_responder_replies")
    with op.batch_alter_table("messaging_bulk_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_bulk_attachments_organization_id"))
        batch_op.drop_index("ix_messaging_bulk_attachments_bulk")

    op.drop_table("messaging_bulk_attachments")
    with op.batch_alter_table("messaging_responders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_responders_organization_id"))
        batch_op.drop_index(batch_op.f("ix_messaging_responders_individual_id"))
        batch_op.drop_index("ix_messaging_responders_group")

    op.drop_table("messaging_responders")
    with op.batch_alter_table("messaging_bulk_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_bulk_messages_sender_individual_id"))
        batch_op.drop_index(batch_op.f("ix_messaging_bulk_messages_organization_id"))
        batch_op.drop_index("ix_messaging_bulk_messages_org_created")
        batch_op.drop_index(batch_op.f("ix_messaging_bulk_messages_created_by"))

    op.drop_table("messaging_bulk_messages")
