"""The rules of messaging attachments: who may attach to and see which message, and the
states of an upload (pending -> ready | rejected; removed hides a ready file for good).

Who may see an attachment is who may see its message: an API key of the organization, or an
individual subscribed to the message's channel (an individual token, or an API key acting for
an individual through ``individual-id``). Services never commit and never call providers.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.auth import Principal
from courier.core.errors import ApiError, ErrorItem, conflict, forbidden, not_found
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.domains.messaging import repository as messaging_repo
from courier.domains.messaging_attachments.inspection import Inspection, Refusal
from courier.domains.messaging_attachments.render import describe
from courier.domains.messaging_attachments.schemas import AttachmentCreate, AttachmentUpdate
from courier.jobs import enqueue
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.messaging import MessagingMessage
from courier.models.messaging_attachment import AttachmentStatus, MessagingAttachment
from courier.providers.storage import storage_for

CLEANUP_JOB = "messaging-attachments.cleanup"
DELETE_FILES_JOB = "messaging-attachments.delete-files"
# Processing may finish a little after the upload link expired; the sweep waits this long.
UPLOAD_GRACE = timedelta(minutes=5)
# Cleanup jobs of an organization are grouped in windows of this many seconds: one job per
# window, however many uploads start in it.
CLEANUP_WINDOW_SECONDS = 300


def allowed_types(settings: Settings) -> frozenset[str]:
    return frozenset(
        t.strip().lower() for t in settings.attachment_allowed_types.split(",") if t.strip()
    )


def check_claimed_type(settings: Settings, content_type: str | None) -> None:
    """Refuse at once (415) a claimed content type that could never be accepted; the real type
    is still detected from the bytes when the upload is processed."""
    allowed = allowed_types(settings)
    if content_type is not None and content_type not in allowed:
        raise ApiError(
            415,
            [
                ErrorItem(
                    f"content-type {content_type} is not an accepted attachment type; "
                    "accepted: " + ", ".join(sorted(allowed)),
                    "unsupported-attachment-type",
                    pointer="/data/attributes/content-type",
                )
            ],
            {},
            True,
        )


def object_prefix(organization_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return f"orgs/{organization_id}/messaging-attachments/{attachment_id}"


def upload_key(organization_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    """Where the client uploads: a key no other link can write to, and the file is copied away
    from once verified (so a second upload cannot swap a verified file)."""
    return object_prefix(organization_id, attachment_id) + "/upload"


def file_key(organization_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return object_prefix(organization_id, attachment_id) + "/file"


def thumbnail_key(organization_id: uuid.UUID, attachment_id: uuid.UUID, media_type: str) -> str:
    suffix = "png" if media_type == "image/png" else "jpg"
    return object_prefix(organization_id, attachment_id) + f"/thumbnail.{suffix}"


def attachment_keys(organization_id: uuid.UUID, attachment_id: uuid.UUID) -> list[str]:
    """Every key an attachment's objects may have (deleting a missing one is a no-op)."""
    return [
        upload_key(organization_id, attachment_id),
        file_key(organization_id, attachment_id),
        thumbnail_key(organization_id, attachment_id, "image/png"),
        thumbnail_key(organization_id, attachment_id, "image/jpeg"),
    ]


def derived_keys(row: MessagingAttachment) -> list[str]:
    """Every key a row may have objects under, those it records included."""
    keys = attachment_keys(row.organization_id, row.id)
    for known in (row.upload_key, row.storage_key, row.thumbnail_key):
        if known and known not in keys:
            keys.append(known)
    return keys


# --- who may see what --------------------------------------------------------------------------
# The messaging domain decides who may see a message (MessageService.query: an individual sees
# the messages of the channels it subscribes to, and of drafts only its own; a key without
# individual-id, every posted message). Attachments follow their message.


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


# --- cleanup scheduling ------------------------------------------------------------------------


def cleanup_window(moment: datetime) -> int:
    """The Unix time at which the cleanup job covering ``moment`` runs."""
    return math.ceil(moment.timestamp() / CLEANUP_WINDOW_SECONDS) * CLEANUP_WINDOW_SECONDS


async def schedule_cleanup(
    session: AsyncSession, organization_id: uuid.UUID, upload_expires_at: datetime
) -> None:
    """Make sure a cleanup job runs once this upload window (and its grace) has closed.

    One job per organization and window: the dedupe key returns the existing one."""
    window = cleanup_window(upload_expires_at + UPLOAD_GRACE)
    await enqueue(
        session,
        CLEANUP_JOB,
        {},
        organization_id=organization_id,
        run_at=datetime.fromtimestamp(window, UTC),
        dedupe_key=f"{CLEANUP_JOB}:{window}",
    )


# --- the service -------------------------------------------------------------------------------


