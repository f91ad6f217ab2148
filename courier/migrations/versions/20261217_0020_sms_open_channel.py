"""sms open-channel: the channel a text from an unknown phone opened, one per phone

Revision ID: 0020_sms_open_channel
Revises: 0019_sms_bridge
Create Date: 2026-12-17 09:00:00.000000

``text_unknown_openings``: a number whose ``events.unknown-number`` action is ``open-channel``
makes an individual and a messaging channel for a phone nobody knows; this row records them,
and its unique key (organization, phone) makes a replayed webhook or two first texts applied at
once open exactly one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_sms_open_channel"
down_revision: str | Sequence[str] | None = "0019_sms_bridge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "text_unknown_openings"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("number_id", sa.Uuid(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["text_account_numbers.id"],
            name=op.f("fk_text_unknown_openings_number_id_text_account_numbers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_text_unknown_openings_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["messaging_channels.id"],
            name=op.f("fk_text_unknown_openings_channel_id_messaging_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_text_unknown_openings_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_unknown_openings")),
        sa.UniqueConstraint(
            "organization_id", "phone", name=op.f("uq_text_unknown_openings_organization_id_phone")
        ),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for column in ("number_id", "individual_id", "channel_id", "organization_id"):
            batch_op.create_index(batch_op.f(f"ix_{TABLE}_{column}"), [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for column in ("number_id", "individual_id", "channel_id", "organization_id"):
            batch_op.drop_index(batch_op.f(f"ix_{TABLE}_{column}"))
    op.drop_table(TABLE)
