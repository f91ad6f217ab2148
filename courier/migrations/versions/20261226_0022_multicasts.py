"""multicasts

Revision ID: 0022_multicasts
Revises: 0021_templates
Create Date: 2026-12-26 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022_multicasts"
down_revision: str | Sequence[str] | None = "0021_templates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_INDEXED = ("created_at", "individual_group_id", "individual_id", "organization_id", "template_id")


def upgrade() -> None:
    op.create_table(
        "multicasts",
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("filter_type", sa.String(length=32), nullable=False),
        sa.Column("filter_value", _JSON, nullable=False),
        sa.Column("template_ref", sa.String(length=255), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("individual_group_id", sa.Uuid(), nullable=True),
        sa.Column("individual_ids", _JSON, nullable=False),
        sa.Column("individual_group_ids", _JSON, nullable=False),
        sa.Column("user_ids", _JSON, nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_multicasts_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_multicasts")),
    )
    with op.batch_alter_table("multicasts", schema=None) as batch_op:
        for column in _INDEXED:
            batch_op.create_index(batch_op.f(f"ix_multicasts_{column}"), [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("multicasts", schema=None) as batch_op:
        for column in _INDEXED:
            batch_op.drop_index(batch_op.f(f"ix_multicasts_{column}"))
    op.drop_table("multicasts")
