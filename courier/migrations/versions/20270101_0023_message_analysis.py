"""messaging: whether a message's sentiment and key phrases have been computed

Revision ID: 0023_message_analysis
Revises: 0013
Create Date: 2027-01-01 00:00:00.000000

Sentiment and key phrases are computed by a job after the post (or the edit) commits, no longer
in the request. ``analyzed`` is false from the post until that job has run; messages that
existed before this revision were analysed in their requests, so they are true.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_message_analysis"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not a batch operation: on SQLite that copies the table from its reflected definition,
    # which loses the expression index of 0013 (see 0028_message_order_restored). SQLite adds
    # a NOT NULL column with a constant default in place.
    op.add_column(
        "messaging_messages",
        sa.Column("analyzed", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    with op.batch_alter_table("messaging_messages", schema=None) as batch_op:
        batch_op.drop_column("analyzed")
    # SQLite's batch copy leaves the expression index of 0013 behind: put it back.
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_messaging_messages_channel_order "
        "ON messaging_messages (channel_id, coalesce(seq, 2147483647), id)"
    )
