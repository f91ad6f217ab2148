"""Attachments of user emails: the two-step upload every attachment uses, per email.

1. ``POST /v1/user-email-attachments/`` (``email-id``, ``filename``, ``content-type``) makes a
   pending attachment of a draft the caller may see and answers where to upload the file
   (``upload-url``, ``upload-data``, ``expiration-time``): the upload answer, key layout,
   presigned links and type checks of messaging attachments (``messaging_attachments``).
2. ``POST /v1/user-email-attachments/{id}/process-upload/`` inspects the uploaded bytes with the
   same processing (real type from the bytes, allowlist, size limit) and makes the attachment
   ready (``ready-to-use``) or rejects it. Per email at most ``email_attachment_max_count``
   attachments, together at most ``email_attachment_max_total_bytes``.

``with-link`` adds a short-lived signed ``download-link``. Ready attachments travel in the
message when the email is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from courier.core.errors import ApiError, ErrorItem, conflict, invalid_parameter, not_found
from courier.core.tenancy import scoped
from courier.core.time import format_timestamp, utcnow
from courier.domains.email.schemas import AttachmentStart
from courier.domains.messaging_attachments.inspection import Inspection, Refusal
from courier.domains.messaging_attachments.processing import process_object
from courier.domains.messaging_attachments.render import (
    answer_processed,
    signed_links,
    upload_started,
)
from courier.domains.messaging_attachments.service import allowed_types, check_claimed_type
from courier.jobs import JobContext, enqueue, job_handler
from courier.jsonapi.context import Context
from courier.jsonapi.query import parse_bool
from courier.jsonapi.resource import CrudService
from courier.models.email import EmailStatus, UserEmail, UserEmailAttachment
from courier.providers.storage import storage_for

TYPE_NAME = "user-email-attachments"
DELETE_FILES_JOB = "user-email-attachments.delete-files"
READY = "ready"
PENDING = "pending"
REJECTED = "rejected"


def object_prefix(organization_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return f"orgs/{organization_id}/email-attachments/{attachment_id}"


def upload_key(organization_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return object_prefix(organization_id, attachment_id) + "/upload"


def file_key(organization_id: uuid.UUID, attachment_id: uuid.UUID) -> str:
    return object_prefix(organization_id, attachment_id) + "/file"


def thumbnail_key(organization_id: uuid.UUID, attachment_id: uuid.UUID, media_type: str) -> str:
    suffix = "png" if media_type == "image/png" else "jpg"
    return object_prefix(organization_id, attachment_id) + f"/thumbnail.{suffix}"


def all_keys(organization_id: uuid.UUID, attachment_id: uuid.UUID) -> list[str]:
    return [
        upload_key(organization_id, attachment_id),
        file_key(organization_id, attachment_id),
        thumbnail_key(organization_id, attachment_id, "image/png"),
        thumbnail_key(organization_id, attachment_id, "image/jpeg"),
    ]


def _limit(detail: str, code: str, status: int = 409) -> ApiError:
    return ApiError(status, [ErrorItem(detail, code)], {}, False)


class EmailAttachmentService(CrudService[UserEmailAttachment]):
    async def present(
        self, ctx: Context, rows: Sequence[UserEmailAttachment]
    ) -> list[dict[str, Any]]:
        raw = ctx.request.query_params.get("with-link")
        try:
            with_link = parse_bool(raw) if raw is not None else False
        except ValueError as exc:
            raise invalid_parameter("with-link", str(exc)) from exc
        storage = storage_for(ctx.settings, base_url=str(ctx.request.base_url))
        out = []
        for row in rows:
            link = None
            if with_link:
                link, _ = await signed_links(
                    storage, ctx.settings, row, served=not row.removed, thumbnails=False
                )
            out.append(
                {
                    "content-type": row.content_type or row.claimed_content_type,
                    "created-at": format_timestamp(row.created_at),
                    "download-link": link,
                    "email-id": str(row.email_id),
                    "filename": row.filename,
                    "ready-to-use": row.status == READY and not row.removed,
                    "size": row.content_size,
                    "status": row.status,
                }
            )
        return out

    def individuals_of(self, obj: UserEmailAttachment) -> Sequence[uuid.UUID]:
        return (obj.individual_id,) if obj.individual_id else ()

    async def do_start_upload(self, ctx: Context, attrs: AttachmentStart) -> UserEmailAttachment:
        from courier.domains.email.resource import user_emails

        email: UserEmail | None = await user_emails.service.repository.get(ctx, attrs.email_id)
        if email is None:
            raise not_found("email")
        if email.status != EmailStatus.DRAFT.value:
            raise conflict(
                f"files can be attached to a draft only; this email is {email.status}",
                "email-not-draft",
            )
        check_claimed_type(ctx.settings, attrs.content_type)
        count = await attached_count(ctx.session, ctx.organization_id, email.id)
        if count >= ctx.settings.email_attachment_max_count:
            raise _limit(
                f"an email carries at most {ctx.settings.email_attachment_max_count} attachments",
                "too-many-attachments",
            )
        ident = uuid.uuid4()
        now = utcnow()
        attachment = UserEmailAttachment(
            id=ident,
            organization_id=ctx.organization_id,
            email_id=email.id,
            individual_id=email.individual_id,
            created_by=ctx.principal.actor_id,
            filename=attrs.filename,
            claimed_content_type=attrs.content_type,
            status=PENDING,
            removed=False,
            upload_key=upload_key(ctx.organization_id, ident),
            upload_expires_at=now + timedelta(seconds=ctx.settings.attachment_upload_ttl_seconds),
            created_at=now,
            last_modified_at=now,
        )
        ctx.session.add(attachment)
        await ctx.session.flush()
        self.audit(ctx, "created", attachment, sorted(attrs.model_fields_set))
        return attachment

    def do_mark_ready(
        self,
        ctx: Context,
        attachment: UserEmailAttachment,
        inspection: Inspection,
        *,
        size: int,
        stored_key: str,
        stored_thumbnail: str | None,
    ) -> None:
        attachment.status = READY
        attachment.content_type = inspection.content_type
        attachment.content_size = size
        attachment.storage_key = stored_key
        attachment.thumbnail_key = stored_thumbnail
        attachment.processed_at = utcnow()
        attachment.upload_key = None
        self.audit(ctx, "updated", attachment, ["content-type", "size", "status"])

    def do_reject(
        self,
        ctx: Context,
        attachment: UserEmailAttachment,
        refusal: Refusal,
        *,
        detected_type: str | None,
        size: int,
    ) -> None:
        attachment.status = REJECTED
        attachment.rejection = refusal.code
        attachment.content_type = detected_type
        attachment.content_size = size
        attachment.processed_at = utcnow()
        attachment.upload_key = None
        self.audit(ctx, "updated", attachment, ["content-type", "size", "status"])


async def attached_count(
    session: AsyncSession, organization_id: uuid.UUID, email_id: uuid.UUID
) -> int:
    stmt = scoped(
        select(func.count())
        .select_from(UserEmailAttachment)
        .where(
            UserEmailAttachment.email_id == email_id,
            UserEmailAttachment.status != REJECTED,
            UserEmailAttachment.removed.is_(False),
        ),
        UserEmailAttachment,
        organization_id,
    )
    return int((await session.execute(stmt)).scalar_one())


async def ready_bytes(
    session: AsyncSession, organization_id: uuid.UUID, email_id: uuid.UUID
) -> int:
    stmt = scoped(
        select(func.coalesce(func.sum(UserEmailAttachment.content_size), 0)).where(
            UserEmailAttachment.email_id == email_id,
            UserEmailAttachment.status == READY,
            UserEmailAttachment.removed.is_(False),
        ),
        UserEmailAttachment,
        organization_id,
    )
    return int((await session.execute(stmt)).scalar_one())


# --- the actions ---------------------------------------------------------------------------------


def _service() -> EmailAttachmentService:
    from courier.domains.email.resource import user_email_attachments

    service: EmailAttachmentService = user_email_attachments.service  # type: ignore[assignment]
    return service


async def do_start(ctx: Context, body: AttachmentStart) -> Response:
    """Create a pending attachment of a draft email the caller may see, and a presigned
    upload: POST ``upload-url`` as multipart/form-data with every field of ``upload-data``
    and then the file (part ``file``) before ``expiration-time`` (Unix seconds), then call
    ``process-upload``. A claimed ``content-type`` that is not accepted: 415; the email is not
    a draft, or already carries the most attachments allowed: 409."""
    attachment = await _service().do_start_upload(ctx, body)
    return await upload_started(ctx, attachment)


async def do_process(ctx: Context, attachment: UserEmailAttachment, _body: Any) -> Any:
    """Check the uploaded file: its real type (from its bytes) must be accepted (else 415), its
    size within the limit for one file and, with the email's other attachments, within the
    limit for one email (else 400). The attachment becomes ready, or is rejected and its file
    deleted. Nothing uploaded yet: 409. Repeating the call on a ready attachment answers it
    as it is."""
    service = _service()
    from courier.domains.email.resource import user_email_attachments

    if attachment.status == READY and not attachment.removed:
        return attachment
    if attachment.status == REJECTED:
        raise conflict(
            "the attachment was rejected when it was processed; start a new upload",
            "attachment-rejected",
        )
    settings = ctx.settings
    room = settings.email_attachment_max_total_bytes - await ready_bytes(
        ctx.session, ctx.organization_id, attachment.email_id
    )
    org, ident = attachment.organization_id, attachment.id
    storage = storage_for(settings, base_url=str(ctx.request.base_url))
    processed = await process_object(
        storage,
        upload_key=attachment.upload_key,
        stored_key=file_key(org, ident),
        thumbnail_key_for=lambda media_type: thumbnail_key(org, ident, media_type),
        allowed=allowed_types(settings),
        max_size=min(settings.attachment_max_bytes, max(room, 0)),
    )
    if (
        processed is not None
        and processed.inspection.refusal is not None
        and processed.inspection.refusal.code == "attachment-too-large"
        and processed.size <= settings.attachment_max_bytes
    ):
        refusal = Refusal(
            400,
            "email-too-large",
            f"the email's attachments would exceed {settings.email_attachment_max_total_bytes} "
            "bytes together",
        )
        processed = type(processed)(Inspection(None, refusal), processed.size)
    return await answer_processed(
        ctx, ctx.request, service, user_email_attachments, attachment, processed
    )


async def delete_files_later(session: AsyncSession, attachment: UserEmailAttachment) -> None:
    """Delete an attachment's stored objects in a job (its row is being deleted)."""
    await enqueue(
        session,
        DELETE_FILES_JOB,
        {"attachment_id": attachment.id},
        organization_id=attachment.organization_id,
        dedupe_key=f"{DELETE_FILES_JOB}:{attachment.id}",
    )


@job_handler(DELETE_FILES_JOB)
async def delete_attachment_files(job: JobContext) -> dict[str, Any]:
    storage = storage_for(job.settings)
    keys = all_keys(job.organization_id, uuid.UUID(str(job.payload["attachment_id"])))
    for key in keys:
        await storage.delete(key)
    return {"deleted-keys": len(keys)}
