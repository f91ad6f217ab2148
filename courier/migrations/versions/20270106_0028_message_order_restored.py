"""messaging: the list-order index of a channel's messages, restored where it was lost

Revision ID: 0028_message_order_restored
Revises: 0023_message_analysis
Create Date: 2027-01-06 00:00:00.000000

On SQLite, ``0023_message_analysis`` added its column through a batch operation, which copies
the table into a new one from its reflected definition; SQLAlchemy cannot reflect an index on
an expression, so the copy came without ``ix_messaging_messages_channel_order`` (revision
``0013``), and the newest page of a channel sorted the whole channel (about 40 ms for 20,000
messages, growing with the channel). Here the index is created again where it is missing
(PostgreSQL never lost it: its ``ALTER TABLE`` keeps indexes). ``0023`` now adds its column
without copying the table, so a database migrated from scratch keeps the index throughout.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028_message_order_restored"
down_revision: str | Sequence[str] | None = "0023_message_analysis"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_messaging_messages_channel_order "
        "ON messaging_messages (channel_id, coalesce(seq, 2147483647), id)"
    )


def downgrade() -> None:
    pass  # the index is 0013's: it stays until that revision is downgraded
