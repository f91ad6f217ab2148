"""Seeded bulk data for the messaging benchmark, written straight into the database.

    python bench/messaging_data.py --database-url postgresql+asyncpg://postgres@127.0.0.1/courier_bench

(the database must exist and be migrated; ``bench/messaging.py`` does both). One organization
with a staff key, individuals with their users, and:

- a *big* channel of 10 subscribers holding ``--big-messages`` posted messages (seq 1..N,
  ``last_seq`` = N, a few removed, reactions on the newest), read by the benchmark;
- a *heavy* individual subscribed to ``--heavy-channels`` channels (direct and group channels,
  1..20 messages each, read horizons behind in about a third of them, a few bookmarks);
- ``--posting-channels`` channels of 10 subscribers each, empty, for the posting benchmark.

Everything is drawn from ``random.Random(seed)``: the same seed gives the same rows (ids, texts,
horizons) and the same key secret. PostgreSQL is loaded with ``COPY`` (asyncpg), SQLite with
SQLAlchemy Core ``insert()`` of many rows per statement. Message texts come from a small
corpus whose sentiment and key phrases are computed once per text, as posting would.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Table, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from courier.domains.messaging.analysis import analyse
from courier.models.api_key import ApiKey
from courier.models.individual import Individual
from courier.models.individual_group import (
    IndividualGroup,
    IndividualGroupLeader,
    IndividualGroupMember,
)
from courier.models.messaging import (
    MessagingBookmark,
    MessagingChannel,
    MessagingMessage,
    MessagingReaction,
    MessagingSubscriber,
)
from courier.models.organization import Organization
from courier.models.user import User

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SQLITE_BATCH = 5_000  # rows per INSERT statement on SQLite (well under its variable limit)
COPY_BATCH = 100_000  # rows per COPY on PostgreSQL

CORPUS = [
    "Your lab results came back normal, nothing to worry about.",
    "Please remember to take your blood pressure reading before breakfast.",
    "I have been feeling dizzy since yesterday afternoon, is that a side effect?",
    "Thank you so much for the quick reply, that really helps.",
    "The pharmacy says the prescription has not arrived yet.",
    "Can we move my appointment on Thursday to the morning?",
    "Your physiotherapy session is confirmed for next Monday at 10.",
    "The swelling in my ankle is worse today and it hurts when I walk.",
    "Great news: your A1c dropped to 6.4, keep up the good work!",
    "We need a new consent form signed before the procedure.",
    "I am out of insulin pens, could you send a refill?",
    "Please upload a photo of the wound so the nurse can check healing.",
    "Fasting is required for 8 hours before the blood draw.",
    "My daughter has had a fever of 39 degrees since last night.",
    "The discharge summary is now available in your portal.",
    "I feel much better after changing the dose, thanks.",
    "Reminder: bring your medication list to the visit.",
    "The MRI is scheduled at the imaging center on Oak Street.",
    "I could not sleep because of the cough, it is getting worse.",
    "Your referral to cardiology was approved by insurance.",
    "Is it safe to take ibuprofen with my current medication?",
    "The test was inconclusive; we would like to repeat it next week.",
    "Happy to hear the new inhaler works well for you.",
    "Please call the clinic if the pain becomes severe or you have chest pain.",
    "Your care team has updated the diet plan, see the attached notes.",
    "I missed my dose this morning, should I take it now?",
    "The nurse will call you tomorrow between 2 and 4 pm.",
    "Blood sugar readings this week: 110, 126, 98, 142, 115.",
    "We are sorry for the long wait at your last visit.",
    "Everything looks good on the follow-up scan.",
]


@dataclass
class Manifest:
    """What the load generator needs to know about the loaded data."""

    seed: int
    organization_id: str
    staff_key: str  # the secret of a staff API key
    big_channel_id: str
    big_reader_id: str  # a subscriber of the big channel (the point of view of reads)
    big_messages: int
    heavy_individual_id: str
    heavy_channels: int
    heavy_unread: int
    posting: list[tuple[str, list[str]]] = field(default_factory=list)  # channel, subscribers
    counts: dict[str, int] = field(default_factory=dict)
    load_seconds: float = 0.0

    def save(self, path: Path) -> None:
        path.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, path: Path) -> Manifest:
        raw = orjson.loads(path.read_bytes())
        raw["posting"] = [(c, list(s)) for c, s in raw["posting"]]
        return cls(**raw)


class Ids:
    """Seeded UUIDs (version 4 layout) from the benchmark's random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __call__(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)


