"""Migrations 0030_messaging_provider_counts and 0031_messaging_subscriber_counts: the prefix
counts of providers' messages are backfilled from the messages there are (their authors'
account types at the migration), each channel's subscriber count from its memberships, and
both removed again on downgrade.

Runs on a database of its own (a fresh SQLite file, or a fresh PostgreSQL database next to
``COURIER_TEST_DATABASE_URL``): migrated to the heads, taken back to before the revision,
filled as the old code left it, then upgraded again.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from courier.config import Settings
from courier.core.migrate import alembic_config, upgrade
from courier.models.individual import Individual
from courier.models.organization import Organization

BEFORE = "0029_messaging_channel_activity"
T0 = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)

# The messaging tables as 0029 left them (only the columns written here; no Python-side
# defaults, so nothing names a column 0029 does not have). Organizations and individuals are
# as the models say.
ORGS: Any = Organization.__table__
PEOPLE: Any = Individual.__table__
CHANNELS = sa.table(
    "messaging_channels",
    *(sa.column(n, sa.Uuid()) for n in ("id", "organization_id")),
    *(sa.column(n, sa.Boolean()) for n in ("floating", "archived", "with_sms")),
    sa.column("subscription_type", sa.String()),
    *(sa.column(n, sa.JSON()) for n in ("event_settings", "sms_initial_message_js")),
    sa.column("last_seq", sa.Integer()),
    *(sa.column(n, sa.DateTime(timezone=True)) for n in ("created_at", "last_modified_at")),
)
SUBSCRIBERS = sa.table(
    "messaging_subscribers",
    *(sa.column(n, sa.Uuid()) for n in ("organization_id", "channel_id", "individual_id")),
    *(sa.column(n, sa.Boolean()) for n in ("admin", "pinned")),
    sa.column("notify", sa.String()),
    sa.column("preferences", sa.JSON()),
    sa.column("ack_seq", sa.Integer()),
    sa.column("subscribed_at", sa.DateTime(timezone=True)),
)
MESSAGES = sa.table(
    "messaging_messages",
    *(sa.column(n, sa.Uuid()) for n in ("id", "organization_id", "channel_id", "individual_id")),
    sa.column("seq", sa.Integer()),
    sa.column("message", sa.Text()),
    *(sa.column(n, sa.Boolean()) for n in ("draft", "removed", "analyzed")),
    *(sa.column(n, sa.JSON()) for n in ("destination", "phrases")),
    *(sa.column(n, sa.DateTime(timezone=True)) for n in ("created_at", "last_modified_at")),
)


async def run(url: str, *statements: Any) -> list[list[Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            found = []
            for statement in statements:
                result = await connection.execute(statement)
                found.append([tuple(row) for row in result] if result.returns_rows else [])
            return found
    finally:
        await engine.dispose()


async def seed(url: str) -> dict[str, uuid.UUID]:
    """A provider and a patient: channel ``a`` with messages by provider, patient, provider,
    (a draft), provider, the patient's horizon at 2, the provider's at 4; channel ``b``
    without messages."""
    ids = {name: uuid.uuid4() for name in ("org", "doc", "pat", "a", "b")}
    org, doc, pat = ids["org"], ids["doc"], ids["pat"]
    stamps = {"created_at": T0, "last_modified_at": T0}
    people = [
        {"id": ident, "organization_id": org, "first_name": "P", "last_name": "Q",
         "account_type": kind, "extended": {}}
        for ident, kind in ((doc, "provider"), (pat, "participant"))
    ]  # fmt: skip
    channels = [
        {"id": ids[name], "organization_id": org, "floating": False, "archived": False,
         "with_sms": False, "subscription_type": "none", "event_settings": {},
         "sms_initial_message_js": {}, "last_seq": last, **stamps}
        for name, last in (("a", 4), ("b", 0))
    ]  # fmt: skip
    subscribers = [
        {"organization_id": org, "channel_id": channel, "individual_id": person, "admin": False,
         "pinned": False, "notify": "all", "preferences": {}, "ack_seq": ack,
         "subscribed_at": T0}
        for channel, person, ack in ((ids["a"], pat, 2), (ids["a"], doc, 4), (ids["b"], pat, 0))
    ]  # fmt: skip
    messages = [
        {"id": uuid.uuid4(), "organization_id": org, "channel_id": ids["a"], "individual_id": who,
         "seq": seq, "message": "m", "draft": seq is None, "removed": False, "analyzed": True,
         "destination": {}, "phrases": {}, **stamps}
        for seq, who in ((1, doc), (2, pat), (3, doc), (None, doc), (4, doc))
    ]  # fmt: skip
    await run(
        url,
        sa.insert(ORGS).values(id=org, name="Migrated"),
        sa.insert(PEOPLE).values(people),
        sa.insert(CHANNELS).values(channels),
        sa.insert(SUBSCRIBERS).values(subscribers),
        sa.insert(MESSAGES).values(messages),
    )
    return ids


def test_provider_counts_are_backfilled_and_dropped(fresh_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=fresh_url, data_dir=tmp_path, run_worker=False)
    upgrade(settings)
    command.downgrade(alembic_config(fresh_url), BEFORE)
    ids = asyncio.run(seed(fresh_url))

    upgrade(settings)
    channel_counts, message_counts, horizon_counts = asyncio.run(
        run(
            fresh_url,
            sa.text("SELECT id, provider_count FROM messaging_channels"),
            sa.text("SELECT seq, provider_count_at FROM messaging_messages"),
            sa.text(
                "SELECT channel_id, individual_id, ack_provider_count FROM messaging_subscribers"
            ),
        )
    )

    def uid(value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    assert {uid(c): n for c, n in channel_counts} == {ids["a"]: 3, ids["b"]: 0}
    assert sorted(message_counts, key=lambda r: (r[0] is None, r[0] or 0)) == [
        (1, 1),
        (2, 1),
        (3, 2),
        (4, 3),
        (None, None),  # a draft has none until it is posted
    ]
    assert {(uid(c), uid(i)): n for c, i, n in horizon_counts} == {
        (ids["a"], ids["pat"]): 1,
        (ids["a"], ids["doc"]): 3,
        (ids["b"], ids["pat"]): 0,
    }

    command.downgrade(alembic_config(fresh_url), BEFORE)
    inspect = (
        "SELECT name FROM pragma_table_info(:t)"
        if fresh_url.startswith("sqlite")
        else "SELECT column_name FROM information_schema.columns WHERE table_name = :t"
    )
    left = asyncio.run(
        run(
            fresh_url,
            *(
                sa.text(inspect).bindparams(t=table)
                for table in ("messaging_channels", "messaging_messages", "messaging_subscribers")
            ),
        )
    )
    names = {row[0] for rows in left for row in rows}
    assert not names & {"provider_count", "provider_count_at", "ack_provider_count"}
    assert "last_seq" in names


def test_subscriber_counts_are_backfilled_and_dropped(fresh_url: str, tmp_path: Path) -> None:
    """0031_messaging_subscriber_counts: each channel's memberships counted (0 for none)."""
    settings = Settings(database_url=fresh_url, data_dir=tmp_path, run_worker=False)
    upgrade(settings)
    command.downgrade(alembic_config(fresh_url), "0030_messaging_provider_counts")
    ids = asyncio.run(seed(fresh_url))  # a: the patient and the doctor; b: the patient
    empty, third = uuid.uuid4(), uuid.uuid4()
    asyncio.run(
        run(
            fresh_url,
            sa.insert(CHANNELS).values(
                id=empty, organization_id=ids["org"], floating=False, archived=False,
                with_sms=False, subscription_type="none", event_settings={},
                sms_initial_message_js={}, last_seq=0, created_at=T0, last_modified_at=T0,
            ),
            sa.insert(PEOPLE).values(
                id=third, organization_id=ids["org"], first_name="R", last_name="S",
                account_type="participant", extended={},
            ),
            sa.insert(SUBSCRIBERS).values(
                organization_id=ids["org"], channel_id=ids["a"], individual_id=third,
                admin=False, pinned=False, notify="all", preferences={}, ack_seq=0,
                subscribed_at=T0,
            ),
        )
    )  # fmt: skip

    upgrade(settings)
    (counted,) = asyncio.run(
        run(fresh_url, sa.text("SELECT id, subscriber_count FROM messaging_channels"))
    )
    found = {c if isinstance(c, uuid.UUID) else uuid.UUID(str(c)): n for c, n in counted}
    assert found == {ids["a"]: 3, ids["b"]: 1, empty: 0}

    command.downgrade(alembic_config(fresh_url), "0030_messaging_provider_counts")
    inspect = (
        "SELECT name FROM pragma_table_info('messaging_channels')"
        if fresh_url.startswith("sqlite")
        else "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'messaging_channels'"
    )
    (left,) = asyncio.run(run(fresh_url, sa.text(inspect)))
    names = {row[0] for row in left}
    assert "subscriber_count" not in names and "provider_count" in names
