from __future__ import annotations

from courier.core.auth import Permission, PrincipalKind
from courier.domains.audit_events.schemas import AuditEventRead
from courier.domains.audit_events.service import AuditEventService
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.audit_event import AuditEvent

audit_events = register(
    ResourceSpec(
        type_name="audit-events",
        model=AuditEvent,
        read_schema=AuditEventRead,
        service=AuditEventService(),
        ops=frozenset({Op.LIST, Op.GET}),
        filters=[
            q.eq(
                "filter[actor-id]",
                AuditEvent.actor_id,
                q.parse_text(64),
                "Changes made by this actor (an API key's id, an individual's id, or 'master')",
            ),
            q.enum(
                "filter[actor-type]",
                AuditEvent.actor_type,
                [kind.value for kind in PrincipalKind],
                "Changes made by this kind of credential",
            ),
            q.eq(
                "filter[resource-type]",
                AuditEvent.resource_type,
                q.parse_text(64),
                "Changes to resources of this JSON:API type",
            ),
            q.uuid_eq("filter[resource-id]", AuditEvent.resource_id, "Changes to this resource"),
            q.eq(
                "filter[action]",
                AuditEvent.action,
                q.parse_text(32),
                "Changes of this kind (created, updated, deleted …)",
            ),
            q.time_window("occurred-at", AuditEvent.occurred_at),
        ],
        sorts={"occurred-at": AuditEvent.occurred_at},
        default_sort=[("occurred-at", True)],
        # The log shows who did what across the organization: administrators only.
        permissions={Op.LIST: Permission.MANAGE, Op.GET: Permission.MANAGE},
        audited=False,
        summaries={
            Op.LIST: "Audit log of changes (admin): filter by actor, resource type, time window",
            Op.GET: "Get one audit event",
        },
        singular="audit event",
    )
)
