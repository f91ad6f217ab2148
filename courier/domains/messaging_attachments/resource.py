"""``/v1/messaging-attachments/``: list (message-id required), get, PATCH ``removed``.

Starting an upload (POST) and finishing it (``/{id}/process-upload/``) are the generic
upload's routes (endpoints.py): their documents are not the resource's own.
"""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.messaging_attachments.repository import individual_scope
from courier.domains.messaging_attachments.schemas import (
    TYPE_NAME,
    AttachmentRead,
    AttachmentUpdate,
)
from courier.domains.messaging_attachments.service import AttachmentService
from courier.domains.messaging_attachments.uploads import messaging_uploads
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.messaging_attachment import MessagingAttachment
from courier.uploads.listing import include_pending

attachments = register(
    ResourceSpec(
        type_name=TYPE_NAME,
        model=MessagingAttachment,
        read_schema=AttachmentRead,
        update_schema=AttachmentUpdate,
        service=AttachmentService(messaging_uploads),
        ops=frozenset({Op.LIST, Op.GET, Op.UPDATE}),
        filters=[
            q.uuid_eq(
                "message-id",
                MessagingAttachment.message_id,
                "The message whose attachments to list",
                required=True,
            ),
            include_pending(MessagingAttachment),
        ],
        sorts={"created-at": MessagingAttachment.created_at},
        default_sort=[("created-at", False)],
        permissions={Op.UPDATE: Permission.COMMUNICATE},
        individual_scope=individual_scope,
        tag="messaging",
        summaries={
            Op.LIST: "Attachments of a message (message-id required, filter[include-pending])",
            Op.GET: "Get one attachment (url: a short-lived download link)",
            Op.UPDATE: "Modify an attachment (removed: hidden for good, kept for the audit)",
        },
        singular="messaging attachment",
    )
)
