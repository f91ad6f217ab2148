"""Purging an individual from auto-responders: a responder that replied as them forgets them
(it replies as the group's first leader from then on)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.models.messaging_responder import MessagingResponder
from courier.purge import ArchiveWriter, purge_hook, update_rows


@purge_hook("individual", name="messaging-responders")
async def purge_responders(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    unlinked = await update_rows(
        session,
        organization_id,
        MessagingResponder,
        MessagingResponder.individual_id == individual_id,
        {"individual_id": None},
        archive,
    )
    return {"messaging_responders.unlinked": unlinked}
