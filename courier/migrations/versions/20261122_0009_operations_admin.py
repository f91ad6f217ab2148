"""operations admin

Revision ID: 0009
Revises: 0002
Create Date: 2026-11-22 23:23:20.186460
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aggregation_requests",
        sa.Column(
            "entries", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "results", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_aggregation_requests_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aggregation_requests")),
    )
    with op.batch_alter_table("aggregation_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_aggregation_requests_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "system_purges",
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("archive", sa.Boolean(), nullable=False),
        sa.Column("reference_id", sa.String(length=255), nullable=True),
        sa.Column("client_request_id", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "steps", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "steps_done", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "counts", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("archive_location", sa.String(length=1024), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("requested_by_type", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_system_purges_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_purges")),
    )
    with op.batch_alter_table("system_purges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_system_purges_entity", ["organization_id", "entity_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_system_purges_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "sniffers",
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_sniffers_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sniffers_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sniffers_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sniffers")),
    )
    with op.batch_alter_table("sniffers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sniffers_api_key_id"), ["api_key_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sniffers_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sniffers_user_id"), ["user_id"], unique=False)
        batch_op.create_index("ix_sniffers_valid_until", ["valid_until"], unique=False)

    op.create_table(
        "sniffer_logs",
        sa.Column("sniffer_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("query_string", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("request_body", sa.Text(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("response_content_type", sa.String(length=255), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("trace_id", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=512), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=True),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sniffer_logs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sniffer_id"],
            ["sniffers.id"],
            name=op.f("fk_sniffer_logs_sniffer_id_sniffers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sniffer_logs")),
    )
    with op.batch_alter_table("sniffer_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sniffer_logs_individual_id"), ["individual_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sniffer_logs_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            "ix_sniffer_logs_sniffer_created", ["sniffer_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sniffer_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_sniffer_logs_sniffer_created")
        batch_op.drop_index(batch_op.f("ix_sniffer_logs_organization_id"))
        batch_op.drop_index(batch_op.f("ix_sniffer_logs_individual_id"))

    op.drop_table("sniffer_logs")
    with op.batch_alter_table("sniffers", schema=None) as batch_op:
        batch_op.drop_index("ix_sniffers_valid_until")
        batch_op.drop_index(batch_op.f("ix_sniffers_user_id"))
        batch_op.drop_index(batch_op.f("ix_sniffers_organization_id"))
        batch_op.drop_index(batch_op.f("ix_sniffers_api_key_id"))

    op.drop_table("sniffers")
    with op.batch_alter_table("system_purges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_system_purges_organization_id"))
        batch_op.drop_index("ix_system_purges_entity")

    op.drop_table("system_purges")
    with op.batch_alter_table("aggregation_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aggregation_requests_organization_id"))

    op.drop_table("aggregation_requests")
