"""user notifications

Revision ID: 0022_user_notifications
Revises: 0021_devices, 0021_templates
Create Date: 2026-12-26 00:00:00

One row per notification of an individual: what each channel showed, acknowledgement, the
escalation ladder. ``dedupe_key`` is unique per organization (a retried fan-out chunk finds
its notification instead of sending twice).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022_user_notifications"
down_revision: str | Sequence[str] | None = ("0021_devices", "0021_templates")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "user_notifications",
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=True),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("badge", sa.Integer(), nullable=True),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("channels", _JSON, nullable=False),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("escalation", _JSON, nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_user_notifications_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_notifications_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_user_notifications_template_id_templates"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_user_notifications_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_notifications")),
        sa.UniqueConstraint(
            "organization_id",
            "dedupe_key",
            name=op.f("uq_user_notifications_organization_id_dedupe_key"),
        ),
    )
    with op.batch_alter_table("user_notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_notifications_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            "ix_user_notifications_individual",
            ["organization_id", "individual_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_user_notifications_user", ["organization_id", "user_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_user_notifications_batch", ["batch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("user_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_user_notifications_batch")
        batch_op.drop_index("ix_user_notifications_user")
        batch_op.drop_index("ix_user_notifications_individual")
        batch_op.drop_index(batch_op.f("ix_user_notifications_organization_id"))
    op.drop_table("user_notifications")
