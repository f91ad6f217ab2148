"""Purging an individual from the events table (the outbox behind the event stream and webhooks).

Events hold ids only, but an event that names only the purged person (about them, or shown only
in their stream) still says what happened to them and when: it is deleted. An event that also
names other people stays for them, with the person's id taken out of its individuals and data.
Audit rows are not touched: they keep who changed what (ids and field names, never values).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import String, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.event import Event
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="events")
async def purge_events(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    ident = str(individual_id)
    pattern = f"%{ident}%"
    stmt = scoped(
        select(Event).where(
            or_(
                Event.resource_id == individual_id,
                cast(Event.individual_ids, String).like(pattern),
                cast(Event.data, String).like(pattern),
            )
        ),
        Event,
        organization_id,
    )
    events = list((await session.execute(stmt)).scalars().all())
    if archive is not None:
        archive.write_rows(Event.__tablename__, events)
    deleted = unlinked = 0
    for event in events:
        others = [i for i in event.individual_ids or [] if i != ident]
        if event.resource_id == individual_id or not others:
            await session.delete(event)
            deleted += 1
        else:
            event.individual_ids = others
            event.data = _without(event.data or {}, ident)
            unlinked += 1
    await session.flush()
    return {"events": deleted, "events.unlinked": unlinked}


def _without(data: dict[str, Any], ident: str) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in data.items():
        if value == ident:
            continue
        if isinstance(value, list):
            value = [v for v in value if v != ident]
        kept[key] = value
    return kept
