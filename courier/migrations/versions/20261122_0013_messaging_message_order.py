"""messaging: index of a channel's messages in list order

Revision ID: 0013
Revises: 0007
Create Date: 2026-11-22 23:59:00.000000

``GET /v1/messaging-messages/?channel-id=...`` lists newest first by
``coalesce(seq, 2147483647) DESC, id DESC`` (drafts first). With this index the database walks
the channel's messages backwards and stops after a page, instead of sorting the whole channel.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messaging_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_messages_channel_order",
            ["channel_id", sa.text("coalesce(seq, 2147483647)"), "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_messages_channel_order")
