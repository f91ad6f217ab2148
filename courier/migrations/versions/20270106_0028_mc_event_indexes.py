"""events: three indexes no query uses

Revision ID: 0028_mc_event_indexes
Revises: 0008
Create Date: 2027-01-06 00:00:00.000000

Every change writes events, a multicast four per recipient (the notification's ``created``, its
delivery's ``accepted``, ``sending`` and ``sent``): each index on ``events`` is paid for on
every one of them. Every query reads an organization's events by ``seq`` (the stream, webhooks,
announcers: ``ix_events_org_seq``), one event by ``id`` (its unique index), or the events of an
individual inside their organization (the purge). Three indexes serve none of them:

- ``ix_events_organization_id``: ``ix_events_org_seq`` starts with the column.
- ``ix_events_type``: the announcers' ``type IN (...)`` is within an organization's ``seq``
  range, read by ``ix_events_org_seq``.
- ``ix_events_occurred_at``: the stream's replay window is a filter on the same range.

Six index entries per event become three (twelve fewer per multicast recipient).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028_mc_event_indexes"
down_revision: str | Sequence[str] | None = "0008"  # the events' branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNUSED = {
    "ix_events_organization_id": ["organization_id"],
    "ix_events_type": ["type"],
    "ix_events_occurred_at": ["occurred_at"],
}


def upgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        for name in UNUSED:
            batch_op.drop_index(name)


def downgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        for name, columns in UNUSED.items():
            batch_op.create_index(name, columns, unique=False)
