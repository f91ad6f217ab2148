"""Purging an individual from announcers: a rule that names the individual among its
``args.individual-ids`` forgets them (the rule stays, for its other recipients). The record of
the events rules acted on holds counts only, and the notifications are purged by their own
domain."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.time import now_ms
from courier.domains.announcers.repository import all_announcers
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="announcers")
async def purge_announcers(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    ident = str(individual_id)
    naming = [
        announcer
        for announcer in await all_announcers(session, organization_id)
        if ident in (announcer.args.get("individual-ids") or [])
    ]
    if archive is not None:
        archive.write_rows("announcers", naming)
    for announcer in naming:
        kept = [i for i in announcer.args["individual-ids"] if i != ident]
        announcer.args = {**announcer.args, "individual-ids": kept}
        announcer.last_modified_at = now_ms()
    return {"announcers.individual-ids": len(naming)}
