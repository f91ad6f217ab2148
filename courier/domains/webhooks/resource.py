from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.webhooks.repository import newest_first
from courier.domains.webhooks.schemas import (
    WebhookCreate,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookUpdate,
)
from courier.domains.webhooks.service import WebhookService, do_get_deliveries
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, Listing
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.webhook import Webhook

webhooks = register(
    ResourceSpec(
        type_name="webhooks",
        model=Webhook,
        read_schema=WebhookRead,
        create_schema=WebhookCreate,
        update_schema=WebhookUpdate,
        service=WebhookService(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE, Op.DELETE}),
        filters=[q.boolean("filter[active]", Webhook.active, "Active (or inactive) webhooks")],
        sorts={"created-at": Webhook.created_at, "url": Webhook.url},
        default_sort=[("created-at", False)],
        # Admin only: a webhook receives every event of the organization it subscribes to.
        permissions={Op.LIST: Permission.MANAGE, Op.GET: Permission.MANAGE},
        tag="operations",
        summaries={
            Op.LIST: "Webhook endpoints of the organization",
            Op.GET: "Get one webhook endpoint",
            Op.CREATE: "Register a webhook endpoint (url, event types, secret)",
            Op.UPDATE: "Modify a webhook endpoint",
            Op.DELETE: "Remove a webhook endpoint",
        },
        singular="webhook",
        actions=[
            ActionSpec(
                "get-deliveries",
                do_get_deliveries,
                summary="Delivery attempts of a webhook endpoint",
                method="GET",
                permission=Permission.MANAGE,
                listing=Listing("webhook-deliveries", WebhookDeliveryRead, order=newest_first),
            )
        ],
    )
)
