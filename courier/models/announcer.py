"""Announcers: an organization's rules "when event E happens, send template T to these people"
(docs/ANNOUNCERS.md), and the record of each event each rule has acted on."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin, TenantMixin


class Announcer(IdMixin, TenantMixin, Base):
    """One rule. ``event`` is a name of the announcer event catalogue (``individual-shared``,
    ``message-posted`` ...), ``args`` the template, its data, the recipients and the filter
    (template and references as ids; see ``courier.domains.announcers.schemas.AnnouncerArgs``).
    """

    __tablename__ = "announcers"
    __table_args__ = (Index("ix_announcers_org_event", "organization_id", "event"),)

    name: Mapped[str] = mapped_column(String(255), index=True)
    event: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32), default="notification")
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Since when the rule listens for its current event: set at creation, when it is
    # activated again and when its event changes. Earlier events are never acted on.
    listening_since: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[uuid.UUID | None]  # the API key that created it
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_by: Mapped[uuid.UUID | None]


class AnnouncerFiring(TenantMixin, Base):
    """An event an announcer has acted on: at most one row per (announcer, event).

    Written in the transaction that creates the rule's notifications, so an event is acted on
    exactly when (and only once) this row commits. Counts only: the notifications themselves
    name their recipients.
    """

    __tablename__ = "announcer_firings"

    announcer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("announcers.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(96))
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    notified: Mapped[int] = mapped_column(Integer, default=0)
    not_sent: Mapped[int] = mapped_column(Integer, default=0)
