"""Purging an individual's push devices (their tokens identify their phones and browsers).
The push deliveries to them keep only the device's id, no content, and stay as delivery
history."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.push_device import UserDevice
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="user-devices")
async def purge_user_devices(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    stmt = scoped(
        select(UserDevice).where(UserDevice.individual_id == individual_id),
        UserDevice,
        organization_id,
    )
    rows = (await session.execute(stmt)).scalars().all()
    if archive is not None:
        archive.write_rows("user_devices", rows)
    for row in rows:
        await session.delete(row)
    return {"user_devices": len(rows)}
