"""voice calls: conferences, surveys and their call legs (dial logs)

Revision ID: 0023_voice_calls
Revises: 0002
Create Date: 2027-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023_voice_calls"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "voice_conferences",
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "extended", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_voice_conferences_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_voice_conferences_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["individuals.id"],
            name=op.f("fk_voice_conferences_provider_id_individuals"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_conferences")),
    )
    with op.batch_alter_table("voice_conferences", schema=None) as batch_op:
        batch_op.create_index("ix_voice_conferences_individual", ["individual_id"], unique=False)
        batch_op.create_index(
            "ix_voice_conferences_org_created", ["organization_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_voice_conferences_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index("ix_voice_conferences_provider", ["provider_id"], unique=False)

    op.create_table(
        "voice_surveys",
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("spec", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column(
            "result", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failure", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "extended", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_voice_surveys_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_voice_surveys_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_surveys")),
    )
    with op.batch_alter_table("voice_surveys", schema=None) as batch_op:
        batch_op.create_index("ix_voice_surveys_individual", ["individual_id"], unique=False)
        batch_op.create_index(
            "ix_voice_surveys_org_created", ["organization_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_voice_surveys_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "voice_dial_logs",
        sa.Column("conference_id", sa.Uuid(), nullable=True),
        sa.Column("survey_id", sa.Uuid(), nullable=True),
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=True),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("to_number", sa.String(length=16), nullable=False),
        sa.Column("from_number", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("call_duration", sa.Integer(), nullable=True),
        sa.Column("cost", sa.String(length=32), nullable=True),
        sa.Column("cost_unit", sa.String(length=8), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column(
            "extended", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conference_id"],
            ["voice_conferences.id"],
            name=op.f("fk_voice_dial_logs_conference_id_voice_conferences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_voice_dial_logs_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_voice_dial_logs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["voice_surveys.id"],
            name=op.f("fk_voice_dial_logs_survey_id_voice_surveys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_dial_logs")),
    )
    with op.batch_alter_table("voice_dial_logs", schema=None) as batch_op:
        batch_op.create_index("ix_voice_dial_logs_conference", ["conference_id"], unique=False)
        batch_op.create_index("ix_voice_dial_logs_individual", ["individual_id"], unique=False)
        batch_op.create_index(
            "ix_voice_dial_logs_org_created", ["organization_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_voice_dial_logs_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index("ix_voice_dial_logs_survey", ["survey_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("voice_dial_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_voice_dial_logs_survey")
        batch_op.drop_index(batch_op.f("ix_voice_dial_logs_organization_id"))
        batch_op.drop_index("ix_voice_dial_logs_org_created")
        batch_op.drop_index("ix_voice_dial_logs_individual")
        batch_op.drop_index("ix_voice_dial_logs_conference")

    op.drop_table("voice_dial_logs")
    with op.batch_alter_table("voice_surveys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_voice_surveys_organization_id"))
        batch_op.drop_index("ix_voice_surveys_org_created")
        batch_op.drop_index("ix_voice_surveys_individual")

    op.drop_table("voice_surveys")
    with op.batch_alter_table("voice_conferences", schema=None) as batch_op:
        batch_op.drop_index("ix_voice_conferences_provider")
        batch_op.drop_index(batch_op.f("ix_voice_conferences_organization_id"))
        batch_op.drop_index("ix_voice_conferences_org_created")
        batch_op.drop_index("ix_voice_conferences_individual")

    op.drop_table("voice_conferences")
