"""Purging an individual's push devices (their tokens identify their phones and browsers).
The push deliveries to them keep only the device's id, no content, and stay as delivery
history."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.user_devices.repository import devices_of_individual
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="user-devices")
async def purge_user_devices(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    rows = await devices_of_individual(session, organization_id, individual_id)
    if archive is not None:
        archive.write_rows("user_devices", rows)
    for row in rows:
        await session.delete(row)
    return {"user_devices": len(rows)}
