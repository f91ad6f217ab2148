"""Purge hooks: how every domain joins ``POST /v1/purge-data/`` (erase all data of an entity).

A domain that stores an individual's data adds one hook, in ``courier/domains/<name>/purge.py``
(imported by :func:`load_purge_hooks`)::

    from courier.purge import ArchiveWriter, purge_hook

    @purge_hook("individual", name="messaging")
    async def purge_messaging(
        session: AsyncSession,
        organization_id: uuid.UUID,
        individual_id: uuid.UUID,
        archive: ArchiveWriter | None,
    ) -> dict[str, int]:
        rows = (await session.execute(scoped(select(Bookmark)..., Bookmark, organization_id)))
        if archive is not None:
            archive.write_rows("messaging_bookmarks", rows)
        ... delete them ...
        return {"messaging_bookmarks": len(rows)}

The contract of a hook:

- It removes (or anonymises) every row of its domain that holds the entity's data, in the given
  session, through ``courier.core.tenancy.scoped`` with ``organization_id``; it never commits.
- With an ``archive``, it first writes each row it will remove or change, as it is now.
- It returns how many rows it removed or changed, per table (``"table"`` or
  ``"table.what"``, e.g. ``"messaging_messages.redacted"``).
- It is idempotent: run again after it succeeded, it finds nothing and returns zeros. Each hook
  runs as one step of the purge job, and its changes commit together with the step's record,
  so a purge that crashes resumes with the next hook and never runs a finished one twice.
- ``order`` sets when it runs (lower first, then by name). Hooks that delete rows others refer
  to run late: the people hook, which deletes the individual row itself, has order 1000.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import importlib
import pkgutil
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped

ENTITY_TYPES = ("individual",)
MAX_HOOK_NAME = 80


class ArchiveWriter:
    """Writes the rows a hook is about to remove as JSON lines, gzip-compressed.

    One line per row: ``{"hook": ..., "table": ..., "row": {column: value}}`` (UUIDs and times
    as strings, bytes as base64). A purge's archive is one file,
    ``<data_dir>/archives/<purge id>.jsonl.gz``; each hook writes a part of it that the purge
    joins once every hook has run (so a retried hook rewrites its part instead of adding to it).
    """

    def __init__(self, hook: str, path: Path) -> None:
        self.hook = hook
        self.path = path
        self.rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: gzip.GzipFile | None = gzip.GzipFile(path, "wb")

    def write(self, table: str, row: Mapping[str, Any]) -> None:
        """Write one row given as a mapping of column names to values."""
        if self._file is None:
            raise RuntimeError("the archive part is closed")
        line = {"hook": self.hook, "table": table, "row": {k: _plain(v) for k, v in row.items()}}
        self._file.write(orjson.dumps(line) + b"\n")
        self.rows += 1

    def write_rows(self, table: str, rows: Iterable[Any]) -> int:
        """Write ORM objects (every mapped column) or mappings; return how many."""
        count = 0
        for row in rows:
            self.write(table, row if isinstance(row, Mapping) else row_values(row))
            count += 1
        return count

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def row_values(obj: Any) -> dict[str, Any]:
    """Every mapped column of an ORM object, by column name."""
    mapper = inspect(obj).mapper
    return {attr.columns[0].name: getattr(obj, attr.key) for attr in mapper.column_attrs}


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


async def delete_rows(
    session: AsyncSession,
    organization_id: uuid.UUID,
    model: Any,
    condition: Any,
    archive: ArchiveWriter | None,
) -> int:
    """Archive then delete the rows of ``model`` matching ``condition``; return how many."""
    return len(await deleted_rows(session, organization_id, model, condition, archive))


async def deleted_rows(
    session: AsyncSession,
    organization_id: uuid.UUID,
    model: Any,
    condition: Any,
    archive: ArchiveWriter | None,
) -> list[Any]:
    """:func:`delete_rows`, returning the rows it deleted (their objects, as they were)."""
    rows = list(
        (await session.execute(scoped(select(model).where(condition), model, organization_id)))
        .scalars()
        .all()
    )
    if not rows:
        return rows
    if archive is not None:
        archive.write_rows(model.__tablename__, rows)
    for row in rows:
        await session.delete(row)
    await session.flush()
    return rows


async def update_rows(
    session: AsyncSession,
    organization_id: uuid.UUID,
    model: Any,
    condition: Any,
    values: Mapping[str, Any],
    archive: ArchiveWriter | None,
) -> int:
    """Archive then change (anonymise, unlink) the rows of ``model`` matching ``condition``.

    The archive gets each row's primary key and the old values of the changed columns only:
    the rest of the row is not the purged person's (e.g. another individual whose owner was
    their login). Row by row through the session, so objects loaded earlier stay true.
    """
    rows = list(
        (await session.execute(scoped(select(model).where(condition), model, organization_id)))
        .scalars()
        .all()
    )
    if not rows:
        return 0
    if archive is not None:
        keys = [column.key for column in inspect(model).primary_key]
        for row in rows:
            archive.write(
                model.__tablename__, {name: getattr(row, name) for name in [*keys, *values]}
            )
    for row in rows:
        for name, value in values.items():
            setattr(row, name, value)
    await session.flush()
    return len(rows)


PurgeHook = Callable[
    [AsyncSession, uuid.UUID, uuid.UUID, ArchiveWriter | None], Awaitable[dict[str, int]]
]


@dataclass(frozen=True)
class Registration:
    entity_type: str
    name: str
    order: int
    hook: PurgeHook


_HOOKS: dict[tuple[str, str], Registration] = {}


def purge_hook(
    entity_type: str, *, name: str, order: int = 100
) -> Callable[[PurgeHook], PurgeHook]:
    """Register ``hook`` to erase its domain's data of one ``entity_type`` entity.

    ``name`` identifies the hook in the purge's receipt and in its job steps: keep it stable.
    """
    if entity_type not in ENTITY_TYPES:
        raise ValueError(f"unknown purge entity type {entity_type!r}")
    if not name or len(name) > MAX_HOOK_NAME or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError(f"a purge hook name is 1 to {MAX_HOOK_NAME} of [A-Za-z0-9-_.]")

    def decorate(hook: PurgeHook) -> PurgeHook:
        existing = _HOOKS.get((entity_type, name))
        if existing is not None and existing.hook is not hook:
            qualified = getattr(existing.hook, "__qualname__", repr(existing.hook))
            raise ValueError(f"purge hook {entity_type}/{name} already registered ({qualified})")
        _HOOKS[(entity_type, name)] = Registration(entity_type, name, order, hook)
        return hook

    return decorate


def unregister(entity_type: str, name: str) -> None:
    """Forget a hook (tests and plugins that register one for a while)."""
    _HOOKS.pop((entity_type, name), None)


def hooks_for(entity_type: str) -> list[Registration]:
    """The hooks of ``entity_type`` in the order they run."""
    found = [r for r in _HOOKS.values() if r.entity_type == entity_type]
    return sorted(found, key=lambda r: (r.order, r.name))


def load_purge_hooks() -> list[str]:
    """Import the built-in hooks (``courier.purge.*``) and every ``courier.domains.*.purge``."""
    import courier.domains

    loaded: list[str] = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        name = f"{__name__}.{module.name}"
        importlib.import_module(name)
        loaded.append(name)
    for module in sorted(pkgutil.iter_modules(courier.domains.__path__), key=lambda m: m.name):
        name = f"courier.domains.{module.name}.purge"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        loaded.append(name)
    return loaded


__all__ = [
    "ENTITY_TYPES",
    "ArchiveWriter",
    "PurgeHook",
    "Registration",
    "delete_rows",
    "hooks_for",
    "load_purge_hooks",
    "purge_hook",
    "row_values",
    "unregister",
    "update_rows",
]
