"""The audit log is written by the changes themselves (courier.core.audit); here it is read."""

from __future__ import annotations

from courier.jsonapi.resource import CrudService
from courier.models.audit_event import AuditEvent


class AuditEventService(CrudService[AuditEvent]):
    """Read-only: the generic list and get, scoped to the caller's organization."""
