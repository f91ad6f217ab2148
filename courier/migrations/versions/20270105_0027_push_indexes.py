"""push indexes: fewer index entries per recipient of a multicast

Revision ID: 0027_push_indexes
Revises: 0014, 0019_fanouts, 0022_user_notifications
Create Date: 2027-01-05 00:00:00.000000

A multicast writes, per recipient, a user notification, a delivery (then updates it twice,
each update a new version with its own index entries), three delivery history rows and a
fan-out target (then updates it): every index on those tables is paid for many times per
recipient. Three indexes by organization alone go:

- ``user_notifications``: its other indexes start with ``organization_id``.
- ``delivery_events`` and ``fanout_targets``: read by delivery, by fan-out or by target only
  (deleting an organization scans them once).

(``deliveries`` keeps its own: the console's delivery log reads an organization's deliveries by
it, and a composite ``organization_id, resource_type, resource_id`` index in place of it and of
the resources' made a batch's pending pushes the statement PostgreSQL spent most time in,
bench/README.md, multicasts G.)
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027_push_indexes"
# The revisions that made the three tables (the history is a graph: one head per domain).
down_revision: str | Sequence[str] | None = ("0014", "0019_fanouts", "0022_user_notifications")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORGANIZATION_ONLY = ("user_notifications", "delivery_events", "fanout_targets")


def upgrade() -> None:
    for table in ORGANIZATION_ONLY:
        op.drop_index(f"ix_{table}_organization_id", table_name=table)


def downgrade() -> None:
    for table in ORGANIZATION_ONLY:
        op.create_index(f"ix_{table}_organization_id", table, ["organization_id"])
