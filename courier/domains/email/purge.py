"""Purging an individual: their emails, the emails' attachments (rows and stored files), the
deliveries and provider reports of those emails, the addresses that bounced on them, and the
copies the email sandbox kept.

The rows are archived and deleted in the purge's transaction; stored files are deleted by
``user-email-attachments.delete-files`` jobs enqueued in that same transaction
(``courier.uploads.purge``: storage is only called from jobs). Runs before the people hook,
which deletes the individual itself.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.email import repository
from courier.domains.email.service import RESOURCE_TYPE
from courier.domains.email.uploads import email_uploads
from courier.models.delivery import Delivery, ProviderInbound
from courier.models.email import BouncingAddress, UserEmail, UserEmailAttachment
from courier.purge import ArchiveWriter, delete_rows, purge_hook
from courier.uploads.purge import purge_uploads


@purge_hook("individual", name="email", order=60)
async def purge_emails(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    emails = await repository.emails_of(session, organization_id, individual_id)
    email_ids = [e.id for e in emails]
    counts = {
        "user_email_attachments": 0,
        "email_bouncing_addresses": 0,
        "deliveries": 0,
        "provider_inbound": 0,
        "sandbox_records": 0,
        "user_emails": 0,
    }
    if not emails:
        return counts
    counts["user_email_attachments"] = await purge_uploads(
        session,
        email_uploads,
        organization_id,
        UserEmailAttachment.email_id.in_(email_ids),
        archive,
    )
    counts["email_bouncing_addresses"] = await delete_rows(
        session, organization_id, BouncingAddress, BouncingAddress.email_id.in_(email_ids), archive
    )
    deliveries = await repository.deliveries_of(session, organization_id, RESOURCE_TYPE, email_ids)
    delivery_ids = [d.id for d in deliveries]
    if delivery_ids:
        reports = await repository.reports_of(session, delivery_ids)
        if archive is not None:
            archive.write_rows(ProviderInbound.__tablename__, reports)
        for report in reports:
            await session.delete(report)
        counts["provider_inbound"] = len(reports)
        counts["sandbox_records"] = await repository.purge_sandbox_copies(
            session, delivery_ids, [a for e in emails for a in e.to]
        )
    counts["deliveries"] = await delete_rows(
        session, organization_id, Delivery, Delivery.id.in_(delivery_ids), archive
    )
    counts["user_emails"] = await delete_rows(
        session, organization_id, UserEmail, UserEmail.id.in_(email_ids), archive
    )
    return counts
