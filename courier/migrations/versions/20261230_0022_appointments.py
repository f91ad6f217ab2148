"""appointments (seed 003) and their attendees

Revision ID: 0022_appointments
Revises: 0001
Create Date: 2026-12-30 00:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022_appointments"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def _tenant(table: str) -> list[Any]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f(f"fk_{table}_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("appointment_type", sa.String(length=255), nullable=True),
        sa.Column("generated_from_type", sa.String(length=16), nullable=True),
        sa.Column("generated_from", sa.String(length=255), nullable=True),
        sa.Column("group", sa.Boolean(), nullable=False),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("host_id", sa.Uuid(), nullable=True),
        sa.Column("start_time", _TIME, nullable=False),
        sa.Column("end_time", _TIME, nullable=False),
        sa.Column("series_end", _TIME, nullable=True),
        sa.Column("actual_start_time", _TIME, nullable=True),
        sa.Column("actual_end_time", _TIME, nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("rrule", sa.String(length=1000), nullable=True),
        sa.Column("interaction_type", sa.String(length=16), nullable=False),
        sa.Column("location", _JSON, nullable=True),
        sa.Column("video_visit_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_history", _JSON, nullable=False),
        sa.Column("change_log", _JSON, nullable=False),
        sa.Column("reference_patients", _JSON, nullable=False),
        sa.Column("visit_note", sa.Text(), nullable=True),
        sa.Column("reminders", _JSON, nullable=False),
        sa.Column("reminder_template_id", sa.Uuid(), nullable=True),
        sa.Column("extended", _JSON, nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_by_actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_updated_by", sa.Uuid(), nullable=True),
        sa.Column("last_updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["individuals.id"],
            name=op.f("fk_appointments_host_id_individuals"),
            ondelete="SET NULL",
        ),
        *_tenant("appointments"),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_appointments_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            "ix_appointments_org_start", ["organization_id", "start_time"], unique=False
        )
        batch_op.create_index(
            "ix_appointments_org_host", ["organization_id", "host_id", "start_time"], unique=False
        )
    op.create_table(
        "appointment_attendees",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("attendance_status", sa.String(length=16), nullable=False),
        sa.Column("no_show", sa.Boolean(), nullable=False),
        sa.Column("payment_status", sa.String(length=16), nullable=False),
        sa.Column("last_updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_attendees_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_appointment_attendees_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "appointment_id",
            "individual_id",
            name=op.f("uq_appointment_attendees_appointment_id"),
        ),
        *_tenant("appointment_attendees"),
    )
    with op.batch_alter_table("appointment_attendees", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_appointment_attendees_organization_id"),
            ["organization_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_appointment_attendees_individual",
            ["organization_id", "individual_id"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("appointment_attendees")
    op.drop_table("appointments")
