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
    with op.batch_alter_table("messaging_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("analyzed", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_messages", schema=None) as batch_op:
        batch_op.drop_column("analyzed")
