"""messaging: each channel's count of subscribers, for the summary's group split

Revision ID: 0031_messaging_subscriber_counts
Revises: 0030_messaging_provider_counts
Create Date: 2027-01-09 00:00:00.000000

A communication summary splits the unread messages into those of *group* channels (with an
individual group, or more than two subscribers) and the rest: it counted, for each unread
channel without a group, that channel's memberships (1,593 index probes for an individual in
5,000 channels). ``messaging_channels.subscriber_count`` keeps that count (every row of
``messaging_subscribers`` of the channel), maintained by the writes that insert or delete
memberships. Existing channels are counted here; the same SQL on PostgreSQL and SQLite. The
column is added and dropped in place (see ``0030_messaging_provider_counts``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031_messaging_subscriber_counts"
down_revision: str | Sequence[str] | None = "0030_messaging_provider_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "messaging_channels",
        sa.Column("subscriber_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE messaging_channels SET subscriber_count = counted.n "
        "FROM (SELECT channel_id, count(*) AS n FROM messaging_subscribers "
        "GROUP BY channel_id) AS counted "
        "WHERE messaging_channels.id = counted.channel_id"
    )


def downgrade() -> None:
    op.drop_column("messaging_channels", "subscriber_count")