class AttachmentService(CrudService[MessagingAttachment]):
    def query(self, ctx: Context) -> Select[Any]:
        """Attachments of the messages the caller may see (for a key acting with individual-id,
        what that person may see)."""
        visible = visible_messages(ctx).with_only_columns(MessagingMessage.id)
        return scoped(
            select(MessagingAttachment).where(MessagingAttachment.message_id.in_(visible)),
            MessagingAttachment,
            ctx.organization_id,
        )

    async def present(
        self, ctx: Context, rows: Sequence[MessagingAttachment]
    ) -> list[dict[str, Any]]:
        storage = storage_for(ctx.settings, base_url=str(ctx.request.base_url))
        return [await describe(storage, ctx.settings, row) for row in rows]

    def individuals_of(self, obj: MessagingAttachment) -> Sequence[uuid.UUID]:
        return (obj.individual_id,) if obj.individual_id else ()

    async def do_start_upload(self, ctx: Context, attrs: AttachmentCreate) -> MessagingAttachment:
        """A pending attachment of a message the caller may see (its upload link follows)."""
        settings = ctx.settings
        message = await visible_message(ctx, attrs.message_id)
        if message is None:
            raise not_found("message")
        if message.removed:
            raise conflict("the message was removed; nothing can be attached to it", "removed")
        check_claimed_type(settings, attrs.content_type)
        ident = uuid.uuid4()
        now = utcnow()
        attachment = MessagingAttachment(
            id=ident,
            organization_id=ctx.organization_id,
            message_id=message.id,
            individual_id=ctx.acting_individual_id,
            created_by=ctx.principal.actor_id,
            filename=attrs.filename,
            claimed_content_type=attrs.content_type,
            status=AttachmentStatus.PENDING.value,
            removed=False,
            upload_key=upload_key(ctx.organization_id, ident),
            upload_expires_at=now + timedelta(seconds=settings.attachment_upload_ttl_seconds),
            created_at=now,
            last_modified_at=now,
        )
        ctx.session.add(attachment)
        await ctx.session.flush()
        self.audit(ctx, "created", attachment, sorted(attrs.model_fields_set))
        await schedule_cleanup(ctx.session, ctx.organization_id, attachment.upload_expires_at)
        return attachment

    def check_processable(self, attachment: MessagingAttachment) -> None:
        """A pending, not removed attachment (a ready one is answered as it is, by the caller)."""
        if attachment.removed:
            raise conflict("the attachment was removed", "removed")
        if attachment.status == AttachmentStatus.REJECTED.value:
            raise conflict(
                "the attachment was rejected when it was processed; start a new upload",
                "attachment-rejected",
            )

    def do_mark_ready(
        self,
        ctx: Context,
        attachment: MessagingAttachment,
        inspection: Inspection,
        *,
        size: int,
        stored_key: str,
        stored_thumbnail: str | None,
    ) -> None:
        now = utcnow()
        attachment.status = AttachmentStatus.READY.value
        attachment.content_type = inspection.content_type
        attachment.content_size = size
        attachment.storage_key = stored_key
        attachment.thumbnail_key = stored_thumbnail
        attachment.processed_at = now
        if now > attachment.upload_expires_at:
            attachment.upload_key = None  # its window has closed: no upload can follow
        self.audit(
            ctx, "updated", attachment, ["content-size", "content-type", "status", "thumbnail"]
        )

    def do_reject(
        self,
        ctx: Context,
        attachment: MessagingAttachment,
        refusal: Refusal,
        *,
        detected_type: str | None,
        size: int,
    ) -> None:
        """Record why the file was refused (it has been deleted by the caller)."""
        attachment.status = AttachmentStatus.REJECTED.value
        attachment.rejection = refusal.code
        attachment.content_type = detected_type
        attachment.content_size = size
        attachment.processed_at = utcnow()
        if attachment.processed_at > attachment.upload_expires_at:
            attachment.upload_key = None
        self.audit(ctx, "updated", attachment, ["content-size", "content-type", "status"])

    async def update(
        self, ctx: Context, obj: MessagingAttachment, attrs: WriteAttributes
    ) -> MessagingAttachment:
        assert isinstance(attrs, AttachmentUpdate)
        if not attrs.removed:
            if obj.removed:
                raise conflict("a removed attachment cannot be restored", "attachment-removed")
            return obj
        if obj.removed:
            return obj
        if ctx.principal.is_individual and not await self._own(ctx, obj):
            raise forbidden(
                "only the individual who uploaded an attachment, or the message's author, "
                "may remove it"
            )
        obj.removed = True
        obj.removed_at = utcnow()
        return obj

    async def _own(self, ctx: Context, obj: MessagingAttachment) -> bool:
        me = ctx.principal.individual_id
        if obj.individual_id == me:
            return True
        message = await visible_message(ctx, obj.message_id)
        return message is not None and message.individual_id == me


async def attachments_for_messages(
    session: AsyncSession,
    organization_id: uuid.UUID,
    message_ids: Sequence[uuid.UUID],
    *,
    settings: Settings,
    base_url: str | None = None,
    thumbnails: bool = True,
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The ready attachments of each message (removed ones too, without links), oldest first,
    as the ``attachments`` of a message's representation. One query for all the messages.

    The caller has already decided that whoever asks may see these messages; the download
    links made here (``url``, ``thumbnail``) are valid for ``attachment_link_ttl_seconds``.
    ``base_url``: how the client reaches Courier (local storage's links), e.g.
    ``str(request.base_url)``; ``thumbnails=False`` leaves ``thumbnail`` null.
    """
    result: dict[uuid.UUID, list[dict[str, Any]]] = {ident: [] for ident in message_ids}
    if not result:
        return result
    storage = storage_for(settings, base_url=base_url)
    ids = list(result)
    for start in range(0, len(ids), 500):
        stmt = scoped(
            select(MessagingAttachment)
            .where(
                MessagingAttachment.message_id.in_(ids[start : start + 500]),
                MessagingAttachment.status == AttachmentStatus.READY.value,
            )
            .order_by(MessagingAttachment.created_at, MessagingAttachment.id),
            MessagingAttachment,
            organization_id,
        )
        for row in (await session.execute(stmt)).scalars():
            described = await describe(storage, settings, row, thumbnails=thumbnails)
            result[row.message_id].append({"id": str(row.id), **described})
    return result
