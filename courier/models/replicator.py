"""Registrations of background processes (job workers, pollers): who runs, and since when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin


class Replicator(IdMixin, Base):
    """A running background process. Not a tenant row: it serves every organization.

    Each process inserts its row at start, refreshes ``last_poll_at`` on every loop and deletes
    the row when it stops cleanly; a row whose ``last_poll_at`` is old belongs to a process
    that died (it shows as stale).
    """

    __tablename__ = "replicators"

    classpath: Mapped[str] = mapped_column(String(255))
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_poll_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
