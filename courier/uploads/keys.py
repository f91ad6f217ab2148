"""Where an upload's objects live in storage.

Every object of an upload sits under ``orgs/<organization>/<segment>/<upload id>/``: the
client's ``upload``, the verified ``file`` (a key no upload link can write to, so a second
upload cannot swap a verified file) and its ``thumbnail.png`` or ``thumbnail.jpg``. Keys are
never made of a client's file name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol


class StoredRow(Protocol):
    """The columns of an upload row that name objects."""

    id: uuid.UUID
    organization_id: uuid.UUID
    upload_key: str | None
    storage_key: str | None
    thumbnail_key: str | None


@dataclass(frozen=True)
class UploadKeys:
    segment: str  # e.g. "messaging-attachments"

    def prefix(self, organization_id: uuid.UUID, upload_id: uuid.UUID) -> str:
        return f"orgs/{organization_id}/{self.segment}/{upload_id}"

    def upload(self, organization_id: uuid.UUID, upload_id: uuid.UUID) -> str:
        """Where the client uploads."""
        return self.prefix(organization_id, upload_id) + "/upload"

    def file(self, organization_id: uuid.UUID, upload_id: uuid.UUID) -> str:
        """Where the verified bytes are kept."""
        return self.prefix(organization_id, upload_id) + "/file"

    def thumbnail(self, organization_id: uuid.UUID, upload_id: uuid.UUID, media_type: str) -> str:
        suffix = "png" if media_type == "image/png" else "jpg"
        return self.prefix(organization_id, upload_id) + f"/thumbnail.{suffix}"

    def own(self, organization_id: uuid.UUID, upload_id: uuid.UUID) -> list[str]:
        """Every key under the upload's own prefix (deleting a missing one is a no-op). Only
        these are deleted with an upload whose row is gone: a row may also point at objects
        it shares (a bulk message's posted copies point at the bulk attachment's file)."""
        return [
            self.upload(organization_id, upload_id),
            self.file(organization_id, upload_id),
            self.thumbnail(organization_id, upload_id, "image/png"),
            self.thumbnail(organization_id, upload_id, "image/jpeg"),
        ]

    def of_row(self, row: StoredRow) -> list[str]:
        """Its own keys and those the row records (of a pending upload: its own too)."""
        keys = self.own(row.organization_id, row.id)
        for known in (row.upload_key, row.storage_key, row.thumbnail_key):
            if known and known not in keys:
                keys.append(known)
        return keys
