"""Email attachments as a kind of upload: files travelling with a draft email.

Objects under ``orgs/<org>/email-attachments/<id>/``; an email carries at most
``COURIER_EMAIL_ATTACHMENT_MAX_COUNT`` of them, together at most
``COURIER_EMAIL_ATTACHMENT_MAX_TOTAL_BYTES``.
"""

from __future__ import annotations

from typing import Any

from courier.config import Settings
from courier.core.errors import conflict, not_found
from courier.domains.email.schemas import ATTACHMENT_TYPE_NAME, AttachmentStart
from courier.jsonapi.context import Context
from courier.models.email import EmailStatus, UserEmail, UserEmailAttachment
from courier.uploads.kind import UploadKind, declare_upload
from courier.uploads.limits import ParentLimits, Refusal


async def _on_draft(ctx: Context, attrs: AttachmentStart) -> dict[str, Any]:
    """A draft email the caller may see (404 otherwise; 409 once it is no draft)."""
    from courier.domains.email.resource import user_emails

    email: UserEmail | None = await user_emails.service.repository.get(ctx, attrs.email_id)
    if email is None:
        raise not_found("email")
    if email.status != EmailStatus.DRAFT.value:
        raise conflict(
            f"files can be attached to a draft only; this email is {email.status}",
            "email-not-draft",
        )
    return {"email_id": email.id, "individual_id": email.individual_id}


def _per_email(settings: Settings) -> ParentLimits:
    count, total = settings.email_attachment_max_count, settings.email_attachment_max_total_bytes
    return ParentLimits(
        max_count=count,
        max_total_bytes=total,
        too_many=Refusal(
            409, "too-many-attachments", f"an email carries at most {count} attachments"
        ),
        too_large=Refusal(
            400,
            "email-too-large",
            f"the email's attachments would exceed {total} bytes together",
        ),
    )


email_uploads = declare_upload(
    UploadKind(
        name=ATTACHMENT_TYPE_NAME,
        model=UserEmailAttachment,
        key_segment="email-attachments",
        parent=UserEmailAttachment.email_id,
        owner=_on_draft,
        limits=_per_email,
        ready_fields=("content-type", "size", "status"),
        rejected_fields=("content-type", "size", "status"),
    )
)
