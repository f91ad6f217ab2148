"""push devices and app credentials

Revision ID: 0021_devices
Revises: 0002
Create Date: 2026-12-18 09:00:00.000000

``user_devices``: one row per (organization, app, token), so a token registered again moves
rather than duplicates. ``app_credentials``: an app's sealed push credentials per platform, one
live (not archived) set per (organization, app, platform).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021_devices"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "user_devices",
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("token", sa.String(length=1024), nullable=False),
        sa.Column("app_name", sa.String(length=64), nullable=False),
        sa.Column("app_version", sa.String(length=20), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("os_version", sa.String(length=64), nullable=True),
        sa.Column("topic", sa.String(length=255), nullable=True),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.Column("allow_notification", sa.Boolean(), nullable=False),
        sa.Column("keys", JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deactivated_code", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_user_devices_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_user_devices_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_devices")),
        sa.UniqueConstraint(
            "organization_id",
            "app_name",
            "token",
            name=op.f("uq_user_devices_organization_id_app_name_token"),
        ),
    )
    op.create_index("ix_user_devices_individual", "user_devices", ["individual_id"])
    op.create_index(op.f("ix_user_devices_organization_id"), "user_devices", ["organization_id"])
    op.create_table(
        "app_credentials",
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("app_name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("store_id", sa.String(length=255), nullable=True),
        sa.Column("test_mode", sa.Boolean(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("data_sealed", sa.Text(), nullable=False),
        sa.Column("public_data", JSON, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_app_credentials_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_credentials")),
    )
    op.create_index(
        op.f("ix_app_credentials_organization_id"), "app_credentials", ["organization_id"]
    )
    op.create_index(
        "uq_app_credentials_live",
        "app_credentials",
        ["organization_id", "app_name", "type"],
        unique=True,
        postgresql_where=sa.text("NOT archived"),
        sqlite_where=sa.text("NOT archived"),
    )


def downgrade() -> None:
    op.drop_table("app_credentials")
    op.drop_table("user_devices")
