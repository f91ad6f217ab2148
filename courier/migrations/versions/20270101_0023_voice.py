"""voice: lines (settings), their calls, queue entries and agents, recordings, tasks

Revision ID: 0023_voice
Revises: 0020_sms_open_channel
Create Date: 2027-01-01 00:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023_voice"
down_revision: str | Sequence[str] | None = "0020_sms_open_channel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def _tenant(table: str) -> list[Any]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f(f"fk_{table}_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def _setting_fk(table: str) -> Any:
    return sa.ForeignKeyConstraint(
        ["setting_id"],
        ["voice_settings.id"],
        name=op.f(f"fk_{table}_setting_id_voice_settings"),
        ondelete="CASCADE",
    )


def _timestamps() -> list[Any]:
    return [
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_modified_at", _TS, nullable=False),
    ]


def _org_index(table: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f(f"ix_{table}_organization_id"), ["organization_id"], unique=False
        )


def upgrade() -> None:
    op.create_table(
        "voice_settings",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("phone_number", sa.String(length=20), nullable=False),
        sa.Column("forward_number", sa.String(length=20), nullable=True),
        sa.Column("greeting_message", sa.String(length=1000), nullable=True),
        sa.Column("wait_message", sa.String(length=1000), nullable=True),
        sa.Column("recording_message", sa.String(length=1000), nullable=True),
        sa.Column("after_hours_message", sa.String(length=1000), nullable=True),
        sa.Column("recording_enabled", sa.Boolean(), nullable=False),
        sa.Column("business_hours", _JSON, nullable=True),
        sa.Column("line_state", sa.String(length=16), nullable=False),
        sa.Column("line_error", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *_timestamps(),
        *_tenant("voice_settings"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["text_accounts.id"],
            name=op.f("fk_voice_settings_account_id_text_accounts"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("phone_number", name=op.f("uq_voice_settings_phone_number")),
    )
    _org_index("voice_settings")
    with op.batch_alter_table("voice_settings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_voice_settings_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "voice_line_calls",
        sa.Column("setting_id", sa.Uuid(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("caller", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        *_tenant("voice_line_calls"),
        _setting_fk("voice_line_calls"),
        sa.UniqueConstraint("call_sid", name=op.f("uq_voice_line_calls_call_sid")),
    )
    _org_index("voice_line_calls")
    with op.batch_alter_table("voice_line_calls", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_voice_line_calls_setting_id"), ["setting_id"], unique=False
        )

    op.create_table(
        "voice_queue_entries",
        sa.Column("setting_id", sa.Uuid(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("enqueued_at", _TS, nullable=False),
        sa.Column("connected_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        *_timestamps(),
        *_tenant("voice_queue_entries"),
        _setting_fk("voice_queue_entries"),
        sa.UniqueConstraint("call_sid", name=op.f("uq_voice_queue_entries_call_sid")),
    )
    _org_index("voice_queue_entries")
    with op.batch_alter_table("voice_queue_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_voice_queue_entries_waiting",
            ["setting_id", "state", "enqueued_at", "id"],
            unique=False,
        )

    op.create_table(
        "voice_queue_agents",
        sa.Column("setting_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("individual_id", sa.Uuid(), nullable=True),
        sa.Column("use_pstn", sa.Boolean(), nullable=False),
        sa.Column("phone_number", sa.String(length=20), nullable=True),
        sa.Column("identity", sa.String(length=121), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("free_since", _TS, nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("left_at", _TS, nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *_timestamps(),
        *_tenant("voice_queue_agents"),
        _setting_fk("voice_queue_agents"),
    )
    _org_index("voice_queue_agents")
    with op.batch_alter_table("voice_queue_agents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_voice_queue_agents_free", ["setting_id", "state", "free_since"], unique=False
        )

    op.create_table(
        "voice_recordings",
        sa.Column("setting_id", sa.Uuid(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("recording_sid", sa.String(length=64), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("individual_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("storage_key", sa.String(length=512), nullable=True),
        sa.Column("transcription", sa.Text(), nullable=True),
        sa.Column("transcription_state", sa.String(length=16), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("download_count", sa.Integer(), nullable=False),
        *_timestamps(),
        *_tenant("voice_recordings"),
        _setting_fk("voice_recordings"),
        sa.UniqueConstraint("recording_sid", name=op.f("uq_voice_recordings_recording_sid")),
    )
    _org_index("voice_recordings")
    with op.batch_alter_table("voice_recordings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_voice_recordings_individual_id"), ["individual_id"], unique=False
        )
        batch_op.create_index(
            "ix_voice_recordings_setting_created", ["setting_id", "created_at"], unique=False
        )

    op.create_table(
        "voice_tasks",
        sa.Column("setting_id", sa.Uuid(), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("kwargs", _JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", _JSON, nullable=True),
        sa.Column("error_message", sa.String(length=500), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *_timestamps(),
        *_tenant("voice_tasks"),
        _setting_fk("voice_tasks"),
    )
    _org_index("voice_tasks")
    with op.batch_alter_table("voice_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_voice_tasks_setting_id"), ["setting_id"], unique=False)


def downgrade() -> None:
    for table in (
        "voice_tasks",
        "voice_recordings",
        "voice_queue_agents",
        "voice_queue_entries",
        "voice_line_calls",
        "voice_settings",
    ):
        op.drop_table(table)
