"""org preferences

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22 23:13:14.411280
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "org_preferences",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "value", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_org_preferences_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_preferences")),
        sa.UniqueConstraint(
            "organization_id", "name", name=op.f("uq_org_preferences_organization_id_name")
        ),
    )
    with op.batch_alter_table("org_preferences", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_org_preferences_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("org_preferences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_preferences_organization_id"))

    op.drop_table("org_preferences")