class Writer:
    """Bulk inserts: COPY on PostgreSQL, multi-row INSERT on SQLite."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.counts: dict[str, int] = {}

    async def write(self, table: Table, rows: Iterable[dict[str, Any]]) -> None:
        batch_size = COPY_BATCH if self.postgres else SQLITE_BATCH
        for batch in _batches(rows, batch_size):
            if self.postgres:
                await self._copy(table, batch)
            else:
                await self.connection.execute(insert(table), batch)
            name = str(table.name)
            self.counts[name] = self.counts.get(name, 0) + len(batch)

    async def _copy(self, table: Table, batch: list[dict[str, Any]]) -> None:
        columns = list(batch[0])
        records = [tuple(_pg_value(row[name]) for name in columns) for row in batch]
        raw = await self.connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(table.name, records=records, columns=columns)


def _pg_value(value: Any) -> Any:
    # SQLAlchemy's asyncpg dialect exchanges JSON(B) as text: serialise it here.
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def key_secret(rng: random.Random) -> str:
    return "ck_" + base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")


@dataclass
class Texts:
    """The corpus with each text's analysis, computed once (as posting computes it)."""

    texts: list[str]
    sentiments: list[str | None]
    phrases: list[dict[str, Any]]

    @classmethod
    def build(cls) -> Texts:
        analyses = [analyse(text, "en") for text in CORPUS]
        return cls(list(CORPUS), [a.sentiment for a in analyses], [a.phrases for a in analyses])


def message_row(
    org: uuid.UUID,
    ident: uuid.UUID,
    channel: uuid.UUID,
    seq: int,
    author: uuid.UUID,
    user: uuid.UUID,
    texts: Texts,
    pick: int,
    removed: bool,
    at: datetime,
    provider_count_at: int = 0,
) -> dict[str, Any]:
    return {
        "id": ident,
        "organization_id": org,
        "channel_id": channel,
        "seq": seq,
        "provider_count_at": provider_count_at,
        "individual_id": author,
        "user_id": user,
        "message": texts.texts[pick],
        "draft": False,
        "removed": removed,
        "source": None,
        "destination": {},
        "posted_time": at,
        "created_at": at,
        "last_modified_at": at,
        "sentiment": texts.sentiments[pick],
        "phrases": texts.phrases[pick],
        "bulk_message_id": None,
    }


def channel_row(
    org: uuid.UUID,
    ident: uuid.UUID,
    name: str,
    owner: uuid.UUID,
    last_seq: int,
    last_message_id: uuid.UUID | None,
    group: uuid.UUID | None = None,
    provider_count: int = 0,
) -> dict[str, Any]:
    last_at = EPOCH + timedelta(seconds=last_seq) if last_seq else None
    return {
        "id": ident,
        "organization_id": org,
        "name": name,
        "label": None,
        "floating": False,
        "archived": False,
        "subscription_type": "none",
        "event_settings": {},
        "individual_group_id": group,
        "text_number_id": None,
        "observation_id": None,
        "owner_id": owner,
        "created_by": owner,
        "with_sms": False,
        "sms_initial_message": None,
        "sms_initial_message_js": {},
        "last_seq": last_seq,
        "provider_count": provider_count,
        "last_message_id": last_message_id,
        "last_message_at": last_at,
        "created_at": EPOCH,
        "last_modified_at": last_at or EPOCH,
    }


def subscriber_row(
    org: uuid.UUID,
    channel: uuid.UUID,
    individual: uuid.UUID,
    ack_seq: int,
    ack_message_id: uuid.UUID | None,
    admin: bool = False,
    ack_provider_count: int = 0,
) -> dict[str, Any]:
    acked = EPOCH + timedelta(seconds=ack_seq) if ack_seq else None
    return {
        "organization_id": org,
        "channel_id": channel,
        "individual_id": individual,
        "admin": admin,
        "pinned": False,
        "notify": "all",
        "preferences": {},
        "ack_seq": ack_seq,
        "ack_message_id": ack_message_id,
        "ack_provider_count": ack_provider_count,
        "ack_time": acked,
        "ack_user_time": acked,
        "subscribed_at": EPOCH,
    }


