"""Attachments of user emails: the generic two-step upload (``courier.uploads``), per email.

1. ``POST /v1/user-email-attachments/`` (``email-id``, ``filename``, ``content-type``) makes a
   pending attachment of a draft the caller may see and answers where to upload the file
   (``upload-url``, ``upload-data``, ``expiration-time``).
2. ``POST /v1/user-email-attachments/{id}/process-upload/`` inspects the uploaded bytes (real
   type from the bytes, allowlist, size limit) and makes the attachment ready
   (``ready-to-use``) or rejects it. Per email at most ``email_attachment_max_count``
   attachments, together at most ``email_attachment_max_total_bytes`` (``uploads.py``).

``with-link`` adds a short-lived signed ``download-link``. Ready attachments travel in the
message when the email is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from courier.core.errors import invalid_parameter
from courier.core.time import format_timestamp
from courier.domains.email.schemas import ATTACHMENT_TYPE_NAME as TYPE_NAME
from courier.domains.email.schemas import AttachmentStart
from courier.jsonapi.context import Context
from courier.jsonapi.query import parse_bool
from courier.models.email import UserEmailAttachment
from courier.models.upload import UploadStatus
from courier.providers.storage import storage_for
from courier.uploads.answers import signed_links
from courier.uploads.service import UploadService

__all__ = ["TYPE_NAME", "EmailAttachmentService", "do_process", "do_start"]


class EmailAttachmentService(UploadService[UserEmailAttachment]):
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
                    "ready-to-use": row.status == UploadStatus.READY.value and not row.removed,
                    "size": row.content_size,
                    "status": row.status,
                }
            )
        return out


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
    return await _service().start(ctx, body)


async def do_process(ctx: Context, attachment: UserEmailAttachment, _body: Any) -> Response:
    """Check the uploaded file: its real type (from its bytes) must be accepted (else 415), its
    size within the limit for one file and, with the email's other attachments, within the
    limit for one email (else 400). The attachment becomes ready, or is rejected and its file
    deleted. Nothing uploaded yet: 409. Repeating the call on a ready attachment answers it
    as it is."""
    return await _service().process(ctx, attachment)
