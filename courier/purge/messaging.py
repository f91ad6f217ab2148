"""Purging an individual from secure messaging.

What a clinic needs: the other people in a conversation keep a coherent history, and nothing of
the purged person remains. So:

- their subscriptions, reactions, bookmarks and badge counts are deleted;
- their drafts (never seen by anyone) are deleted;
- their posted messages stay in the channel as tombstones: the text, phrases, sentiment and
  destinations are cleared, ``removed`` is set, and the author (``individual_id``, ``user_id``)
  is unlinked. Deleting them instead would break the channel's sequence: every subscriber's
  unread count is ``last_seq - ack_seq``, and replies would lose what they answer. Reactions
  and bookmarks of *other* people on those messages stay (they say nothing about the person);
- channels they own or created are kept, with the owner and creator unlinked.

Channel names and labels are the organization's text and are not searched for the person's name.
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.domains.messaging import repository as messaging
from courier.models.messaging import (
    BadgeCount,
    MessagingBookmark,
    MessagingChannel,
    MessagingMessage,
    MessagingReaction,
    MessagingSubscriber,
)
from courier.models.user import User
from courier.purge import ArchiveWriter, delete_rows, deleted_rows, purge_hook, update_rows


async def _own_users(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[uuid.UUID]:
    stmt = scoped(
        select(User.id).where(User.primary_individual_id == individual_id), User, organization_id
    )
    return list((await session.execute(stmt)).scalars())


@purge_hook("individual", name="messaging")
async def purge_messaging(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    users = await _own_users(session, organization_id, individual_id)
    counts: dict[str, int] = {}
    memberships = await deleted_rows(
        session,
        organization_id,
        MessagingSubscriber,
        MessagingSubscriber.individual_id == individual_id,
        archive,
    )
    # one subscriber fewer in each of their channels (a flush that found a row gone fails)
    await messaging.shift_subscriber_counts(
        session, organization_id, dict.fromkeys((m.channel_id for m in memberships), -1)
    )
    counts["messaging_subscribers"] = len(memberships)
    counts["messaging_reactions"] = await delete_rows(
        session,
        organization_id,
        MessagingReaction,
        MessagingReaction.individual_id == individual_id,
        archive,
    )
    counts["messaging_bookmarks"] = await delete_rows(
        session,
        organization_id,
        MessagingBookmark,
        MessagingBookmark.individual_id == individual_id,
        archive,
    )
    counts["badge_counts"] = await delete_rows(
        session, organization_id, BadgeCount, BadgeCount.individual_id == individual_id, archive
    )
    authored = MessagingMessage.individual_id == individual_id
    unposted = or_(MessagingMessage.draft.is_(True), MessagingMessage.seq.is_(None))
    counts["messaging_messages"] = await delete_rows(
        session, organization_id, MessagingMessage, authored & unposted, archive
    )
    counts["messaging_messages.redacted"] = await _redact_messages(
        session, organization_id, individual_id, archive
    )
    counts["messaging_messages.unlinked"] = await _unlink_user_messages(
        session, organization_id, users, archive
    )
    counts["messaging_channels.unlinked"] = await _unlink_channels(
        session, organization_id, individual_id, users, archive
    )
    return counts


async def _redact_messages(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> int:
    return await update_rows(
        session,
        organization_id,
        MessagingMessage,
        MessagingMessage.individual_id == individual_id,
        {
            "individual_id": None,
            "user_id": None,
            "message": "",
            "removed": True,
            "phrases": {},
            "sentiment": None,
            "destination": {},
        },
        archive,
    )


async def _unlink_user_messages(
    session: AsyncSession,
    organization_id: uuid.UUID,
    users: list[uuid.UUID],
    archive: ArchiveWriter | None,
) -> int:
    """Messages the person's login posted for someone else keep their author, lose the login."""
    if not users:
        return 0
    return await update_rows(
        session,
        organization_id,
        MessagingMessage,
        MessagingMessage.user_id.in_(users),
        {"user_id": None},
        archive,
    )


async def _unlink_channels(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    users: list[uuid.UUID],
    archive: ArchiveWriter | None,
) -> int:
    people = [individual_id, *users]
    stmt = scoped(
        select(MessagingChannel).where(
            or_(MessagingChannel.owner_id == individual_id, MessagingChannel.created_by.in_(people))
        ),
        MessagingChannel,
        organization_id,
    )
    channels = list((await session.execute(stmt)).scalars().all())
    for channel in channels:
        if archive is not None:  # the channel is the organization's: only the links were theirs
            archive.write(
                MessagingChannel.__tablename__,
                {"id": channel.id, "owner_id": channel.owner_id, "created_by": channel.created_by},
            )
        if channel.owner_id == individual_id:
            channel.owner_id = None
        if channel.created_by in people:
            channel.created_by = None
    await session.flush()
    return len(channels)
