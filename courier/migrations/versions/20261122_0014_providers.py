"""providers: deliveries, their history, provider webhooks, sandbox state

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 07:46:17.770944
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sandbox_records",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("collection", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_records")),
    )
    with op.batch_alter_table("sandbox_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sandbox_records_lookup", ["kind", "collection", "key"], unique=False
        )

    op.create_table(
        "deliveries",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("vendor_id", sa.String(length=128), nullable=True),
        sa.Column("attempt_id", sa.Uuid(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.String(length=500), nullable=True),
        sa.Column("conflict", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_deliveries_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            "ix_deliveries_provider_vendor", ["provider", "vendor_id"], unique=False
        )
        batch_op.create_index(
            "ix_deliveries_resource", ["resource_type", "resource_id"], unique=False
        )

    op.create_table(
        "provider_inbound",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("vendor_id", sa.String(length=128), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("vendor_status", sa.String(length=32), nullable=True),
        sa.Column("vendor_code", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_provider_inbound_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_inbound")),
        sa.UniqueConstraint("provider", "dedupe_key", name="uq_provider_inbound_provider_dedupe"),
    )
    with op.batch_alter_table("provider_inbound", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provider_inbound_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index("ix_provider_inbound_vendor", ["provider", "vendor_id"], unique=False)

    op.create_table(
        "delivery_events",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("vendor_status", sa.String(length=32), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_events_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_delivery_events_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_events")),
    )
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_events_delivery", ["delivery_id", "recorded_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_events_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_events_organization_id"))
        batch_op.drop_index("ix_delivery_events_delivery")

    op.drop_table("delivery_events")
    with op.batch_alter_table("provider_inbound", schema=None) as batch_op:
        batch_op.drop_index("ix_provider_inbound_vendor")
        batch_op.drop_index(batch_op.f("ix_provider_inbound_organization_id"))

    op.drop_table("provider_inbound")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_resource")
        batch_op.drop_index("ix_deliveries_provider_vendor")
        batch_op.drop_index(batch_op.f("ix_deliveries_organization_id"))

    op.drop_table("deliveries")
    with op.batch_alter_table("sandbox_records", schema=None) as batch_op:
        batch_op.drop_index("ix_sandbox_records_lookup")

    op.drop_table("sandbox_records")
