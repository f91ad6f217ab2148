"""``/v1/user-emails/``: list (individual-id required), get, create (draft or ``auto-send``),
and ``/{id}/send/`` (send a draft)."""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.email import jobs as _jobs  # the sender and bounce handler, everywhere
from courier.domains.email.attachments import TYPE_NAME as ATTACHMENTS
from courier.domains.email.attachments import EmailAttachmentService, do_process, do_start
from courier.domains.email.repository import attachment_scope, individual_scope
from courier.domains.email.schemas import (
    TYPE_NAME,
    AttachmentRead,
    AttachmentStart,
    EmailCreate,
    EmailRead,
)
from courier.domains.email.service import EmailService, do_send
from courier.domains.email.uploads import email_uploads
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, EmptyBody
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.email import UserEmail, UserEmailAttachment
from courier.uploads.schemas import UploadStartDocument

user_emails = register(
    ResourceSpec(
        type_name=TYPE_NAME,
        model=UserEmail,
        read_schema=EmailRead,
        create_schema=EmailCreate,
        service=EmailService(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.uuid_eq(
                "individual-id",
                UserEmail.individual_id,
                "The individual whose emails to list",
                required=True,
            ),
        ],
        sorts={"created-at": UserEmail.created_at},
        default_sort=[("created-at", True)],
        permissions={Op.CREATE: Permission.COMMUNICATE},
        individual_scope=individual_scope,
        tag="email",
        summaries={
            Op.LIST: "Emails of an individual (individual-id required)",
            Op.GET: "Get one email with status and result",
            Op.CREATE: "Create an email (draft, or sent at once with auto-send)",
        },
        singular="email",
        actions=[
            ActionSpec(
                "send",
                do_send,
                summary="Send a draft email",
                body=EmptyBody,
                permission=Permission.COMMUNICATE,
                individuals=True,
            )
        ],
    )
)

user_email_attachments = register(
    ResourceSpec(
        type_name=ATTACHMENTS,
        model=UserEmailAttachment,
        read_schema=AttachmentRead,
        service=EmailAttachmentService(email_uploads),
        ops=frozenset({Op.LIST, Op.GET}),
        filters=[
            q.uuid_eq(
                "email-id",
                UserEmailAttachment.email_id,
                "The email whose attachments to list",
                required=True,
            ),
        ],
        extra_params={"with-link": q.flag("true: add a short-lived signed download-link")},
        sorts={"created-at": UserEmailAttachment.created_at},
        default_sort=[("created-at", False)],
        individual_scope=attachment_scope,
        tag="email",
        summaries={
            Op.LIST: "Attachments of an email (email-id required)",
            Op.GET: "Get one email attachment (with-link adds download-link)",
        },
        singular="email attachment",
        actions=[
            ActionSpec(
                "",
                do_start,
                summary="Start an email attachment upload",
                body=AttachmentStart,
                on="collection",
                permission=Permission.COMMUNICATE,
                individuals=True,
                response=UploadStartDocument,
            ),
            ActionSpec(
                "process-upload",
                do_process,
                summary="Finish an email attachment upload",
                body=EmptyBody,
                permission=Permission.COMMUNICATE,
                individuals=True,
            ),
        ],
    )
)

__all__ = ["_jobs", "user_email_attachments", "user_emails"]
