"""Purging an individual from the sniffers: their recorded requests, and sniffers of their users.

Recorded requests hold bodies, so they may hold anyone's data: every log made with the
person's token goes, and every log whose path, query or bodies name their id.
"""

from __future__ import annotations

import uuid

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.people.repository import users_of_individual
from courier.models.sniffer import Sniffer, SnifferLog
from courier.purge import ArchiveWriter, delete_rows, purge_hook


@purge_hook("individual", name="sniffers")
async def purge_sniffers(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    pattern = f"%{individual_id}%"
    logs = await delete_rows(
        session,
        organization_id,
        SnifferLog,
        or_(
            SnifferLog.individual_id == individual_id,
            SnifferLog.path.like(pattern),
            SnifferLog.query_string.like(pattern),
            SnifferLog.request_body.like(pattern),
            SnifferLog.response_body.like(pattern),
        ),
        archive,
    )
    user_ids = await users_of_individual(session, organization_id, individual_id)
    sniffers = 0
    if user_ids:
        # Their remaining logs (if any) go with them, by the foreign key's cascade.
        sniffers = await delete_rows(
            session, organization_id, Sniffer, Sniffer.user_id.in_(user_ids), archive
        )
    return {"sniffer_logs": logs, "sniffers": sniffers}
