"""fanouts: the generic fan-out's tables

Revision ID: 0019_fanouts
Revises: 0005, 0012
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019_fanouts"
down_revision: str | Sequence[str] | None = ("0005", "0012")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


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


def downgrade() -> None:
    with op.batch_alter_table("fanout_targets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fanout_targets_target_id"))
        batch_op.drop_index(batch_op.f("ix_fanout_targets_organization_id"))
        batch_op.drop_index("ix_fanout_targets_chunk")
    op.drop_table("fanout_targets")
    with op.batch_alter_table("fanouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fanouts_organization_id"))
    op.drop_table("fanouts")
