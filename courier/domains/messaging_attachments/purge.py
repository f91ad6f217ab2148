"""Purging an individual: the attachments they uploaded, and those of the messages they wrote.

The rows are archived and deleted in the purge's transaction, their stored files by
``messaging-attachments.delete-files`` jobs (``courier.uploads.purge``). It runs before the
messaging hook (order 50), which unlinks the authors of the messages this hook looks for.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.messaging_attachments.repository import attachments_of_individual
from courier.domains.messaging_attachments.uploads import messaging_uploads
from courier.purge import ArchiveWriter, purge_hook
from courier.uploads.purge import purge_uploads


@purge_hook("individual", name="messaging-attachments", order=50)
async def purge_attachments(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    theirs = attachments_of_individual(organization_id, individual_id)
    count = await purge_uploads(session, messaging_uploads, organization_id, theirs, archive)
    return {"messaging_attachments": count}
