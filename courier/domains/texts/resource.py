"""``/v1/texts/``: send a text and follow its delivery. Listing needs ``account-id``."""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.texts.schemas import TextCreate, TextRead
from courier.domains.texts.service import TextService
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.text import OutboundText

texts = register(
    ResourceSpec(
        type_name="texts",
        model=OutboundText,
        read_schema=TextRead,
        create_schema=TextCreate,
        service=TextService(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.uuid_eq(
                "account-id", OutboundText.account_id, "Texts of this account", required=True
            ),
            q.uuid_eq("filter[number-id]", OutboundText.number_id, "Texts sent from this number"),
            q.phone("filter[target]", OutboundText.target, "Texts sent to this phone (E.164)"),
        ],
        sorts={"created-at": OutboundText.created_at},
        default_sort=[("created-at", True)],
        permissions={Op.CREATE: Permission.COMMUNICATE},
        summaries={
            Op.LIST: "List texts (account-id required, filter[number-id], filter[target])",
            Op.GET: "Get one text with delivery status",
            Op.CREATE: "Send a text (target E.164, callback-url, callback-status-url, "
            "expected-responses)",
        },
        singular="text",
        tag="sms",
        audited=True,
    )
)
