"""console: personal console logins of care-team members

Revision ID: 0024_console_users
Revises: 0023_console_sessions
Create Date: 2027-01-02 00:00:00.000000

A console user is a care-team member's own sign-in (user name, scrypt password hash, role),
linked to a provider individual. A console session now comes from an API key or from a console
user: ``key_id`` becomes nullable and ``console_user_id`` names the login.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_console_users"
down_revision: str | Sequence[str] | None = "0023_console_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("username_key", sa.String(length=64), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_console_users_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["individual_id"],
            ["individuals.id"],
            name=op.f("fk_console_users_individual_id_individuals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("username_key", name=op.f("uq_console_users_username_key")),
    )
    with op.batch_alter_table("console_users", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_users_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_console_users_individual_id"), ["individual_id"], unique=False
        )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.alter_column("key_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("console_user_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_console_sessions_console_user_id_console_users"),
            "console_users",
            ["console_user_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(
            batch_op.f("ix_console_sessions_console_user_id"), ["console_user_id"], unique=False
        )


def downgrade() -> None:
    op.execute("DELETE FROM console_sessions WHERE key_id IS NULL")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_sessions_console_user_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_console_sessions_console_user_id_console_users"), type_="foreignkey"
        )
        batch_op.drop_column("console_user_id")
        batch_op.alter_column("key_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("console_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_users_individual_id"))
        batch_op.drop_index(batch_op.f("ix_console_users_organization_id"))
    op.drop_table("console_users")
