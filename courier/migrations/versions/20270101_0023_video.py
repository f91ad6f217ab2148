"""video visits (video-channels), their participants and compositions

Revision ID: 0023_video
Revises: 0022_appointments
Create Date: 2027-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023_video"
down_revision: str | Sequence[str] | None = "0022_appointments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "video_channels",
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("messaging_channel_id", sa.Uuid(), nullable=True),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("appointment_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("appointment_duration", sa.Integer(), nullable=True),
        sa.Column("join_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded", sa.Boolean(), nullable=False),
        sa.Column("appless", sa.Boolean(), nullable=False),
        sa.Column("with_email", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("max_participants", sa.Integer(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("room_sid", sa.String(length=128), nullable=True),
        sa.Column("room_status", sa.String(length=16), nullable=True),
        sa.Column("room_error", sa.String(length=255), nullable=True),
        sa.Column("encounter_id", sa.Uuid(), nullable=True),
        sa.Column(
            "encounter", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "reminders", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("reminder_template_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_by_actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_video_channels_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["individuals.id"],
            name=op.f("fk_video_channels_subject_id_individuals"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_channels")),
    )
    with op.batch_alter_table("video_channels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_video_channels_appointment_id"), ["appointment_id"], unique=False
        )
        batch_op.create_index(
            "ix_video_channels_org_state", ["organization_id", "state", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_video_channels_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index("ix_video_channels_room", ["room_sid"], unique=False)

    op.create_table(
        "video_compositions",
        sa.Column("video_channel_id", sa.Uuid(), nullable=False),
        sa.Column("vendor_id", sa.String(length=128), nullable=True),
        sa.Column("processing_status", sa.String(length=16), nullable=False),
        sa.Column("processing_pct", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(length=64), nullable=True),
        sa.Column("storage_key", sa.String(length=512), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_video_compositions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["video_channel_id"],
            ["video_channels.id"],
            name=op.f("fk_video_compositions_video_channel_id_video_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_compositions")),
    )
    with op.batch_alter_table("video_compositions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_video_compositions_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_video_compositions_video_channel_id"), ["video_channel_id"], unique=False
        )

    op.create_table(
        "video_participants",
        sa.Column("video_channel_id", sa.Uuid(), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("account_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("audio_state", sa.String(length=16), nullable=False),
        sa.Column("disconnected", sa.Boolean(), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.String(length=128), nullable=True),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_by", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_video_participants_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_video_participants_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["video_channel_id"],
            ["video_channels.id"],
            name=op.f("fk_video_participants_video_channel_id_video_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_participants")),
        sa.UniqueConstraint(
            "video_channel_id",
            "individual_id",
            name=op.f("uq_video_participants_video_channel_id_individual_id"),
        ),
    )
    with op.batch_alter_table("video_participants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_video_participants_individual", ["organization_id", "individual_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_video_participants_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("video_participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_video_participants_organization_id"))
        batch_op.drop_index("ix_video_participants_individual")

    op.drop_table("video_participants")
    with op.batch_alter_table("video_compositions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_video_compositions_video_channel_id"))
        batch_op.drop_index(batch_op.f("ix_video_compositions_organization_id"))

    op.drop_table("video_compositions")
    with op.batch_alter_table("video_channels", schema=None) as batch_op:
        batch_op.drop_index("ix_video_channels_room")
        batch_op.drop_index(batch_op.f("ix_video_channels_organization_id"))
        batch_op.drop_index("ix_video_channels_org_state")
        batch_op.drop_index(batch_op.f("ix_video_channels_appointment_id"))

    op.drop_table("video_channels")
