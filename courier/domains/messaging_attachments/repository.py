"""Who may see which attachment: whoever may see its message.

The messaging domain decides who may see a message (an individual sees the messages of the
channels it subscribes to, and of drafts only its own; a key without individual-id, every
posted message). Attachments follow their message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.db import is_postgres
from courier.core.direct import Direct
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


_ORG: Any = bindparam("org")


def _ready(postgres: bool) -> Direct:
    a = MessagingAttachment
    columns = (
        a.id,
        a.message_id,
        a.filename,
        a.content_type,
        a.content_size,
        a.status,
        a.removed,
        a.storage_key,
        a.thumbnail_key,
        a.created_at,
    )
    return Direct(
        scoped(
            cast("Select[Any]", select(*columns)).where(
                messaging_repo.among_ids(a.message_id, postgres),
                a.status == UploadStatus.READY.value,
            ),
            a,
            _ORG,
        ).order_by(a.created_at, a.id)
    )


# (on PostgreSQL)
_READY = {postgres: _ready(postgres) for postgres in (True, False)}


async def ready_attachments(
    session: AsyncSession, organization_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
) -> list[Any]:
    """The ready attachments (removed ones too) of the messages, oldest first within each
    chunk of message ids (one statement per chunk, built once): Core rows of the columns a
    message's attachment shows (``id``, ``message_id``, ``filename``, ``content_type``,
    ``content_size``, ``status``, ``removed``, ``storage_key``, ``thumbnail_key``,
    ``created_at``)."""
    statement = _READY[is_postgres(session)]
    connection = await session.connection()
    found: list[Any] = []
    for start in range(0, len(message_ids), CHUNK):
        params = {"org": organization_id, "ids": list(message_ids[start : start + CHUNK])}
        found.extend(await statement.rows(connection, params))
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
