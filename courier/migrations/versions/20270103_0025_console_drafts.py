"""console: a locked session keeps the page and the unsent reply it locked on

Revision ID: 0025_console_drafts
Revises: 0024_console_users
Create Date: 2027-01-03 00:00:00.000000

When the console page locks for inactivity it hands its unsent reply (sealed with the
installation's key) and its path to the session row; signing in again on that browser as the
same key or login carries them to the new session, which opens that page with the draft.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_console_drafts"
down_revision: str | Sequence[str] | None = "0024_console_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("console_sessions") as batch:
        batch.add_column(sa.Column("locked_path", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("draft_sealed", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("console_sessions") as batch:
        batch.drop_column("draft_sealed")
        batch.drop_column("locked_path")
