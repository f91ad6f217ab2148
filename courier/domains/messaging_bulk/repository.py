"""All SQL of bulk messages, written once and tenant-scoped.

Bulk messages and their attachments are this domain's tables (uploading, cleaning up and
purging attachments is the generic upload's, :mod:`courier.uploads`; what a bulk message reads
of them is here); its recipients are the targets of its fan-out (``fanouts`` /
``fanout_targets``, :mod:`courier.jobs.fanout`), read here for what the bulk message shows (who
was skipped, and why). Direct channels are looked up here and created by the channel service
(:func:`courier.domains.messaging.channels.create_channels`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, case, false, func, insert, or_, select, text
from sqlalchemy import String as SqlString
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.db import is_postgres
from courier.core.tenancy import in_organization, scoped
from courier.core.time import utcnow
from courier.domains.messaging import repository as messaging
from courier.jsonapi.context import Context
from courier.models.fanout import Fanout, FanoutTarget, TargetState
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroupMember
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from courier.models.messaging_attachment import AttachmentStatus, MessagingAttachment
from courier.models.messaging_bulk import MessagingBulkAttachment, MessagingBulkMessage

CHUNK = messaging.CHUNK  # ids per IN (...)
INSERT_BATCH = 1000


# --- bulk messages ---------------------------------------------------------------------------


async def load_bulk(
    session: AsyncSession,
    organization_id: uuid.UUID,
    ident: uuid.UUID,
    *,
    for_update: bool = False,
) -> MessagingBulkMessage | None:
    stmt = scoped(select(MessagingBulkMessage), MessagingBulkMessage, organization_id).where(
        MessagingBulkMessage.id == ident
    )
    if for_update and is_postgres(session):
        stmt = stmt.with_for_update()
    found: MessagingBulkMessage | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return found


def include_posted_filter(stmt: Select[Any], include: bool, _ctx: Context) -> Select[Any]:
    """By default only what is still to come (drafts, queued, posting)."""
    if include:
        return stmt
    return stmt.where(MessagingBulkMessage.posted_time.is_(None))


async def bulk_messages_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[MessagingBulkMessage]:
    """The bulk messages an individual sent, created or is listed in (a purge)."""
    stmt = scoped(
        select(MessagingBulkMessage).where(
            or_(
                MessagingBulkMessage.sender_individual_id == individual_id,
                MessagingBulkMessage.created_by == individual_id,
                sql_cast(MessagingBulkMessage.individual_ids, SqlString).like(f"%{individual_id}%"),
            )
        ),
        MessagingBulkMessage,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars().all())


# --- recipients (the fan-out's targets) -----------------------------------------------------


async def recipients_of(session: AsyncSession, bulk: MessagingBulkMessage) -> list[uuid.UUID]:
    """The listed individuals that still exist and the groups' members now, without
    duplicates and without the sender, in id order."""
    org = bulk.organization_id
    wanted = await messaging.existing_individuals(
        session, org, [uuid.UUID(i) for i in bulk.individual_ids]
    )
    groups = [uuid.UUID(i) for i in bulk.individual_group_ids]
    if groups:
        stmt = scoped(
            select(IndividualGroupMember.individual_id), IndividualGroupMember, org
        ).where(IndividualGroupMember.group_id.in_(groups))
        wanted.update((await session.execute(stmt)).scalars())
    if bulk.sender_individual_id is not None:
        wanted.discard(bulk.sender_individual_id)
    return sorted(wanted)


async def skipped_recipients(
    session: AsyncSession, organization_id: uuid.UUID, fanout_ids: Mapping[uuid.UUID, uuid.UUID]
) -> dict[uuid.UUID, list[tuple[uuid.UUID, str]]]:
    """bulk message -> its skipped recipients who still exist and why, in recipient order
    (one query; ``fanout_ids``: bulk message -> its fan-out)."""
    found: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {ident: [] for ident in fanout_ids}
    if not fanout_ids:
        return found
    bulk_of = {fanout: bulk for bulk, fanout in fanout_ids.items()}
    columns = cast(
        "Select[Any]",
        select(FanoutTarget.fanout_id, FanoutTarget.target_id, FanoutTarget.reason).join(
            Individual,
            (Individual.id == FanoutTarget.target_id)
            & in_organization(Individual, organization_id),
        ),
    )
    rows = await session.execute(
        scoped(columns, FanoutTarget, organization_id)
        .where(
            FanoutTarget.fanout_id.in_(list(bulk_of)),
            FanoutTarget.state == TargetState.SKIPPED.value,
        )
        .order_by(FanoutTarget.fanout_id, FanoutTarget.target_id)
    )
    for fanout_id, recipient, reason in rows:
        found[bulk_of[fanout_id]].append((recipient, reason or ""))
    return found


def recipient_rows_of(organization_id: uuid.UUID, kind: str, individual_id: uuid.UUID) -> Any:
    """The condition on ``fanout_targets`` naming an individual as a recipient of the bulk
    messages' fan-out (``kind``) of the organization (a purge deletes them)."""
    fanouts = scoped(select(Fanout.id), Fanout, organization_id).where(Fanout.kind == kind)
    return (FanoutTarget.target_id == individual_id) & FanoutTarget.fanout_id.in_(fanouts)


# --- direct channels ------------------------------------------------------------------------


