"""Who may see which attachment: whoever may see its message.

The messaging domain decides who may see a message (an individual sees the messages of the
channels it subscribes to, and of drafts only its own; a key without individual-id, every
posted message). Attachments follow their message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.tenancy import scoped
from courier.domains.messaging import repository as messaging_repo
from courier.jsonapi.context import Context
from courier.jsonapi.repository import CHUNK
from courier.models.messaging import MessagingMessage
from courier.models.messaging_attachment import MessagingAttachment
from courier.models.upload import UploadStatus


def visible_messages(ctx: Context) -> Select[Any]:
    """The messages the caller (and the individual it acts for) may see."""
    return messaging_repo.visible_messages(ctx.organization_id, ctx.acting_individual_id)


def visible_attachments(ctx: Context) -> Select[Any]:
    """Attachments of the messages the caller may see (for a key acting with individual-id,
    what that person may see)."""
    visible = visible_messages(ctx).with_only_columns(MessagingMessage.id)
    return scoped(
        select(MessagingAttachment).where(MessagingAttachment.message_id.in_(visible)),
        MessagingAttachment,
        ctx.organization_id,
    )


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


async def ready_attachments(
    session: AsyncSession, organization_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
) -> list[MessagingAttachment]:
    """The ready attachments (removed ones too) of the messages, oldest first within each
    chunk of message ids (one query per chunk)."""
    found: list[MessagingAttachment] = []
    for start in range(0, len(message_ids), CHUNK):
        stmt = scoped(
            select(MessagingAttachment)
            .where(
                MessagingAttachment.message_id.in_(message_ids[start : start + CHUNK]),
                MessagingAttachment.status == UploadStatus.READY.value,
            )
            .order_by(MessagingAttachment.created_at, MessagingAttachment.id),
            MessagingAttachment,
            organization_id,
        )
        found.extend((await session.execute(stmt)).scalars())
    return found


def attachments_of_individual(
    organization_id: uuid.UUID, individual_id: uuid.UUID
) -> ColumnElement[bool]:
    """The attachments ``individual_id`` uploaded or that belong to the messages they wrote (a
    condition on :class:`MessagingAttachment`, for ``courier.uploads.purge``)."""
    authored = scoped(
        select(MessagingMessage.id).where(MessagingMessage.individual_id == individual_id),
        MessagingMessage,
        organization_id,
    )
    return or_(
        MessagingAttachment.individual_id == individual_id,
        MessagingAttachment.message_id.in_(authored),
    )
