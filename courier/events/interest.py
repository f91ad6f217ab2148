"""What of an organization consumes its events (webhooks, announcers), kept per process.

Each publishing transaction asks, per organization, what its consumers' interest is
(:class:`courier.events.Consumer`): the event types its active webhooks subscribe to, the
events its active announcers listen for. Those change rarely and are asked by every write, so
a process keeps the answer (:class:`InterestCache`, a :class:`~courier.core.notified.
NotifiedCache`) while it hears of every change: on PostgreSQL while its event listener holds
``LISTEN courier_interest``; on SQLite from the start, through the file beside the database
that every process sharing it (servers, workers, the CLI) appends its changes to
(:class:`~courier.core.notified.FileBoard`).

A transaction that adds, deletes, activates or deactivates a webhook or an announcer, or
changes what it listens for, tells ``courier_interest`` the organization's id (declared with
:func:`~courier.core.notified.watch` next to each consumer); a deleted organization, or a
statement on those tables, tells everything. The transaction's own reads see its change before
others do, so a transaction that made one neither uses nor keeps the cache for that
organization.
"""

from __future__ import annotations

import uuid
import weakref
from typing import TYPE_CHECKING, Any

from courier.core.notified import EVERYTHING, NotifiedCache, uuid_entry, watch
from courier.models.organization import Organization

if TYPE_CHECKING:
    from courier.events import Consumer

INTEREST_CHANNEL = "courier_interest"
INTEREST_CACHE_SECONDS = 300.0  # a safety net: changes are told


class InterestCache(NotifiedCache[uuid.UUID, dict["Consumer", tuple[str, ...]]]):
    """By organization: each consumer's interest values as last read."""

    channel = INTEREST_CHANNEL
    ttl = INTEREST_CACHE_SECONDS

    def keys_of(self, entry: str) -> list[uuid.UUID]:
        return uuid_entry(entry)


_BY_ENGINE: weakref.WeakKeyDictionary[Any, InterestCache] = weakref.WeakKeyDictionary()


def interest_cache(engine: Any) -> InterestCache:
    """The cache of the processes' sessions on ``engine`` (a sync Engine or a Connection)."""
    engine = getattr(engine, "engine", engine)
    cache = _BY_ENGINE.get(engine)
    if cache is None:
        cache = _BY_ENGINE[engine] = InterestCache()
    return cache


def organization_entry(obj: Any) -> str:
    """The entry a consumer's row tells: its organization."""
    return str(obj.organization_id)


watch(INTEREST_CHANNEL, Organization, (), lambda _organization: EVERYTHING)  # deleted
