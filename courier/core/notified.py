"""Per-process caches of database rows that every process hears are stale (issue 17).

A :class:`NotifiedCache` keeps what it read only while its process hears of every change to
it: on PostgreSQL, while the process's event listener holds ``LISTEN`` on the cache's channel
(:class:`courier.events.stream.PostgresListener`; while it is down the cache keeps nothing and
every caller reads the database); on SQLite, through a :class:`FileBoard`, a file beside the
database that every process on it appends its committed changes to and reads before using
what it keeps.

What changes a cache's rows is declared once with :func:`watch` (ORM objects of a model,
by the attributes that decide what is cached) and :func:`watch_statements` (UPDATE, DELETE or
INSERT statements on its tables). A transaction that makes such a change sends
``pg_notify('<channel>', '<entry>[,<entry>...]')`` (``*``: everything) before it commits, one
per channel and flush: PostgreSQL delivers it to every listening process as the transaction
commits, and never if it rolls back. The caches of this process forget the entries at once
after the commit. :func:`changed_in` tells whether the session's own transaction changed an
entry (its reads then see what others do not yet: not to be cached).

On SQLite the notices are written after the commit, not with it: a process killed between
its commit and its notice leaves the other processes' caches stale until their ``ttl``.

A cache also forgets an entry a bounded time after reading it (``ttl``), a safety net only.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
import weakref
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import event, inspect, text
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

EVERYTHING = "*"
# Execution option of statements that change nothing a cache holds (bookkeeping columns).
BOOKKEEPING_OPTION = "courier_key_bookkeeping"
_PENDING = "courier.notified.pending"  # session.info: channel -> entries changed, this transaction
_UNSENT = "courier.notified.unsent"  # session.info: channel -> entries not yet notified

log = logging.getLogger("courier.notified")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class NotifiedCache(Generic[K, V]):
    """Values by key, kept while :attr:`listening`; told of changes on :attr:`channel`.

    A subclass names its :attr:`channel` and :attr:`ttl`, and how a notified entry (a string)
    names its keys (:meth:`keys_of`)."""

    channel: ClassVar[str]
    ttl: ClassVar[float]
    limit: ClassVar[int] = 10_000  # a bound, not a policy

    def __init__(self) -> None:
        self._entries: dict[K, tuple[float, V]] = {}
        self._listening = False
        self._board: FileBoard | None = None
        # Moved on by every change told: a value read before a change is not kept after it.
        self.generation = 0
        _CACHES.setdefault(self.channel, weakref.WeakSet()).add(self)

    @property
    def listening(self) -> bool:
        return self._listening

    def set_listening(self, listening: bool, board: FileBoard | None = None) -> None:
        """Whether every change reaches this process now (read from ``board`` before each
        use, on SQLite); anything kept before a gap in listening is dropped."""
        self._listening = listening
        self._board = board if listening else None
        self.clear()

    def get(self, key: K) -> V | None:
        if self._board is not None and not self._board.read():
            return None
        entry = self._entries.get(key)
        if entry is None or not self._listening:
            return None
        if time.monotonic() - entry[0] > self.ttl:
            return None
        return entry[1]

    def keep(self, key: K, value: V, generation: int) -> bool:
        """Keep ``value``, read when :attr:`generation` was ``generation``; whether kept."""
        if not self._listening or generation != self.generation:
            return False
        if len(self._entries) >= self.limit:
            self.clear()
        self._entries[key] = (time.monotonic(), value)
        return True

    def keys_of(self, entry: str) -> list[K]:
        """The keys a notified entry names; ValueError when not understood."""
        raise NotImplementedError

    def drop(self, key: K) -> None:
        self._entries.pop(key, None)

    def forget(self, payload: str) -> None:
        """Drop what ``payload`` names (entries, comma-separated; ``*``: everything)."""
        self.generation += 1
        parts = payload.split(",")
        if EVERYTHING in parts:
            self.clear()
            return
        for part in parts:
            try:
                keys = self.keys_of(part)
            except ValueError:
                self.clear()  # not understood: forgetting everything is always safe
                return
            for key in keys:
                self.drop(key)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        """asyncpg's listener callback for :attr:`channel`."""
        self.forget(payload)


_CACHES: dict[str, weakref.WeakSet[NotifiedCache[Any, Any]]] = {}


