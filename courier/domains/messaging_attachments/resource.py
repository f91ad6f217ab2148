"""``/v1/messaging-attachments/``: list (message-id required), get, PATCH ``removed``.

Starting an upload (POST) and finishing it (``/{id}/process-upload/``) are the generic
upload's routes (endpoints.py): their documents are not the resource's own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

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
from courier.jsonapi.context import Context
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.messaging_attachment import MessagingAttachment
from courier.models.upload import UploadStatus


def _include_pending(stmt: Select[Any], include: bool, _ctx: Context) -> Select[Any]:
    shown = [UploadStatus.READY.value]
    if include:
        shown.append(UploadStatus.PENDING.value)
    return stmt.where(MessagingAttachment.status.in_(shown))


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
            q.Filter(
                "filter[include-pending]",
                q.parse_bool,
                _include_pending,
                "Also list attachments whose upload is not processed yet (default false)",
                schema={"type": "boolean", "default": False},
                default=False,
            ),
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
