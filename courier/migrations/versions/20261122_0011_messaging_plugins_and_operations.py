"""messaging plugins and operations

Revision ID: 0011
Revises: 0007
Create Date: 2026-11-22 23:38:23.749063
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messaging_operations",
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("args", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("logs", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column(
            "channel_ids", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_operations_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_operations")),
    )
    with op.batch_alter_table("messaging_operations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_operations_org_created", ["organization_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_operations_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "messaging_plugins",
        sa.Column("name", sa.String(length=15), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("args", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_plugins_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_plugins")),
        sa.UniqueConstraint(
            "organization_id", "name", name=op.f("uq_messaging_plugins_organization_id_name")
        ),
    )
    with op.batch_alter_table("messaging_plugins", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messaging_plugins_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_messaging_plugins_type"), ["type"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messaging_plugins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_plugins_type"))
        batch_op.drop_index(batch_op.f("ix_messaging_plugins_organization_id"))

    op.drop_table("messaging_plugins")
    with op.batch_alter_table("messaging_operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_operations_organization_id"))
        batch_op.drop_index("ix_messaging_operations_org_created")

    op.drop_table("messaging_operations")
