"""alexa user tokens: the latest apiAccessToken of each Alexa user (sealed), for reminder calls

Revision ID: 0019_alexa_user_tokens
Revises: 0017
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_alexa_user_tokens"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alexa_user_tokens",
        sa.Column("alexa_user_id", sa.String(length=512), nullable=False),
        sa.Column("token_sealed", sa.Text(), nullable=False),
        sa.Column("api_endpoint", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alexa_user_id", name=op.f("pk_alexa_user_tokens")),
    )
    with op.batch_alter_table("alexa_user_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alexa_user_tokens_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alexa_user_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alexa_user_tokens_expires_at"))
    op.drop_table("alexa_user_tokens")
