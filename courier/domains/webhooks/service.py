"""The rules of webhooks: safe target URLs, a secret shown once, deliveries newest first."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select

from courier.core.errors import invalid_attribute
from courier.domains.webhooks.repository import deliveries_of
from courier.events.webhooks import SECRET_PREFIX, UnsafeUrlError, parse_url, resolve_target
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.webhook import Webhook


def new_webhook_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes: the form Standard Webhooks libraries take."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


async def check_url(ctx: Context, url: str) -> str:
    """400 naming ``url`` unless it is https and resolves only to public addresses.

    Checked again before every delivery: what a name resolves to can change.
    """
    allow_private = ctx.settings.webhook_allow_private
    try:
        await resolve_target(url, allow_private=allow_private)
    except UnsafeUrlError as exc:
        detail = str(exc)
        if not allow_private and _allowed_if_private(url, detail):
            # Say what would have worked: the setting, meant for tests and closed networks.
            detail += (
                "; private addresses (and plain http) are refused unless the server sets "
                "COURIER_WEBHOOK_ALLOW_PRIVATE=true (for tests and closed networks only)"
            )
        raise invalid_attribute("url", detail, "invalid-webhook-url") from exc
    return url


def _allowed_if_private(url: str, detail: str) -> bool:
    """Whether the URL was refused only for what the private-address setting permits."""
    if "private" in detail:
        return True
    try:
        parse_url(url, allow_private=True)
    except UnsafeUrlError:
        return False
    return True


class WebhookService(CrudService[Webhook]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[Webhook]:
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
        # The secret is shown in this response only.
        return Changed(
            webhook,
            [self.change(ctx, "created", webhook, attrs.model_fields_set)],
            revealed={"secret": secret},
        )

    async def update(self, ctx: Context, obj: Webhook, attrs: WriteAttributes) -> Webhook:
        given = attrs.given()
        if "url" in given:
            await check_url(ctx, given["url"])
        for name, value in given.items():
            setattr(obj, name, value)
        return obj

    async def present(self, ctx: Context, rows: Sequence[Webhook]) -> list[dict[str, Any]]:
        out = await super().present(ctx, rows)
        for attributes in out:
            attributes.pop("secret", None)  # shown once, at creation (Changed.revealed)
        return out


async def do_get_deliveries(ctx: Context, webhook: Webhook, body: None) -> Select[Any]:
    """Every attempt to deliver an event to this endpoint, newest first: the event, the
    attempt number, the receiver's status code or the error, how long it took, and when the
    next attempt is due if it failed. Admin only."""
    return deliveries_of(ctx, webhook)
