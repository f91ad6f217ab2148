from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.sniffers.repository import newest_first
from courier.domains.sniffers.schemas import SnifferCreate, SnifferLogRead, SnifferRead
from courier.domains.sniffers.service import SnifferService, do_get_logs, present_logs
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, Listing
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.sniffer import Sniffer

# Admin only, and never with an individual token (no individual_scope): the logs hold other
# people's requests.
sniffers = register(
    ResourceSpec(
        type_name="sniffers",
        model=Sniffer,
        read_schema=SnifferRead,
        create_schema=SnifferCreate,
        service=SnifferService(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.DELETE}),
        filters=[
            q.uuid_eq("filter[user-id]", Sniffer.user_id, "Sniffers of this user"),
            q.uuid_eq("filter[api-key-id]", Sniffer.api_key_id, "Sniffers of this API key"),
        ],
        sorts={"created-time": Sniffer.created_at, "valid-until": Sniffer.valid_until},
        default_sort=[("created-time", True)],
        permissions={op: Permission.MANAGE for op in (Op.LIST, Op.GET, Op.CREATE, Op.DELETE)},
        tag="operations",
        summaries={
            Op.LIST: "List sniffers",
            Op.GET: "Get one sniffer",
            Op.CREATE: "Record a user's (or an API key's) API requests until valid-until",
            Op.DELETE: "Stop a sniffer and delete its logs",
        },
        singular="sniffer",
        actions=[
            ActionSpec(
                "get-logs",
                do_get_logs,
                summary="Requests and responses recorded by a sniffer",
                method="GET",
                permission=Permission.MANAGE,
                listing=Listing(
                    "sniffer-logs", SnifferLogRead, order=newest_first, present=present_logs
                ),
            )
        ],
    )
)
