"""messaging

Revision ID: 0007
Revises: 0002
Create Date: 2026-11-22 23:17:01.767138
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "badge_counts",
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_badge_counts_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_badge_counts_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badge_counts")),
        sa.UniqueConstraint(
            "individual_id", "type", name=op.f("uq_badge_counts_individual_id_type")
        ),
    )
    with op.batch_alter_table("badge_counts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_badge_counts_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "messaging_channels",
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("floating", sa.Boolean(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("subscription_type", sa.String(length=32), nullable=False),
        sa.Column(
            "event_settings",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("individual_group_id", sa.Uuid(), nullable=True),
        sa.Column("text_number_id", sa.Uuid(), nullable=True),
        sa.Column("observation_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("with_sms", sa.Boolean(), nullable=False),
        sa.Column("sms_initial_message", sa.String(length=1024), nullable=True),
        sa.Column(
            "sms_initial_message_js",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_message_id", sa.Uuid(), nullable=True),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["individual_group_id"],
            ["individual_groups.id"],
            name=op.f("fk_messaging_channels_individual_group_id_individual_groups"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_channels_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["individuals.id"],
            name=op.f("fk_messaging_channels_owner_id_individuals"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_channels")),
    )
    with op.batch_alter_table("messaging_channels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messaging_channels_individual_group_id"),
            ["individual_group_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_channels_last_message_at"), ["last_message_at"], unique=False
        )
        batch_op.create_index(
            "ix_messaging_channels_org_modified",
            ["organization_id", "last_modified_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_channels_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "messaging_messages",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("individual_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("draft", sa.Boolean(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column(
            "destination", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("posted_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sentiment", sa.String(length=16), nullable=True),
        sa.Column(
            "phrases", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("bulk_message_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["messaging_channels.id"],
            name=op.f("fk_messaging_messages_channel_id_messaging_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_messaging_messages_individual_id_individuals"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_messages_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_messages")),
    )
    with op.batch_alter_table("messaging_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_messages_author", ["individual_id", "posted_time"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_messages_bulk_message_id"), ["bulk_message_id"], unique=False
        )
        batch_op.create_index(
            "ix_messaging_messages_channel_posted", ["channel_id", "posted_time"], unique=False
        )
        batch_op.create_index(
            "ix_messaging_messages_channel_seq", ["channel_id", "seq"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_messages_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "messaging_subscribers",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("notify", sa.String(length=32), nullable=False),
        sa.Column(
            "preferences", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("ack_seq", sa.Integer(), nullable=False),
        sa.Column("ack_message_id", sa.Uuid(), nullable=True),
        sa.Column("ack_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ack_user_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("subscribed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["messaging_channels.id"],
            name=op.f("fk_messaging_subscribers_channel_id_messaging_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_messaging_subscribers_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_subscribers_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "channel_id", "individual_id", name=op.f("pk_messaging_subscribers")
        ),
    )
    with op.batch_alter_table("messaging_subscribers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_subscribers_individual", ["individual_id", "channel_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_subscribers_organization_id"),
            ["organization_id"],
            unique=False,
        )

    op.create_table(
        "messaging_bookmarks",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["messaging_channels.id"],
            name=op.f("fk_messaging_bookmarks_channel_id_messaging_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_messaging_bookmarks_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messaging_messages.id"],
            name=op.f("fk_messaging_bookmarks_message_id_messaging_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_bookmarks_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_bookmarks")),
    )
    with op.batch_alter_table("messaging_bookmarks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messaging_bookmarks_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            "ix_messaging_bookmarks_owner", ["individual_id", "channel_id"], unique=False
        )

    op.create_table(
        "messaging_reactions",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("reaction_type", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_messaging_reactions_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messaging_messages.id"],
            name=op.f("fk_messaging_reactions_message_id_messaging_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_reactions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_reactions")),
        sa.UniqueConstraint(
            "message_id",
            "individual_id",
            "reaction_type",
            name=op.f("uq_messaging_reactions_message_id_individual_id_reaction_type"),
        ),
    )
    with op.batch_alter_table("messaging_reactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messaging_reactions_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_reactions_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_reactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_reactions_organization_id"))
        batch_op.drop_index(batch_op.f("ix_messaging_reactions_message_id"))

    op.drop_table("messaging_reactions")
    with op.batch_alter_table("messaging_bookmarks", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_bookmarks_owner")
        batch_op.drop_index(batch_op.f("ix_messaging_bookmarks_organization_id"))

    op.drop_table("messaging_bookmarks")
    with op.batch_alter_table("messaging_subscribers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_subscribers_organization_id"))
        batch_op.drop_index("ix_messaging_subscribers_individual")

    op.drop_table("messaging_subscribers")
    with op.batch_alter_table("messaging_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_messages_organization_id"))
        batch_op.drop_index("ix_messaging_messages_channel_seq")
        batch_op.drop_index("ix_messaging_messages_channel_posted")
        batch_op.drop_index(batch_op.f("ix_messaging_messages_bulk_message_id"))
        batch_op.drop_index("ix_messaging_messages_author")

    op.drop_table("messaging_messages")
    with op.batch_alter_table("messaging_channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_channels_organization_id"))
        batch_op.drop_index("ix_messaging_channels_org_modified")
        batch_op.drop_index(batch_op.f("ix_messaging_channels_last_message_at"))
        batch_op.drop_index(batch_op.f("ix_messaging_channels_individual_group_id"))

    op.drop_table("messaging_channels")

    with op.batch_alter_table("badge_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_badge_counts_organization_id"))

    op.drop_table("badge_counts")
