"""Secure messaging: channels, their subscribers (with read horizons), messages, reactions,
bookmarks and badge counts.

Unread counts are O(1): every posted message takes the next ``seq`` of its channel
(``messaging_channels.last_seq``, incremented under the channel's row lock), and each
subscriber keeps the ``ack_seq`` of the newest message it has read. Unread = last_seq - ack_seq
(minus nothing else: drafts have no seq until they are posted).

The providers' part of unread counts is O(1) the same way, with prefix counts: a channel's
``provider_count`` is how many of its posted messages were written by a provider (the author's
account type when the message was posted), incremented by the post that takes the seq; each
message keeps ``provider_count_at``, the channel's count just after it; each subscriber keeps
``ack_provider_count``, the count at its ``ack_seq`` (the ``provider_count_at`` of the message
it acknowledged, 0 for none). Unread from providers = provider_count - ack_provider_count.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin, TimestampMixin


class MessagingChannel(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "messaging_channels"
    __table_args__ = (
        Index("ix_messaging_channels_org_modified", "organization_id", "last_modified_at"),
    )

    name: Mapped[str | None] = mapped_column(String(255))
    label: Mapped[str | None] = mapped_column(String(255))
    floating: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    subscription_type: Mapped[str] = mapped_column(String(32), default="none")
    event_settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    individual_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individual_groups.id", ondelete="SET NULL"), index=True
    )
    text_number_id: Mapped[uuid.UUID | None]
    observation_id: Mapped[uuid.UUID | None]
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL")
    )
    created_by: Mapped[uuid.UUID | None]
    # The SMS bridge (set-sms); the texting domain joins here.
    with_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_initial_message: Mapped[str | None] = mapped_column(String(1024))
    sms_initial_message_js: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Texts of provider posts carry a neutral line and a link instead of the message; None:
    # the organization's sms-phi-safe preference.
    sms_phi_safe: Mapped[bool | None] = mapped_column(Boolean, default=None)
    # Denormalised for O(1) unread counts and the inbox order.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_message_id: Mapped[uuid.UUID | None]
    last_message_at: Mapped[datetime | None] = mapped_column(index=True)
    # How many of the posted messages (seq 1..last_seq) were written by a provider (the author's
    # account type at post time): the providers' unread = this - a subscriber's
    # ack_provider_count.
    provider_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How many messaging_subscribers rows the channel has (a group channel: more than two, or
    # individual_group_id set). Kept by every write that inserts or deletes memberships, in
    # the same transaction, as ``subscriber_count + n`` of the rows actually written.
    subscriber_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class MessagingSubscriber(TenantMixin, Base):
    """An individual's membership of a channel, with its read horizon and preferences."""

    __tablename__ = "messaging_subscribers"
    __table_args__ = (Index("ix_messaging_subscribers_individual", "individual_id", "channel_id"),)

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_channels.id", ondelete="CASCADE"), primary_key=True
    )
    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE"), primary_key=True
    )
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    notify: Mapped[str] = mapped_column(String(32), default="all")
    preferences: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The read horizon: the seq of the newest message this individual has acknowledged.
    ack_seq: Mapped[int] = mapped_column(Integer, default=0)
    ack_message_id: Mapped[uuid.UUID | None]
    ack_time: Mapped[datetime | None]  # server time of the ack
    ack_user_time: Mapped[datetime | None]  # the client's time of the ack, as it said
    # The channel's provider_count at ack_seq: the provider_count_at of the message acknowledged.
    ack_provider_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    subscribed_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessagingMessage(IdMixin, TenantMixin, Base):
    __tablename__ = "messaging_messages"
    __table_args__ = (
        # Unread ranges of a channel (seq > horizon), its highest seq.
        Index("ix_messaging_messages_channel_seq", "channel_id", "seq"),
        Index("ix_messaging_messages_channel_posted", "channel_id", "posted_time"),
        Index("ix_messaging_messages_author", "individual_id", "posted_time"),
    )

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_channels.id", ondelete="CASCADE")
    )
    seq: Mapped[int | None] = mapped_column(Integer)  # None while a draft
    # The channel's provider_count just after this message was posted (None while a draft).
    provider_count_at: Mapped[int | None] = mapped_column(Integer)
    individual_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="SET NULL")
    )
    user_id: Mapped[uuid.UUID | None]
    message: Mapped[str] = mapped_column(Text, default="")
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str | None] = mapped_column(String(32))
    destination: Mapped[dict[str, Any]] = mapped_column(default=dict)
    posted_time: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Computed once per version of the text by a job after the post or edit commits (never per
    # read); ``analyzed`` is false until that job has written them for the current text.
    sentiment: Mapped[str | None] = mapped_column(String(16))
    phrases: Mapped[dict[str, Any]] = mapped_column(default=dict)
    analyzed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=true())
    bulk_message_id: Mapped[uuid.UUID | None] = mapped_column(index=True)


# Drafts have no seq yet: in the list order they come as the newest.
NO_SEQ_YET = 2_147_483_647
# The order of a channel's messages (a literal, not a bound parameter, so that the database
# matches it to the index below).
MESSAGE_ORDER = func.coalesce(MessagingMessage.seq, literal_column(str(NO_SEQ_YET)))
# A channel's messages newest first (and paging through them) walk this index backwards and
# stop after a page, whatever the channel's size.
Index(
    "ix_messaging_messages_channel_order",
    MessagingMessage.channel_id,
    MESSAGE_ORDER,
    MessagingMessage.id,
)


# A channel's activity: its last posted message's time, else its creation. A caller's channels
# newest activity first (the channel list's default order) walk this index backwards, checking
# each channel's membership, and stop after a page: an individual in 5,000 channels no longer
# has all 5,000 sorted for each page (the planner still sorts the few channels of an
# individual whose memberships are fewer than a page's walk).
CHANNEL_ACTIVITY = func.coalesce(MessagingChannel.last_message_at, MessagingChannel.created_at)
Index(
    "ix_messaging_channels_activity",
    MessagingChannel.organization_id,
    CHANNEL_ACTIVITY,
    MessagingChannel.id,
)


class MessagingReaction(IdMixin, TenantMixin, Base):
    __tablename__ = "messaging_reactions"
    __table_args__ = (UniqueConstraint("message_id", "individual_id", "reaction_type"),)

    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_messages.id", ondelete="CASCADE"), index=True
    )
    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    reaction_type: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessagingBookmark(IdMixin, TenantMixin, Base):
    """A bookmark of an individual, or (``individual_id`` null) of the organization: one an
    API key made without naming an individual."""

    __tablename__ = "messaging_bookmarks"
    __table_args__ = (
        Index("ix_messaging_bookmarks_owner", "individual_id", "channel_id"),
        CheckConstraint("individual_id IS NOT NULL OR key_id IS NOT NULL", name="owner"),
    )

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_channels.id", ondelete="CASCADE")
    )
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messaging_messages.id", ondelete="CASCADE")
    )
    individual_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    # The API key that made it (null when an individual token did); no foreign key: a bookmark
    # outlives the key, as audit rows do.
    key_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BadgeCount(IdMixin, TenantMixin, Base):
    __tablename__ = "badge_counts"
    __table_args__ = (UniqueConstraint("individual_id", "type"),)

    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
    # The time the count refers to, as the setter said (or the server's time of the set).
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
