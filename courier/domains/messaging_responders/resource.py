"""``messaging-responders``: list, get, create, patch; the actions enable and disable (admin)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, literal

from courier.domains.messaging_responders.schemas import (
    RESPONDER_TYPE,
    ResponderCreate,
    ResponderRead,
    ResponderUpdate,
)
from courier.domains.messaging_responders.service import responders
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, EmptyBody
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.base import UTCDateTime
from courier.models.messaging_responder import MessagingResponder

# A missing start-at means "since always", a missing end-at "for ever": they sort so, the same
# on every database (PostgreSQL and SQLite place NULLs differently).
_DAWN = literal(datetime(1, 1, 1, tzinfo=UTC), UTCDateTime())
_NEVER = literal(datetime(9999, 12, 31, tzinfo=UTC), UTCDateTime())

messaging_responders = register(
    ResourceSpec(
        type_name=RESPONDER_TYPE,
        model=MessagingResponder,
        read_schema=ResponderRead,
        create_schema=ResponderCreate,
        update_schema=ResponderUpdate,
        service=responders,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.uuid_eq(
                "organization-id",
                MessagingResponder.organization_id,
                "The caller's organization (the default); another organization's id finds nothing",
            ),
            q.time_window("start-at", MessagingResponder.start_at),
            q.time_window("end-at", MessagingResponder.end_at),
            q.boolean("filter[enabled]", MessagingResponder.enabled, "Enabled responders or not"),
            q.uuid_eq(
                "filter[individual-group-id]",
                MessagingResponder.individual_group_id,
                "Responders of this individual group",
            ),
        ],
        sorts={
            "created-at": MessagingResponder.created_at,
            "start-at": func.coalesce(MessagingResponder.start_at, _DAWN),
            "end-at": func.coalesce(MessagingResponder.end_at, _NEVER),
        },
        default_sort=[("created-at", False)],
        summaries={
            Op.LIST: "List auto-responders (filter[cmp-start-at], filter[cmp-end-at], "
            "filter[enabled], filter[individual-group-id]; sort created-at, start-at, end-at)",
            Op.GET: "Get one auto-responder",
            Op.CREATE: "Create an auto-responder (admin): its group, calendar-args (rules in a "
            "timezone), optional start-at/end-at, and args (message, message-js, individual-id)",
            Op.UPDATE: "Modify an auto-responder (admin)",
        },
        singular="messaging responder",
        tag="messaging",
        actions=[
            ActionSpec(
                "enable",
                responders.do_enable,
                summary="Enable an auto-responder (admin)",
                body=EmptyBody,
            ),
            ActionSpec(
                "disable",
                responders.do_disable,
                summary="Disable an auto-responder (admin): it no longer replies",
                body=EmptyBody,
            ),
        ],
    )
)
