"""messaging attachments

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-22 23:30:28.248275
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messaging_attachments",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("claimed_content_type", sa.String(length=255), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("content_size", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rejection", sa.String(length=64), nullable=True),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
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
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_messaging_attachments_individual_id_individuals"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messaging_messages.id"],
            name=op.f("fk_messaging_attachments_message_id_messaging_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_messaging_attachments_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_attachments")),
    )
    with op.batch_alter_table("messaging_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messaging_attachments_individual_id"), ["individual_id"], unique=False
        )
        batch_op.create_index(
            "ix_messaging_attachments_message", ["message_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messaging_attachments_organization_id"),
            ["organization_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_messaging_attachments_upload_expiry",
            ["organization_id", "upload_expires_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_attachments_upload_expiry")
        batch_op.drop_index(batch_op.f("ix_messaging_attachments_organization_id"))
        batch_op.drop_index("ix_messaging_attachments_message")
        batch_op.drop_index(batch_op.f("ix_messaging_attachments_individual_id"))

    op.drop_table("messaging_attachments")
