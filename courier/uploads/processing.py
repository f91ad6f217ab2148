"""Processing an upload: the storage side of ``POST /{id}/process-upload/``.

It reads the client's own upload (bounded by the size limit), inspects the bytes, and either
deletes them (refused) or copies exactly the bytes it inspected to the upload's file key,
with a thumbnail next to them, and deletes the upload. Every step is safe to repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from courier.providers.storage import Storage
from courier.uploads.inspection import Inspection, inspect
from courier.uploads.limits import too_large


@dataclass(frozen=True)
class Processed:
    inspection: Inspection
    size: int
    stored_key: str | None = None
    stored_thumbnail: str | None = None


async def process_object(
    storage: Storage,
    *,
    upload_key: str | None,
    stored_key: str,
    thumbnail_key_for: Callable[[str], str],
    allowed: frozenset[str],
    max_size: int,
) -> Processed | None:
    """Inspect what was uploaded at ``upload_key`` and keep it at ``stored_key`` (with a
    thumbnail at ``thumbnail_key_for(media type)``), or delete it when refused. None when
    nothing has been uploaded yet."""
    stored = stored_key
    source = upload_key or stored
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
        stored_thumbnail = thumbnail_key_for(inspection.thumbnail_type)
        await storage.write(
            stored_thumbnail, inspection.thumbnail, content_type=inspection.thumbnail_type
        )
    if source != stored:
        await storage.delete(source)
    return Processed(inspection, len(data), stored, stored_thumbnail)
