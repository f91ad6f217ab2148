"""Purging an individual from multicasts.

Their rows among the multicasts' recipients (``fanout_targets`` of kind ``multicasts``) are
deleted, and their id is taken out of the multicasts that named them (``individual-ids`` of
the filter, ``individual-id`` of a one-recipient multicast). The counts stay: they say how
many were reached. Their notifications are the user-notification domain's to purge.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.multicasts import repository as repo
from courier.models.fanout import FanoutTarget
from courier.models.multicast import Multicast
from courier.purge import ArchiveWriter, delete_rows, purge_hook


@purge_hook("individual", name="multicasts", order=60)
async def purge_multicasts(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    ident = str(individual_id)
    counts = {
        "fanout_targets": await delete_rows(
            session,
            organization_id,
            FanoutTarget,
            repo.recipient_rows_of(organization_id, individual_id),
            archive,
        )
    }
    unlisted = 0
    for multicast in await repo.multicasts_naming(session, organization_id, individual_id):
        if archive is not None:
            archive.write(
                Multicast.__tablename__,
                {
                    "id": multicast.id,
                    "individual_id": multicast.individual_id,
                    "individual_ids": [ident] if ident in multicast.individual_ids else [],
                },
            )
        if multicast.individual_id == individual_id:
            multicast.individual_id = None
        if ident in multicast.individual_ids:
            multicast.individual_ids = [i for i in multicast.individual_ids if i != ident]
            value = dict(multicast.filter_value)
            value["individual-ids"] = [i for i in value.get("individual-ids", []) if i != ident]
            multicast.filter_value = value
        unlisted += 1
    await session.flush()
    counts["multicasts.unlisted"] = unlisted
    return counts
