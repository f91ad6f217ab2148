"""API keys authenticated recently, so that a request need not read its key again (issue 17).

A process keeps the keys it authenticated for :data:`KEY_CACHE_SECONDS` at most, and only
while it hears of every change to keys: on PostgreSQL, while its event listener holds
``LISTEN`` (see :mod:`courier.events.stream`; while it is down nothing is cached and every
request reads its key); on SQLite, through the file beside the database that every process
appends its committed changes to (:class:`courier.core.notified.FileBoard`).

A transaction that changes a key (revokes it, changes its role or expiry, deletes it or its
organization) sends ``pg_notify('courier_keys', '<key id>')`` (``*``: every key) before it
commits: PostgreSQL delivers it to every listening process as the transaction commits, and
each drops the key (on SQLite the notice is appended to the file just after the commit, before
the change is answered). The processes' own caches drop it at once after the commit. A key's expiry
is checked on every request, cached or not. The machinery is :mod:`courier.core.notified`'s.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from courier.core.notified import (
    BOOKKEEPING_OPTION,
    EVERYTHING,
    NotifiedCache,
    uuid_entry,
    watch,
    watch_statements,
)
from courier.models.api_key import ApiKey
from courier.models.organization import Organization

KEY_CACHE_SECONDS = 10.0
KEYS_CHANNEL = "courier_keys"
EVERY_KEY = EVERYTHING
# What about a key decides whether it authenticates, and as whom.
_DECIDING = ("revoked_at", "expires_at", "role", "secret_hash", "organization_id")

__all__ = [
    "BOOKKEEPING_OPTION",
    "EVERY_KEY",
    "KEYS_CHANNEL",
    "KEY_CACHE_SECONDS",
    "KeyCache",
    "KeyRow",
]


@dataclass(frozen=True)
class KeyRow:
    """What authentication needs of an ``api_keys`` row."""

    id: uuid.UUID
    organization_id: uuid.UUID
    role: str
    secret_hash: str
    revoked_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None


class KeyCache(NotifiedCache[uuid.UUID, KeyRow]):
    """One application's recently authenticated keys, by id and by secret hash."""

    channel = KEYS_CHANNEL
    ttl = KEY_CACHE_SECONDS

    def __init__(self) -> None:
        self._by_hash: dict[str, uuid.UUID] = {}
        super().__init__()

    def by_hash(self, secret_hash: str) -> KeyRow | None:
        ident = self._by_hash.get(secret_hash)
        row = self.get(ident) if ident is not None else None
        return row if row is not None and row.secret_hash == secret_hash else None

    def by_id(self, key_id: uuid.UUID) -> KeyRow | None:
        return self.get(key_id)

    def put(self, row: KeyRow, generation: int) -> None:
        """Keep ``row``, read when :attr:`generation` was ``generation``."""
        if self.keep(row.id, row, generation):
            self._by_hash[row.secret_hash] = row.id

    def keys_of(self, entry: str) -> list[uuid.UUID]:
        return uuid_entry(entry)

    def drop(self, key: uuid.UUID) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._by_hash.pop(entry[1].secret_hash, None)

    def clear(self) -> None:
        super().clear()
        self._by_hash.clear()


# --- what tells every process of a change to keys ---------------------------------------------

watch(KEYS_CHANNEL, ApiKey, _DECIDING, lambda key: str(key.id))
watch(KEYS_CHANNEL, Organization, (), lambda _organization: EVERY_KEY)  # deleted
# An UPDATE or DELETE of keys or organizations run as a statement: every key is told.
watch_statements(KEYS_CHANNEL, ("api_keys", "organizations"), ("update", "delete"))
