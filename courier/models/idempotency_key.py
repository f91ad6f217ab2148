from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.core.time import utcnow
from courier.models.base import Base, IdMixin


class IdempotencyKey(IdMixin, Base):
    """One ``Idempotency-Key`` of one credential: who runs it now, and the response to replay.

    Not a tenant table: the master key, which has no organization, uses keys too.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    scope: Mapped[str] = mapped_column(String(128))  # the credential, e.g. "api-key:<id>"
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path, body
    lease: Mapped[str] = mapped_column(String(32))  # token of the request that runs it now
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    committed: Mapped[bool] = mapped_column(default=False)  # the request's change has landed
    completed_at: Mapped[datetime | None]
    response_status: Mapped[int | None]
    response_headers: Mapped[dict[str, Any] | None]
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
