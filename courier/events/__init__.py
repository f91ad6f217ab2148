"""Domain events: written with the change (outbox), announced after commit.

A service calls :func:`publish` in the same session as its change. The row lands in the
``events`` table only if the change commits; listeners registered with :func:`on_committed`
(the real-time stream, webhook fan-out) are told once it has. Event types are
``<resource-type>.<verb>``, e.g. ``messaging-messages.created``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.db import after_commit
from courier.models.event import Event

Listener = Callable[[list[Event]], Awaitable[None]]
_LISTENERS: list[Listener] = []

MAX_DATA_KEYS = 32


def on_committed(listener: Listener) -> None:
    """Call ``listener`` with the events of each transaction once it has committed."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def publish(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    resource_type: str,
    verb: str,
    resource_id: uuid.UUID | None,
    individual_ids: Iterable[uuid.UUID] = (),
    data: dict[str, Any] | None = None,
) -> Event:
    """Record ``<resource_type>.<verb>`` for the individuals it concerns (ids only)."""
    payload = dict(data or {})
    if len(payload) > MAX_DATA_KEYS or any(
        not isinstance(v, str | int | bool | None | list) for v in payload.values()
    ):
        raise ValueError("event data holds ids and small scalars only")
    event = Event(
        id=uuid.uuid4(),
        organization_id=organization_id,
        type=f"{resource_type}.{verb}",
        resource_type=resource_type,
        resource_id=resource_id,
        individual_ids=sorted({str(i) for i in individual_ids}),
        data=payload,
    )
    session.add(event)
    pending: list[Event] = session.info.setdefault("events", [])
    if not pending:

        async def announce() -> None:
            events = list(pending)
            pending.clear()
            for listener in list(_LISTENERS):
                await listener(events)

        after_commit(session, announce)
    pending.append(event)
    return event
