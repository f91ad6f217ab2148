"""The audit log row. Written only by :func:`courier.jsonapi.changes.write_changes`, in the
same transaction as the change.

Only the *names* of changed fields are kept, never their values, so no patient data lands here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from courier.core.time import utcnow


class AuditActor(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def id(self) -> str: ...


def row(
    actor: AuditActor,
    *,
    organization_id: uuid.UUID,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | None,
    fields: Iterable[str] = (),
    request_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """The values of one ``audit_events`` row (every column named: rows are written by one
    multi-row INSERT per transaction, see :func:`courier.events.add_audit_rows`)."""
    return {
        "id": uuid.uuid4(),
        "organization_id": organization_id,
        "occurred_at": occurred_at or utcnow(),
        "actor_type": actor.type,
        "actor_id": actor.id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "request_id": request_id,
        "changed_fields": {"fields": sorted(fields), **(details or {})},
    }
