"""The SQL of webhooks: the delivery attempts of an endpoint."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.webhook import Webhook, WebhookDelivery

deliveries = Repository(WebhookDelivery, what="webhook delivery")


def deliveries_of(ctx: Context, webhook: Webhook) -> Select[Any]:
    """The delivery attempts of ``webhook`` (the organization's rows only)."""
    return deliveries.statement(ctx).where(WebhookDelivery.webhook_id == webhook.id)


def newest_first() -> list[Any]:
    """Newest first; ties by attempt, then id: stable pages."""
    return [
        WebhookDelivery.attempted_at.desc(),
        WebhookDelivery.attempt.desc(),
        WebhookDelivery.id.desc(),
    ]
