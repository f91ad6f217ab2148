"""Sending an email's delivery.

The generic send job (``deliveries.send``) calls :func:`send_user_email` between its two
transactions: it builds the message from the email and its attachments and hands it to the
configured adapter with the delivery's id (which becomes the Message-ID). Bounce reports
(DSNs) arrive through the generic inbound path as ``status`` events (``undelivered``) of the
delivery; the email follows them in :func:`courier.domains.email.service.follow_delivery`.
"""

from __future__ import annotations

import dataclasses

from courier.domains.email import repository
from courier.domains.email.service import RESOURCE_TYPE
from courier.domains.org_preferences.service import get_preference
from courier.jobs.context import JobContext
from courier.models.delivery import Delivery
from courier.providers.common import NotSent, Permanent, SendResult
from courier.providers.delivery import delivery_sender
from courier.providers.email.base import EmailProvider
from courier.providers.email.message import (
    EmailAttachment,
    EmailContent,
    OutgoingEmail,
    build_message,
)
from courier.providers.storage import StorageError, storage_for


@delivery_sender(RESOURCE_TYPE)
async def send_user_email(
    job: JobContext, delivery: Delivery, adapter: EmailProvider
) -> SendResult:
    session, org = job.session, job.organization_id
    email = await repository.load_email(session, org, delivery.resource_id)
    if email is None:
        raise Permanent("gone", "the email was deleted before it was sent")
    files = [
        (row.filename, row.content_type or "application/octet-stream", row.storage_key)
        for row in await repository.attachments_of(session, org, email.id, status="ready")
        if row.storage_key
    ]
    unsubscribe = await get_preference(session, org, "email-unsubscribe-url")
    outgoing = OutgoingEmail(
        sender=job.settings.email_from,
        to=list(email.to),
        content=EmailContent(email.subject, email.message, email.message_html),
        unsubscribe_url=unsubscribe or None,
    )
    email_id = email.id
    await job.checkpoint()  # no transaction (SQLite: no write lock) held from here on
    storage = storage_for(job.settings)
    try:
        attachments = [
            EmailAttachment(filename, content_type, await storage.read(key))
            for filename, content_type, key in files
        ]
    except (OSError, StorageError) as exc:  # nothing was sent: try again later
        raise NotSent(f"an attachment could not be read from storage: {exc}") from exc
    message = build_message(dataclasses.replace(outgoing, attachments=attachments))
    result = await adapter.send(message, delivery_id=delivery.id)
    # The server's reply, unless a bounce already settled the email (commits with "sent").
    await repository.record_reply(session, org, email_id, result.vendor_status)
    return result
