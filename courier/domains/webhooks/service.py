"""The rules of webhooks: safe target URLs, a secret shown once, deliveries newest first."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select

from courier.core.errors import invalid_attribute
from courier.core.tenancy import scoped
from courier.events.webhooks import SECRET_PREFIX, UnsafeUrlError, resolve_target
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.webhook import Webhook, WebhookDelivery


def new_webhook_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes: the form Standard Webhooks libraries take."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


async def check_url(ctx: Context, url: str) -> str:
    """400 naming ``url`` unless it is https and resolves only to public addresses.

    Checked again before every delivery: what a name resolves to can change.
    """
    try:
        await resolve_target(url, allow_private=ctx.settings.webhook_allow_private)
    except UnsafeUrlError as exc:
        raise invalid_attribute("url", str(exc), "invalid-webhook-url") from exc
    return url


class WebhookService(CrudService[Webhook]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Webhook:
        values = attrs.model_dump()
        await check_url(ctx, values["url"])
        secret = values.pop("secret") or new_webhook_secret()
        webhook = Webhook(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            secret=secret,
            created_by=ctx.principal.actor_id,
            **values,
        )
        ctx.session.add(webhook)
        ctx.extras[f"secret:{webhook.id}"] = secret
        return webhook

    async def update(self, ctx: Context, obj: Webhook, attrs: WriteAttributes) -> Webhook:
        given = attrs.given()
        if "url" in given:
            await check_url(ctx, given["url"])
        for name, value in given.items():
            setattr(obj, name, value)
        return obj

    async def present(self, ctx: Context, rows: Sequence[Webhook]) -> list[dict[str, Any]]:
        out = await super().present(ctx, rows)
        for row, attributes in zip(rows, out, strict=True):
            secret = ctx.extras.get(f"secret:{row.id}")
            if secret is None:
                attributes.pop("secret", None)
            else:
                attributes["secret"] = secret
        return out


def deliveries_query(ctx: Context, webhook: Webhook) -> Select[Any]:
    """The delivery attempts of ``webhook``, newest first (ties by id: stable pages)."""
    stmt = scoped(select(WebhookDelivery), WebhookDelivery, ctx.organization_id)
    return stmt.where(WebhookDelivery.webhook_id == webhook.id)
