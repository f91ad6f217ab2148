"""sms bridge: a channel's PHI-safe setting; the unapplied inbound events, in arrival order

Revision ID: 0019_sms_bridge
Revises: 0015
Create Date: 2026-12-10 09:00:00.000000

``messaging_channels.sms_phi_safe``: whether texts of the channel's provider posts carry a
neutral line and a link instead of the message (NULL: the organization's ``sms-phi-safe``).
``ix_provider_inbound_unapplied``: the inbound events not yet applied, by organization and
arrival, so a text received waits for the earlier ones of the same phone (replies are posted
into a channel in the order they were sent) without scanning every callback ever received.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_sms_bridge"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNAPPLIED = sa.text("applied_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("messaging_channels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sms_phi_safe", sa.Boolean(), nullable=True))
    op.create_index(
        "ix_provider_inbound_unapplied",
        "provider_inbound",
        ["organization_id", "received_at"],
        unique=False,
        postgresql_where=UNAPPLIED,
        sqlite_where=UNAPPLIED,
    )


def downgrade() -> None:
    op.drop_index("ix_provider_inbound_unapplied", table_name="provider_inbound")
    with op.batch_alter_table("messaging_channels", schema=None) as batch_op:
        batch_op.drop_column("sms_phi_safe")
