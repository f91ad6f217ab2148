"""messaging: prefix counts of providers' messages, for the summary's provider-messages

Revision ID: 0030_messaging_provider_counts
Revises: 0029_messaging_channel_activity
Create Date: 2027-01-08 00:00:00.000000

A communication summary's ``provider-messages`` counted, for each channel with unread messages,
the providers' messages of the unread range through the ``(channel_id, seq)`` index: for an
individual in 5,000 channels, ~1,750 index probes per request. Like the seq counters
(unread = ``last_seq - ack_seq``), three prefix counts make it a sum over memberships:

- ``messaging_channels.provider_count``: how many of the channel's posted messages were
  written by a provider (the author's account type when the message was posted);
- ``messaging_messages.provider_count_at``: the channel's ``provider_count`` just after the
  message (null while a draft);
- ``messaging_subscribers.ack_provider_count``: the count at the subscriber's ``ack_seq``.

Existing data is counted from the authors' account types as they are now (the only record
there is): a window sum per channel in seq order for the messages, then each channel's and
each horizon's value is that of the message at its ``last_seq`` / ``ack_seq`` (0 for none).
The same SQL on PostgreSQL and SQLite (3.33+: ``UPDATE ... FROM``, window functions). Columns
are added in place, not by a batch copy (which on SQLite loses the expression indexes, see
``0028_message_order_restored``); SQLite 3.35+ drops them in place too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030_messaging_provider_counts"
down_revision: str | Sequence[str] | None = "0029_messaging_channel_activity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(horizon: str, channel: str) -> str:
    """The ``provider_count_at`` of the newest posted message of ``channel`` at or below
    ``horizon`` (one step backwards through the ``(channel_id, seq)`` index), 0 for none."""
    return (
        "coalesce((SELECT m.provider_count_at FROM messaging_messages AS m "
        f"WHERE m.channel_id = {channel} AND m.seq IS NOT NULL AND m.seq <= {horizon} "
        "ORDER BY m.seq DESC LIMIT 1), 0)"
    )


def upgrade() -> None:
    op.add_column(
        "messaging_channels",
        sa.Column("provider_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("messaging_messages", sa.Column("provider_count_at", sa.Integer()))
    op.add_column(
        "messaging_subscribers",
        sa.Column("ack_provider_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE messaging_messages SET provider_count_at = counted.n "
        "FROM (SELECT m.id AS id, sum(CASE WHEN i.account_type = 'provider' THEN 1 ELSE 0 END) "
        "OVER (PARTITION BY m.channel_id ORDER BY m.seq "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n "
        "FROM messaging_messages AS m LEFT JOIN individuals AS i "
        "ON i.id = m.individual_id AND i.organization_id = m.organization_id "
        "WHERE m.seq IS NOT NULL) AS counted "
        "WHERE messaging_messages.id = counted.id"
    )
    op.execute(
        "UPDATE messaging_channels SET provider_count = "
        + _at("messaging_channels.last_seq", "messaging_channels.id")
        + " WHERE last_seq > 0"
    )
    op.execute(
        "UPDATE messaging_subscribers SET ack_provider_count = "
        + _at("messaging_subscribers.ack_seq", "messaging_subscribers.channel_id")
        + " WHERE ack_seq > 0"
    )


def downgrade() -> None:
    op.drop_column("messaging_subscribers", "ack_provider_count")
    op.drop_column("messaging_messages", "provider_count_at")
    op.drop_column("messaging_channels", "provider_count")