def count_subscribers(channels: list[dict[str, Any]], subscribers: list[dict[str, Any]]) -> None:
    """Give each channel row the ``subscriber_count`` of its rows among ``subscribers`` (a
    channel's memberships are written with it)."""
    counted: dict[uuid.UUID, int] = {}
    for row in subscribers:
        counted[row["channel_id"]] = counted.get(row["channel_id"], 0) + 1
    for row in channels:
        row["subscriber_count"] = counted.get(row["id"], 0)


async def load(
    url: str,
    *,
    seed: int = 1,
    individuals: int = 3_000,
    big_messages: int = 1_000_000,
    heavy_channels: int = 5_000,
    posting_channels: int = 200,
) -> Manifest:
    """Write the data set into the (migrated, empty) database at ``url``."""
    started = time.perf_counter()
    rng = random.Random(seed)
    new_id = Ids(rng)
    texts = Texts.build()
    org = new_id()
    secret = key_secret(rng)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            writer = Writer(connection)
            await writer.write(
                Organization.__table__,  # type: ignore[arg-type]
                [
                    {
                        "id": org,
                        "name": f"bench-{seed}",
                        "display_name": "Messaging benchmark",
                        "timezone": "UTC",
                        "created_at": EPOCH,
                        "last_modified_at": EPOCH,
                    }
                ],
            )
            await writer.write(
                ApiKey.__table__,  # type: ignore[arg-type]
                [
                    {
                        "id": new_id(),
                        "organization_id": org,
                        "name": "bench staff",
                        "role": "staff",
                        "secret_hash": hashlib.sha256(secret.encode()).hexdigest(),
                        "secret_prefix": secret[:10],
                        "expires_at": None,
                        "revoked_at": None,
                        "last_used_at": None,
                        "created_by": "master",
                        "created_at": EPOCH,
                        "last_modified_at": EPOCH,
                    }
                ],
            )

            people = [new_id() for _ in range(individuals)]
            users = [new_id() for _ in range(individuals)]
            providers = set(rng.sample(range(individuals), individuals // 5))
            await writer.write(
                Individual.__table__,  # type: ignore[arg-type]
                (
                    {
                        "id": people[n],
                        "organization_id": org,
                        "first_name": f"First{n}",
                        "last_name": f"Last{n}",
                        "preferred_name": None,
                        "birth_date": date(1950, 1, 1) + timedelta(days=rng.randrange(25_000)),
                        "account_type": "provider" if n in providers else "participant",
                        "owner_id": None,
                        "photo": None,
                        "email": f"person{n}@example.org",
                        "phone": None,
                        "locale": "en-US",
                        "tz": "UTC",
                        "extended": {},
                        "created_at": EPOCH,
                        "last_modified_at": EPOCH,
                    }
                    for n in range(individuals)
                ),
            )
            await writer.write(
                User.__table__,  # type: ignore[arg-type]
                (
                    {
                        "id": users[n],
                        "organization_id": org,
                        "username": f"user{n}",
                        "username_key": f"user{n}",
                        "email": f"person{n}@example.org",
                        "email_key": f"person{n}@example.org",
                        "phone": None,
                        "first_name": f"First{n}",
                        "last_name": f"Last{n}",
                        "locale": "en-US",
                        "tz": "UTC",
                        "notifications": [],
                        "sms_mode": "disabled",
                        "primary_individual_id": people[n],
                        "state": "active",
                        "email_verified": True,
                        "phone_verified": False,
                        "phone_unsubscribed": False,
                        "auto_sign_up": False,
                        "communication_preferences": {},
                        "locale_explicit": False,
                        "tz_explicit": False,
                        "last_sync_time": None,
                        "created_at": EPOCH,
                        "last_modified_at": EPOCH,
                    }
                    for n in range(individuals)
                ),
            )
            user_of = dict(zip(people, users, strict=True))
            provider_ids = {people[n] for n in providers}

            channels: list[dict[str, Any]] = []
            subscribers: list[dict[str, Any]] = []

            # The big channel: 10 subscribers, big_messages messages.
            big = new_id()
            big_members = people[:10]
            big_ids = [new_id() for _ in range(big_messages)]
            # The providers' messages up to each seq (index seq; the authors take turns).
            big_providers = [
                0,
                *itertools.accumulate(
                    int(big_members[seq % 10] in provider_ids) for seq in range(1, big_messages + 1)
                ),
            ]
            channels.append(
                channel_row(
                    org,
                    big,
                    "Big channel",
                    big_members[0],
                    big_messages,
                    big_ids[-1],
                    provider_count=big_providers[big_messages],
                )
            )
            for n, member in enumerate(big_members):
                ack = max(0, big_messages - rng.randrange(0, 50))
                subscribers.append(
                    subscriber_row(
                        org,
                        big,
                        member,
                        ack,
                        big_ids[ack - 1] if ack else None,
                        n == 0,
                        ack_provider_count=big_providers[ack],
                    )
                )

            count_subscribers(channels, subscribers)
            await writer.write(MessagingChannel.__table__, channels)  # type: ignore[arg-type]
            await writer.write(MessagingSubscriber.__table__, subscribers)  # type: ignore[arg-type]
            channels, subscribers = [], []

            def big_rows() -> Iterator[dict[str, Any]]:
                for seq in range(1, big_messages + 1):
                    author = big_members[seq % 10]
                    yield message_row(
                        org,
                        big_ids[seq - 1],
                        big,
                        seq,
                        author,
                        user_of[author],
                        texts,
                        rng.randrange(len(CORPUS)),
                        removed=rng.random() < 0.01,
                        at=EPOCH + timedelta(seconds=seq),
                        provider_count_at=big_providers[seq],
                    )

            await writer.write(MessagingMessage.__table__, big_rows())  # type: ignore[arg-type]
            reactions = []
            for message_id in rng.sample(big_ids[-1000:], 200):
                reactions.append(
                    {
                        "id": new_id(),
                        "organization_id": org,
                        "message_id": message_id,
                        "individual_id": rng.choice(big_members),
                        "reaction_type": rng.choice(["like", "love", "wow"]),
                        "created_at": EPOCH,
                    }
                )
            await writer.write(MessagingReaction.__table__, reactions)  # type: ignore[arg-type]

            # The heavy individual: subscribed to heavy_channels channels.
            heavy = people[10]
            others = people[11:]
            groups: list[tuple[uuid.UUID, list[uuid.UUID]]] = []
            for _ in range(50):
                groups.append((new_id(), [heavy, *rng.sample(others, 4)]))
            await writer.write(
                IndividualGroup.__table__,  # type: ignore[arg-type]
                [
                    {
                        "id": group,
                        "organization_id": org,
                        "name": f"Care team {n}",
                        "parent_id": None,
                        "last_sync_time": None,
                        "created_at": EPOCH,
                        "last_modified_at": EPOCH,
                    }
                    for n, (group, _members) in enumerate(groups)
                ],
            )
            await writer.write(
                IndividualGroupMember.__table__,  # type: ignore[arg-type]
                [
                    {"organization_id": org, "group_id": group, "individual_id": member}
                    for group, members in groups
                    for member in members
                ],
            )
            await writer.write(
                IndividualGroupLeader.__table__,  # type: ignore[arg-type]
                [
                    {"organization_id": org, "group_id": group, "individual_id": members[1]}
                    for group, members in groups
                ],
            )
            heavy_messages: list[dict[str, Any]] = []
            bookmarks: list[dict[str, Any]] = []
            heavy_unread = 0
            for n in range(heavy_channels):
                channel = new_id()
                group: uuid.UUID | None = None
                if n % 10 == 0:  # one in ten: a care team's channel
                    group, members = groups[(n // 10) % len(groups)]
                    members = list(members)
                else:  # direct (one other) or a small group (2 or 3 others)
                    members = [heavy, *rng.sample(others, rng.choice([1, 1, 1, 2, 3]))]
                count = rng.randint(1, 20)
                ids = [new_id() for _ in range(count)]
                # Spread the channels' activity over a year: the inbox order.
                base = EPOCH + timedelta(minutes=rng.randrange(500_000))
                prefix = [0]
                for seq, ident in enumerate(ids, start=1):
                    author = rng.choice(members)
                    prefix.append(prefix[-1] + int(author in provider_ids))
                    heavy_messages.append(
                        message_row(
                            org,
                            ident,
                            channel,
                            seq,
                            author,
                            user_of[author],
                            texts,
                            rng.randrange(len(CORPUS)),
                            removed=False,
                            at=base + timedelta(seconds=seq),
                            provider_count_at=prefix[seq],
                        )
                    )
                last_row = heavy_messages[-1]
                row = channel_row(
                    org, channel, f"Channel {n}", heavy, count, ids[-1], group, prefix[count]
                )
                row["last_message_at"] = last_row["posted_time"]
                row["last_modified_at"] = last_row["posted_time"]
                channels.append(row)
                for member in members:
                    if member == heavy:
                        behind = rng.randint(1, min(count, 6)) if rng.random() < 0.35 else 0
                        heavy_unread += behind
                        ack = count - behind
                    else:
                        ack = rng.randint(0, count)
                    subscribers.append(
                        subscriber_row(
                            org,
                            channel,
                            member,
                            ack,
                            ids[ack - 1] if ack else None,
                            member == heavy,
                            ack_provider_count=prefix[ack],
                        )
                    )
                if n % 50 == 0:
                    bookmarks.append(
                        {
                            "id": new_id(),
                            "organization_id": org,
                            "channel_id": channel,
                            "message_id": ids[0],
                            "individual_id": heavy,
                            "created_at": EPOCH,
                        }
                    )

            # Channels of 10 subscribers for posting (empty: the benchmark fills them).
            posting: list[tuple[str, list[str]]] = []
            for n in range(posting_channels):
                channel = new_id()
                members = rng.sample(others, 10)
                channels.append(channel_row(org, channel, f"Posting {n}", members[0], 0, None))
                for member in members:
                    subscribers.append(subscriber_row(org, channel, member, 0, None))
                posting.append((str(channel), [str(m) for m in members]))

            count_subscribers(channels, subscribers)
            await writer.write(MessagingChannel.__table__, channels)  # type: ignore[arg-type]
            await writer.write(MessagingSubscriber.__table__, subscribers)  # type: ignore[arg-type]
            await writer.write(MessagingMessage.__table__, heavy_messages)  # type: ignore[arg-type]
            await writer.write(MessagingBookmark.__table__, bookmarks)  # type: ignore[arg-type]
            counts = dict(writer.counts)
        # Fresh statistics, so the planner sees the data as it is (autovacuum would, later).
        async with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text("VACUUM (ANALYZE)"))
            else:
                await connection.execute(text("ANALYZE"))
                await connection.commit()
    finally:
        await engine.dispose()
    return Manifest(
        seed=seed,
        organization_id=str(org),
        staff_key=secret,
        big_channel_id=str(big),
        big_reader_id=str(big_members[1]),
        big_messages=big_messages,
        heavy_individual_id=str(heavy),
        heavy_channels=heavy_channels,
        heavy_unread=heavy_unread,
        posting=posting,
        counts=counts,
        load_seconds=time.perf_counter() - started,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True, help="a migrated, empty database")
    parser.add_argument("--manifest", type=Path, default=Path("messaging-manifest.json"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--big-messages", type=int, default=1_000_000)
    parser.add_argument("--heavy-channels", type=int, default=5_000)
    parser.add_argument("--posting-channels", type=int, default=200)
    args = parser.parse_args()
    make_url(args.database_url)  # fail early on a malformed URL
    manifest = await load(
        args.database_url,
        seed=args.seed,
        big_messages=args.big_messages,
        heavy_channels=args.heavy_channels,
        posting_channels=args.posting_channels,
    )
    manifest.save(args.manifest)
    print(f"loaded in {manifest.load_seconds:.1f} s: {manifest.counts}")


if __name__ == "__main__":
    asyncio.run(main())
