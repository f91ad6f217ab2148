"""Declaring a kind of upload: one :class:`UploadKind` per table of uploads.

The generic code (``courier.uploads``) runs the two steps, the cleanup and the purge of every
kind the same way; what differs between kinds is said here, never by testing which kind it is:

- ``owner``: what the new upload hangs on. It checks that the caller may attach to it (404 for
  what the caller may not see, 409 for what takes no more files) and returns the row's own
  columns (``{"message_id": ..., "individual_id": ...}``).
- ``parent``: the column naming what it hangs on, for ``limits``.
- ``limits``: per-parent limits (how many files, how many bytes together), if any.
- ``ready_fields`` / ``rejected_fields``: the attribute names the audit row of processing
  lists (each kind's attributes are its own).

A domain declares its kinds in ``courier/domains/<name>/uploads.py``; :func:`load_upload_kinds`
imports them all (every worker does, so each kind's jobs are claimed wherever they run).
Declaring a kind registers its two jobs: ``<name>.cleanup`` (stale uploads, see
:mod:`courier.uploads.jobs`) and ``<name>.delete-files`` (the objects of rows deleted).
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.orm import InstrumentedAttribute

from courier.config import Settings
from courier.jsonapi.context import Context
from courier.models.upload import UploadColumns
from courier.uploads.jobs import register_jobs
from courier.uploads.keys import UploadKeys
from courier.uploads.limits import ParentLimits

M = TypeVar("M", bound=UploadColumns)


class UploadRequest(Protocol):
    """The attributes every start of an upload carries (besides what it hangs on)."""

    @property
    def filename(self) -> str: ...

    @property
    def content_type(self) -> str | None: ...

    @property
    def model_fields_set(self) -> set[str]: ...


OwnerHook = Callable[[Context, Any], Awaitable[dict[str, Any]]]
LimitsHook = Callable[[Settings], ParentLimits]


@dataclass(eq=False)
class UploadKind(Generic[M]):
    name: str  # the resource type, e.g. "messaging-attachments"; its jobs are named after it
    model: type[M]
    key_segment: str  # objects under orgs/<organization>/<key_segment>/<id>/
    parent: InstrumentedAttribute[uuid.UUID]
    owner: OwnerHook
    limits: LimitsHook | None = None
    ready_fields: tuple[str, ...] = ("content-size", "content-type", "status", "thumbnail")
    rejected_fields: tuple[str, ...] = ("content-size", "content-type", "status")
    keys: UploadKeys = field(init=False)
    # A table with a ``removed`` column keeps removed files (for the audit), never serving them.
    removable: bool = field(init=False)

    def __post_init__(self) -> None:
        self.keys = UploadKeys(self.key_segment)
        self.removable = hasattr(self.model, "removed")

    @property
    def cleanup_job(self) -> str:
        return f"{self.name}.cleanup"

    @property
    def delete_files_job(self) -> str:
        return f"{self.name}.delete-files"

    def is_removed(self, row: M) -> bool:
        return self.removable and bool(row.removed)  # type: ignore[attr-defined]


UPLOAD_KINDS: dict[str, UploadKind[Any]] = {}


def declare_upload(kind: UploadKind[M]) -> UploadKind[M]:
    """Register ``kind`` and its jobs (once per process)."""
    known = UPLOAD_KINDS.get(kind.name)
    if known is kind:
        return kind
    if known is not None:
        raise ValueError(f"upload kind {kind.name} declared twice")
    UPLOAD_KINDS[kind.name] = kind
    register_jobs(kind)
    return kind


def load_upload_kinds() -> list[UploadKind[Any]]:
    """Import every ``courier.domains.<name>.uploads`` module (each declares its kinds)."""
    import courier.domains

    for module in sorted(pkgutil.iter_modules(courier.domains.__path__), key=lambda m: m.name):
        name = f"courier.domains.{module.name}.uploads"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return list(UPLOAD_KINDS.values())
