"""messaging: the activity-order index of channels

Revision ID: 0029_messaging_channel_activity
Revises: 0028_message_order_restored
Create Date: 2027-01-07 00:00:00.000000

A caller's channels newest activity first (``GET /v1/messaging-channels/?individual-id=…``,
the default order: ``coalesce(last_message_at, created_at) DESC, id DESC``) sorted every
channel of the caller for each page: 5,000 of them for an individual in 5,000 channels. With
``(organization_id, coalesce(last_message_at, created_at), id)`` the database walks the
organization's channels backwards in that order, checks each one's membership through the
subscribers' index, and stops after the page. Created with plain SQL so that SQLite (which
SQLAlchemy cannot reflect expression indexes from) and PostgreSQL get the same definition.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029_messaging_channel_activity"
down_revision: str | Sequence[str] | None = "0028_message_order_restored"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_messaging_channels_activity ON messaging_channels "
        "(organization_id, coalesce(last_message_at, created_at), id)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_messaging_channels_activity")