def _forget(channel: str, payload: str) -> None:
    """The caches of this process on ``channel`` forget what ``payload`` names."""
    for cache in list(_CACHES.get(channel, ())):
        cache.forget(payload)


def _forget_everything() -> None:
    for caches in list(_CACHES.values()):
        for cache in list(caches):
            cache.clear()


# --- SQLite: notices through a file beside the database ----------------------------------------


class FileBoard:
    """The committed changes of every process on one SQLite database, as lines
    ``<channel> <payload>`` appended to ``<database>-notices``.

    A writer appends under an exclusive ``flock``; past :attr:`limit` bytes it puts an empty
    file in the old one's place (same lock), and a writer that opened the old file before
    that tries again. :meth:`read` costs one ``stat`` when nothing was told: when the file
    grew, it reads the whole lines added since the last read and forgets what they name; when
    it was replaced or removed, it forgets everything, not knowing what it missed (a missing
    file is made empty by the first read).
    """

    limit: ClassVar[int] = 1 << 20

    def __init__(self, path: str) -> None:
        self.path = path
        # What this process has read: the file (inode) and how far. A new board starts at the
        # end: what was told before concerns nothing its caches hold.
        self._inode: int | None = None
        self._offset = 0
        try:
            now = os.stat(path)
        except FileNotFoundError:
            return
        self._inode, self._offset = now.st_ino, now.st_size

    def tell(self, told: Mapping[str, set[str]]) -> None:
        """Append one line per channel (entries comma-separated). A file that cannot be
        written is logged: the change is committed, and the other processes' caches forget
        it after their ``ttl``."""
        data = "".join(
            f"{channel} {','.join(sorted(entries))}\n" for channel, entries in sorted(told.items())
        ).encode()
        try:
            while not self._append(data):
                pass  # replaced since we opened it: append to the new one
        except OSError:
            log.warning("could not tell other processes of a change", exc_info=True)

    def _append(self, data: bytes) -> bool:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            opened = os.fstat(fd)
            try:
                if os.stat(self.path).st_ino != opened.st_ino:
                    return False
            except FileNotFoundError:
                return False
            os.write(fd, data)
            if opened.st_size + len(data) > self.limit:
                fresh = f"{self.path}.{os.getpid()}"
                os.close(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
                os.replace(fresh, self.path)
            return True
        finally:
            os.close(fd)  # (and its lock)

    def read(self) -> bool:
        """Forget what other processes told since the last read; whether the board could be
        read (if not, everything is forgotten and nothing should be used)."""
        try:
            self._read()
        except OSError:
            self._inode, self._offset = None, 0
            _forget_everything()
            return False
        return True

    def _read(self) -> None:
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            # Made empty here, so that this board knows which file it reads from now on: a
            # file created and then replaced between two reads cannot go unnoticed.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            now = os.stat(self.path)
        if now.st_ino == self._inode and now.st_size == self._offset:
            return
        if now.st_ino != self._inode or now.st_size < self._offset:
            if self._inode is not None:  # replaced: what was added to the old one is unknown
                _forget_everything()
            self._inode, self._offset = now.st_ino, 0  # (a new file: all of it is news)
        with open(self.path, "rb") as file:
            if os.fstat(file.fileno()).st_ino != self._inode:
                return  # replaced just now: the next read forgets everything
            file.seek(self._offset)
            added = file.read(now.st_size - self._offset)
        whole = added[: added.rfind(b"\n") + 1]  # a line being written is read next time
        self._offset += len(whole)
        for line in whole.decode(errors="replace").splitlines():
            channel, _, payload = line.partition(" ")
            _forget(channel, payload or EVERYTHING)


_BOARDS: dict[str, FileBoard] = {}


def file_board(engine: Any) -> FileBoard | None:
    """The board of ``engine``'s SQLite database file (a sync Engine or a Connection); None
    for another database or one in memory."""
    url = getattr(engine, "engine", engine).url
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):  # a URI filename (Courier's own URLs are paths)
        return None
    path = os.path.abspath(database) + "-notices"
    board = _BOARDS.get(path)
    if board is None:
        board = _BOARDS[path] = FileBoard(path)
    return board


def uuid_entry(entry: str) -> list[uuid.UUID]:
    """An entry that is one id (:meth:`NotifiedCache.keys_of` of caches keyed by id)."""
    return [uuid.UUID(entry)]


