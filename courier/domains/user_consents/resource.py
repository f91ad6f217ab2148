"""``/v1/user-consents/``: SMS consent requests and their state, with history."""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.user_consents.schemas import UserConsentCreate, UserConsentRead
from courier.domains.user_consents.service import UserConsentService
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.user_consent import UserConsent

user_consents = register(
    ResourceSpec(
        type_name="user-consents",
        model=UserConsent,
        read_schema=UserConsentRead,
        create_schema=UserConsentCreate,
        service=UserConsentService(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.uuid_eq(
                "filter[organization-id]", UserConsent.organization_id, "The caller's organization"
            ),
            q.uuid_eq("filter[user-id]", UserConsent.user_id, "Consents of this user"),
        ],
        sorts={"created-at": UserConsent.created_at},
        default_sort=[("created-at", True)],
        permissions={Op.CREATE: Permission.COMMUNICATE},
        summaries={
            Op.LIST: "List consents (filter[organization-id], filter[user-id])",
            Op.GET: "Get one consent with its state and history",
            Op.CREATE: "Start an SMS consent request (initial, accept, invalid-response messages)",
        },
        singular="user consent",
        tag="sms",
    )
)
