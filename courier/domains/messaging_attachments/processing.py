"""Processing an upload: the storage side of ``POST /{id}/process-upload/``.

It reads the client's own upload (bounded by the size limit), inspects the bytes, and either
deletes them (refused) or copies exactly the bytes it inspected to the attachment's file key,
with a thumbnail next to them, and deletes the upload. Every step is safe to repeat.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from courier.domains.messaging_attachments.inspection import Inspection, inspect, too_large
from courier.domains.messaging_attachments.service import file_key, thumbnail_key
from courier.models.messaging_attachment import MessagingAttachment
from courier.providers.storage import Storage


@dataclass(frozen=True)
class Processed:
    inspection: Inspection
    size: int
    stored_key: str | None = None
    stored_thumbnail: str | None = None


async def process_upload(
    storage: Storage,
    attachment: MessagingAttachment,
    *,
    allowed: frozenset[str],
    max_size: int,
) -> Processed | None:
    """The verdict on the uploaded file; None when nothing has been uploaded yet."""
    stored = file_key(attachment.organization_id, attachment.id)
    source = attachment.upload_key or stored
    found = await storage.head(source)
    if found is None and source != stored:
        # An earlier attempt may have copied the upload away and then failed to commit.
        source, found = stored, await storage.head(stored)
    if found is None:
        return None
    if found.size > max_size:
        await storage.delete(source)
        return Processed(Inspection(None, too_large(found.size, max_size)), found.size)
    try:
        # One byte more than allowed tells a file that grew since head() from one that fits.
        data = await storage.read(source, max_bytes=max_size + 1)
    except FileNotFoundError:
        return None
    inspection = await asyncio.to_thread(inspect, data, allowed=allowed, max_size=max_size)
    if inspection.refusal is not None:
        await storage.delete(source)
        return Processed(inspection, len(data))
    assert inspection.content_type is not None
    if source != stored:
        await storage.write(stored, data, content_type=inspection.content_type)
    stored_thumbnail = None
    if inspection.thumbnail is not None and inspection.thumbnail_type is not None:
        stored_thumbnail = thumbnail_key(
            attachment.organization_id, attachment.id, inspection.thumbnail_type
        )
        await storage.write(
            stored_thumbnail, inspection.thumbnail, content_type=inspection.thumbnail_type
        )
    if source != stored:
        await storage.delete(source)
    return Processed(inspection, len(data), stored, stored_thumbnail)
