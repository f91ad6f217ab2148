"""The audit log: one row per change, written in the same transaction as the change.

Only the *names* of changed fields are kept, never their values, so no patient data lands here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.models.audit_event import AuditEvent


def record(
    session: AsyncSession,
    principal: Principal,
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
        actor_type=principal.kind.value,
        actor_id=principal.actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        request_id=request_id,
        changed_fields={"fields": sorted(fields)},
    )
    session.add(event)
    return event
