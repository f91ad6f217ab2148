"""An event as its publishing transaction holds it (:mod:`courier.events`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True, eq=False)
class Published:
    """One event as its publishing transaction holds it: the row's values, and its ``seq``
    once written (0 before). What consumers and :func:`on_committed` listeners are given."""

    id: uuid.UUID
    organization_id: uuid.UUID
    type: str
    resource_type: str
    resource_id: uuid.UUID | None
    individual_ids: list[str]
    data: dict[str, Any]
    occurred_at: datetime
    seq: int = 0


@dataclass(frozen=True, slots=True)
class NewEvent:
    """What :func:`publish_many` records: ``<resource_type>.<verb>`` for the individuals it
    concerns (ids only), with a small payload of ids and scalars."""

    organization_id: uuid.UUID
    resource_type: str
    verb: str
    resource_id: uuid.UUID | None
    individual_ids: Iterable[uuid.UUID] = ()
    data: Mapping[str, Any] | None = None


__all__ = ["NewEvent", "Published"]
