"""API keys authenticated recently, so that a request need not read its key again (issue 17).

A process keeps the keys it authenticated for :data:`KEY_CACHE_SECONDS` at most, and only
while it hears of every change to keys: on PostgreSQL, while its event listener holds
``LISTEN`` (see :mod:`courier.events.stream`); on SQLite, or while the listener is down,
nothing is cached and every request reads its key.

A transaction that changes a key (revokes it, changes its role or expiry, deletes it or its
organization) sends ``pg_notify('courier_keys', '<key id>')`` (``*``: every key) before it
commits: PostgreSQL delivers it to every listening process as the transaction commits, and
each drops the key. The processes' own caches drop it at once after the commit. A key's expiry
is checked on every request, cached or not.
"""

from __future__ import annotations

import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from courier.models.api_key import ApiKey
from courier.models.organization import Organization

KEY_CACHE_SECONDS = 10.0
KEYS_CHANNEL = "courier_keys"
EVERY_KEY = "*"
# Execution option of the statements that only move a key's last-used time (no change to tell).
BOOKKEEPING_OPTION = "courier_key_bookkeeping"
# What about a key decides whether it authenticates, and as whom.
_DECIDING = ("revoked_at", "expires_at", "role", "secret_hash", "organization_id")
_FORGET = "courier.key_cache.forget"


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


class KeyCache:
    """One application's recently authenticated keys, by secret hash and by id."""

    def __init__(self) -> None:
        self._by_hash: dict[str, tuple[float, KeyRow]] = {}
        self._by_id: dict[uuid.UUID, tuple[float, KeyRow]] = {}
        self._listening = False
        # Moved on by every change told: a key read before a change is not cached after it.
        self.generation = 0
        _CACHES.add(self)

    @property
    def listening(self) -> bool:
        return self._listening

    def set_listening(self, listening: bool) -> None:
        """Whether every change to keys reaches this process now; anything cached before a
        gap in listening is dropped."""
        self._listening = listening
        self.clear()

    def by_hash(self, secret_hash: str) -> KeyRow | None:
        return self._fresh(self._by_hash.get(secret_hash))

    def by_id(self, key_id: uuid.UUID) -> KeyRow | None:
        return self._fresh(self._by_id.get(key_id))

    def _fresh(self, entry: tuple[float, KeyRow] | None) -> KeyRow | None:
        if entry is None or not self._listening:
            return None
        if time.monotonic() - entry[0] > KEY_CACHE_SECONDS:
            return None
        return entry[1]

    def put(self, row: KeyRow, generation: int) -> None:
        """Keep ``row``, read when :attr:`generation` was ``generation``."""
        if not self._listening or generation != self.generation:
            return
        if len(self._by_id) > 10_000:  # a bound, not a policy: keys are few
            self.clear()
        entry = (time.monotonic(), row)
        self._by_hash[row.secret_hash] = entry
        self._by_id[row.id] = entry

    def forget(self, payload: str) -> None:
        """Drop the keys ``payload`` names (ids, comma-separated; ``*``: every key)."""
        self.generation += 1
        if EVERY_KEY in payload.split(","):
            self.clear()
            return
        for part in payload.split(","):
            try:
                entry = self._by_id.pop(uuid.UUID(part), None)
            except ValueError:
                self.clear()  # not understood: forgetting everything is always safe
                return
            if entry is not None:
                self._by_hash.pop(entry[1].secret_hash, None)

    def clear(self) -> None:
        self.generation += 1
        self._by_hash.clear()
        self._by_id.clear()

    def notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        """asyncpg's listener callback for :data:`KEYS_CHANNEL`."""
        self.forget(payload)


_CACHES: weakref.WeakSet[KeyCache] = weakref.WeakSet()


# --- telling every process of a change to keys --------------------------------------------------


def _note(session: Session, what: str) -> set[str]:
    pending: set[str] = session.info.setdefault(_FORGET, set())
    pending.add(what)
    return pending


def _notify(session: Session, payload: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": KEYS_CHANNEL, "payload": payload},
        )


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush: UOWTransaction) -> None:
    told: list[str] = []
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Organization) and obj in session.deleted:
            told.append(EVERY_KEY)
        elif isinstance(obj, ApiKey):
            state = inspect(obj)
            if obj in session.deleted or any(
                state.attrs[name].history.has_changes() for name in _DECIDING
            ):
                told.append(str(obj.id))
    if told:
        for what in told:
            _note(session, what)
        session.info.setdefault(_FORGET + ".unsent", set()).update(told)


@event.listens_for(Session, "after_flush_postexec")
def _send_flushed(session: Session, _flush: UOWTransaction) -> None:
    unsent: set[str] | None = session.info.pop(_FORGET + ".unsent", None)
    if unsent:
        _notify(session, ",".join(sorted(unsent)))


@event.listens_for(Session, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    """An UPDATE or DELETE of keys or organizations run as a statement: every key is told."""
    if not (state.is_update or state.is_delete):
        return
    if state.execution_options.get(BOOKKEEPING_OPTION):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) not in ("api_keys", "organizations"):
        return
    _note(state.session, EVERY_KEY)
    _notify(state.session, EVERY_KEY)


@event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    pending: set[str] | None = session.info.pop(_FORGET, None)
    if not pending:
        return
    payload = ",".join(sorted(pending))
    for cache in list(_CACHES):
        cache.forget(payload)


@event.listens_for(Session, "after_rollback")
def _nothing_changed(session: Session) -> None:
    session.info.pop(_FORGET, None)
    session.info.pop(_FORGET + ".unsent", None)
