"""Who may see which attachment: whoever may see its message.

The messaging domain decides who may see a message (an individual sees the messages of the
channels it subscribes to, and of drafts only its own; a key without individual-id, every
posted message). Attachments follow their message.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select

from courier.core.auth import Principal
from courier.core.tenancy import scoped
from courier.domains.messaging import repository as messaging_repo
from courier.jsonapi.context import Context
from courier.models.messaging import MessagingMessage
from courier.models.messaging_attachment import MessagingAttachment


def visible_messages(ctx: Context) -> Select[Any]:
    """The messages the caller (and the individual it acts for) may see."""
    return messaging_repo.visible_messages(ctx.organization_id, ctx.acting_individual_id)


def individual_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """Attachments of the messages an individual token may see."""
    message_scope = messaging_repo.message_scope
    messages = scoped(
        select(MessagingMessage.id), MessagingMessage, principal.require_organization()
    )
    return stmt.where(MessagingAttachment.message_id.in_(message_scope(messages, principal)))


async def visible_message(ctx: Context, message_id: uuid.UUID) -> MessagingMessage | None:
    """The message if the caller may see it; else None (the caller learns nothing more)."""
    stmt = visible_messages(ctx).where(MessagingMessage.id == message_id)
    found: MessagingMessage | None = (await ctx.session.execute(stmt)).scalar_one_or_none()
    return found
