"""messaging bookmarks of the organization

Revision ID: 0018_org_bookmarks
Revises: 0007
Create Date: 2026-12-03 12:30:00.000000

The seed's request sample creates a bookmark with an API key and no ``individual-id``: such a
bookmark is the organization's. ``individual_id`` becomes nullable (null: the organization's
bookmark) and ``key_id`` records the API key that made a bookmark; every bookmark has one or
the other.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_org_bookmarks"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messaging_bookmarks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.Uuid(), nullable=True))
        batch_op.alter_column("individual_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.create_check_constraint(
            op.f("ck_messaging_bookmarks_owner"), "individual_id IS NOT NULL OR key_id IS NOT NULL"
        )


def downgrade() -> None:
    # The organization's bookmarks have no individual to belong to in the older schema.
    op.execute(sa.text("DELETE FROM messaging_bookmarks WHERE individual_id IS NULL"))
    with op.batch_alter_table("messaging_bookmarks", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messaging_bookmarks_owner"), type_="check")
        batch_op.alter_column("individual_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("key_id")