# --- what changes a cache ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Watch:
    channel: str
    model: type[Any]
    deciding: tuple[str, ...]
    entry: Callable[[Any], str]
    new: bool  # a new object is a change (else only changed and deleted ones)


_WATCHES: list[_Watch] = []
_STATEMENTS: dict[str, list[tuple[str, frozenset[str]]]] = {}  # table -> (channel, verbs)


def watch(
    channel: str,
    model: type[Any],
    deciding: tuple[str, ...],
    entry: Callable[[Any], str],
    *,
    new: bool = False,
) -> None:
    """Tell ``channel`` of ``entry(obj)`` when an object of ``model`` is deleted, changes one
    of its ``deciding`` attributes, or (``new``) is added."""
    _WATCHES.append(_Watch(channel, model, deciding, entry, new))


def watch_statements(channel: str, tables: tuple[str, ...], verbs: tuple[str, ...]) -> None:
    """Tell ``channel`` of everything when a statement (``update``, ``delete``, ``insert``)
    runs on one of ``tables`` through a session (unless marked :data:`BOOKKEEPING_OPTION`)."""
    for table in tables:
        _STATEMENTS.setdefault(table, []).append((channel, frozenset(verbs)))


def changed_in(session: Session, channel: str, entry: str) -> bool:
    """Whether the session's transaction has changed ``entry`` of ``channel`` so far."""
    pending: dict[str, set[str]] = session.info.get(_PENDING) or {}
    told = pending.get(channel)
    return told is not None and (entry in told or EVERYTHING in told)


def _note(session: Session, channel: str, entries: set[str], key: str = _PENDING) -> None:
    session.info.setdefault(key, {}).setdefault(channel, set()).update(entries)


def _notify(session: Session, told: dict[str, set[str]]) -> None:
    """One statement: one notification per channel."""
    if not told or session.get_bind().dialect.name != "postgresql":
        return
    channels = sorted(told)
    calls = ", ".join(f"pg_notify(:c{i}, :p{i})" for i in range(len(channels)))
    params: dict[str, str] = {}
    for index, channel in enumerate(channels):
        params[f"c{index}"] = channel
        params[f"p{index}"] = ",".join(sorted(told[channel]))
    session.execute(text(f"SELECT {calls}"), params)


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush: UOWTransaction) -> None:
    if not _WATCHES:
        return
    told: dict[str, set[str]] = {}
    for objects, kind in (
        (session.new, "new"),
        (session.dirty, "dirty"),
        (session.deleted, "deleted"),
    ):
        for obj in objects:
            for w in _WATCHES:
                if not isinstance(obj, w.model):
                    continue
                if kind == "new" and not w.new:
                    continue
                if kind == "dirty":
                    state = inspect(obj)
                    if not any(state.attrs[name].history.has_changes() for name in w.deciding):
                        continue
                told.setdefault(w.channel, set()).add(w.entry(obj))
    for channel, entries in told.items():
        _note(session, channel, entries)
        _note(session, channel, entries, _UNSENT)


@event.listens_for(Session, "after_flush_postexec")
def _send_flushed(session: Session, _flush: UOWTransaction) -> None:
    unsent: dict[str, set[str]] | None = session.info.pop(_UNSENT, None)
    if unsent:
        _notify(session, unsent)


@event.listens_for(Session, "do_orm_execute")
def _statement(state: ORMExecuteState) -> None:
    """A statement on a watched table: its channel is told of everything."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    if state.execution_options.get(BOOKKEEPING_OPTION):
        return
    table = getattr(state.statement, "table", None)
    watched = _STATEMENTS.get(getattr(table, "name", None) or "")
    if not watched:
        return
    verb = "update" if state.is_update else "delete" if state.is_delete else "insert"
    told = {channel: {EVERYTHING} for channel, verbs in watched if verb in verbs}
    for channel, entries in told.items():
        _note(state.session, channel, entries)
    _notify(state.session, told)


@event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    pending: dict[str, set[str]] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    for channel, entries in pending.items():
        _forget(channel, ",".join(sorted(entries)))
    board = file_board(session.get_bind())  # SQLite: the other processes read it from here
    if board is not None:
        board.tell(pending)


@event.listens_for(Session, "after_rollback")
def _nothing_changed(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_UNSENT, None)
