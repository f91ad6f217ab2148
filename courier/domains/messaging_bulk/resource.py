"""``messaging-bulk-messages`` (list, get, create, patch) and ``messaging-bulk-attachments``
(list, get; starting and processing uploads are the generic upload's routes, ``endpoints.py``)."""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.messaging_bulk.attachments import BulkAttachmentService
from courier.domains.messaging_bulk.repository import include_posted_filter
from courier.domains.messaging_bulk.schemas import (
    BULK_ATTACHMENT_TYPE,
    BULK_TYPE,
    BulkAttachmentRead,
    BulkMessageCreate,
    BulkMessageRead,
    BulkMessageUpdate,
)
from courier.domains.messaging_bulk.service import BulkMessageService
from courier.domains.messaging_bulk.uploads import bulk_uploads
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.messaging_bulk import MessagingBulkAttachment, MessagingBulkMessage
from courier.uploads.listing import include_pending

BOOLEAN = {"type": "boolean"}

bulk_messages = register(
    ResourceSpec(
        type_name=BULK_TYPE,
        model=MessagingBulkMessage,
        read_schema=BulkMessageRead,
        create_schema=BulkMessageCreate,
        update_schema=BulkMessageUpdate,
        service=BulkMessageService(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.uuid_eq(
                "filter[created-by]",
                MessagingBulkMessage.created_by,
                "Bulk messages created by this individual",
            ),
            q.Filter(
                "include-posted",
                q.parse_bool,
                include_posted_filter,
                "Also list bulk messages already posted to everyone (default false: drafts and "
                "those still being sent)",
                schema={**BOOLEAN, "default": False},
                default=False,
            ),
        ],
        sorts={"created-at": MessagingBulkMessage.created_at},
        default_sort=[("created-at", True)],
        permissions={Op.CREATE: Permission.COMMUNICATE, Op.UPDATE: Permission.COMMUNICATE},
        summaries={
            Op.LIST: "List bulk messages, newest first (filter[created-by]; include-posted)",
            Op.GET: "Get one bulk message (status, recipient-count, posted-count, skipped-count)",
            Op.CREATE: "Post one message to many people, each in their direct channel with the "
            "sender (or keep it as a draft: draft true)",
            Op.UPDATE: "Edit a draft (message, message-js) or send it (draft: false)",
        },
        singular="messaging bulk message",
        tag="messaging",
    )
)


bulk_attachments = register(
    ResourceSpec(
        type_name=BULK_ATTACHMENT_TYPE,
        model=MessagingBulkAttachment,
        read_schema=BulkAttachmentRead,
        service=BulkAttachmentService(bulk_uploads),
        ops=frozenset({Op.LIST, Op.GET}),
        filters=[
            q.uuid_eq(
                "bulk-message-id",
                MessagingBulkAttachment.bulk_message_id,
                "The bulk message whose attachments to list",
                required=True,
            ),
            include_pending(MessagingBulkAttachment),
        ],
        sorts={"created-at": MessagingBulkAttachment.created_at},
        default_sort=[("created-at", False)],
        summaries={
            Op.LIST: "Attachments of a bulk message (bulk-message-id required)",
            Op.GET: "Get one bulk attachment (url: a short-lived download link)",
        },
        singular="messaging bulk attachment",
        tag="messaging",
    )
)
