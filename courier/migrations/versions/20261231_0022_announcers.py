"""announcers: event-triggered notification rules and the events each has acted on

Revision ID: 0022_announcers
Revises: 0021_templates
Create Date: 2026-12-31 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022_announcers"
down_revision: str | Sequence[str] | None = "0021_templates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "announcers",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("args", _JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("listening_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_announcers_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcers")),
    )
    with op.batch_alter_table("announcers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_announcers_name"), ["name"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_announcers_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index("ix_announcers_org_event", ["organization_id", "event"], unique=False)
    op.create_table(
        "announcer_firings",
        sa.Column("announcer_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=96), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("notified", sa.Integer(), nullable=False),
        sa.Column("not_sent", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["announcer_id"],
            ["announcers.id"],
            name=op.f("fk_announcer_firings_announcer_id_announcers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_announcer_firings_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("announcer_id", "event_id", name=op.f("pk_announcer_firings")),
    )
    with op.batch_alter_table("announcer_firings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_announcer_firings_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("announcer_firings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_announcer_firings_organization_id"))
    op.drop_table("announcer_firings")
    with op.batch_alter_table("announcers", schema=None) as batch_op:
        batch_op.drop_index("ix_announcers_org_event")
        batch_op.drop_index(batch_op.f("ix_announcers_organization_id"))
        batch_op.drop_index(batch_op.f("ix_announcers_name"))
    op.drop_table("announcers")