async def find_direct_channels(
    session: AsyncSession,
    organization_id: uuid.UUID,
    sender_id: uuid.UUID,
    recipient_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, uuid.UUID]:
    """recipient -> their direct channel with the sender: subscribers exactly the two of them,
    no group, not archived (several: the most recently active).

    Three plain index lookups per 500 recipients, driven by the recipients' own subscriptions
    (a handful each), never by the sender's, which grow with every channel a fan-out creates;
    no join a planner with stale statistics could turn into a scan per row."""
    org = organization_id
    pairs = cast(
        "Select[Any]", select(MessagingSubscriber.channel_id, MessagingSubscriber.individual_id)
    )
    sizes = cast(
        "Select[Any]",
        select(
            MessagingSubscriber.channel_id,
            func.count(),
            func.sum(case((MessagingSubscriber.individual_id == sender_id, 1), else_=0)),
        ),
    )
    channels = cast(
        "Select[Any]",
        select(MessagingChannel.id, MessagingChannel.last_message_at, MessagingChannel.created_at),
    )
    found: dict[uuid.UUID, tuple[datetime, uuid.UUID]] = {}
    for start in range(0, len(recipient_ids), CHUNK):
        chunk = recipient_ids[start : start + CHUNK]
        subscribed = list(
            await session.execute(
                scoped(pairs, MessagingSubscriber, org).where(
                    MessagingSubscriber.individual_id.in_(chunk)
                )
            )
        )
        candidates = list(dict.fromkeys(channel for channel, _person in subscribed))
        direct: set[uuid.UUID] = set()
        active: dict[uuid.UUID, datetime] = {}
        for part in range(0, len(candidates), CHUNK):
            ids = candidates[part : part + CHUNK]
            counted = await session.execute(
                scoped(sizes, MessagingSubscriber, org)
                .where(MessagingSubscriber.channel_id.in_(ids))
                .group_by(MessagingSubscriber.channel_id)
            )
            two = [channel for channel, size, mine in counted if size == 2 and mine == 1]
            if not two:
                continue
            rows = await session.execute(
                scoped(channels, MessagingChannel, org).where(
                    MessagingChannel.id.in_(two),
                    MessagingChannel.individual_group_id.is_(None),
                    MessagingChannel.archived == false(),
                )
            )
            for channel, last_message_at, created_at in rows:
                direct.add(channel)
                active[channel] = _aware(last_message_at or created_at)
        for channel, person in subscribed:
            if channel not in direct or person == sender_id:
                continue
            best = found.get(person)
            if best is None or (active[channel], channel) > best:
                found[person] = (active[channel], channel)
    return {recipient: channel for recipient, (_at, channel) in found.items()}


def _aware(value: Any) -> datetime:
    if isinstance(value, str):  # an expression's value bypasses the column type on SQLite
        value = datetime.fromisoformat(value)
    moment: datetime = value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def pair_lock_key(organization_id: uuid.UUID, a: uuid.UUID, b: uuid.UUID) -> int:
    low, high = sorted((str(a), str(b)))
    digest = hashlib.sha256(f"courier:direct:{organization_id}:{low}:{high}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_pairs(
    session: AsyncSession,
    organization_id: uuid.UUID,
    sender_id: uuid.UUID,
    recipient_ids: Iterable[uuid.UUID],
) -> None:
    """PostgreSQL: hold a transaction lock per (sender, recipient) pair, in key order, so two
    fan-outs never both create the same direct channel. (SQLite's write lock already
    serialises the whole transaction.)"""
    if not is_postgres(session):
        return
    keys = sorted({pair_lock_key(organization_id, sender_id, r) for r in recipient_ids})
    if keys:
        await session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS ordered"
            ),
            {"keys": keys},
        )


# --- bulk attachments ------------------------------------------------------------------------


async def count_open_uploads(
    session: AsyncSession, organization_id: uuid.UUID, bulk_id: uuid.UUID
) -> int:
    """Attachments of the bulk message still uploading (pending, window open)."""
    stmt = scoped(
        select(func.count()).where(
            MessagingBulkAttachment.bulk_message_id == bulk_id,
            MessagingBulkAttachment.status == AttachmentStatus.PENDING.value,
            MessagingBulkAttachment.upload_expires_at > utcnow(),
        ),
        MessagingBulkAttachment,
        organization_id,
    )
    count: int = (await session.execute(stmt)).scalar_one()
    return count


async def ready_attachments(
    session: AsyncSession, organization_id: uuid.UUID, bulk_id: uuid.UUID
) -> list[MessagingBulkAttachment]:
    """The bulk message's processed attachments, in the order they were added."""
    stmt = scoped(
        select(MessagingBulkAttachment)
        .where(
            MessagingBulkAttachment.bulk_message_id == bulk_id,
            MessagingBulkAttachment.status == AttachmentStatus.READY.value,
        )
        .order_by(MessagingBulkAttachment.created_at, MessagingBulkAttachment.id),
        MessagingBulkAttachment,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def insert_attachment_copies(
    session: AsyncSession, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Write messaging attachment rows (each names its organization: a Core insert, which the
    tenancy guard does not scope)."""
    connection = await session.connection()
    table: Any = MessagingAttachment.__table__
    for start in range(0, len(rows), INSERT_BATCH):
        await connection.execute(insert(table), list(rows[start : start + INSERT_BATCH]))
