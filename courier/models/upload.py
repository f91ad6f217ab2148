"""The columns every two-step upload shares (no table of its own; see ``courier.uploads``).

A row starts ``pending`` with an upload key the client may write to until
``upload_expires_at``; processing checks the bytes, copies them to ``storage_key`` (a key no
upload link can write) and makes the row ``ready``, or deletes them and marks it ``rejected``.
Messaging attachments, bulk attachments and email attachments are such rows, each with the
column naming what it hangs on.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import IdMixin, TenantMixin


class UploadStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    REJECTED = "rejected"


class UploadColumns(IdMixin, TenantMixin):
    """Mixed into each upload table (before ``Base``), with its id and organization."""

    created_by: Mapped[str] = mapped_column(String(64))  # the principal's actor id
    filename: Mapped[str] = mapped_column(String(255))
    claimed_content_type: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(255))  # detected from the bytes
    content_size: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=UploadStatus.PENDING.value)
    rejection: Mapped[str | None] = mapped_column(String(64))  # why processing refused it
    # Where the client uploads; cleared once the upload window has closed and it is deleted.
    upload_key: Mapped[str | None] = mapped_column(String(512))
    upload_expires_at: Mapped[datetime]
    storage_key: Mapped[str | None] = mapped_column(String(512))  # the verified file
    thumbnail_key: Mapped[str | None] = mapped_column(String(512))
    processed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
