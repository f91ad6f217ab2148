"""The audit log row. Written only by :func:`courier.jsonapi.changes.write_changes`, in the
same transaction as the change.

Only the *names* of changed fields are kept, never their values, so no patient data lands here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from courier.models.audit_event import AuditEvent


class AuditActor(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def id(self) -> str: ...


def record(
    session: AsyncSession,
    actor: AuditActor,
    *,
    organization_id: uuid.UUID,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | None,
    fields: Iterable[str] = (),
    request_id: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        organization_id=organization_id,
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        request_id=request_id,
        changed_fields={"fields": sorted(fields)},
    )
    session.add(event)
    return event
