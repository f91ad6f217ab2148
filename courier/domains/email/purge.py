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

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped, unscoped
from courier.domains.email.service import RESOURCE_TYPE
from courier.domains.email.uploads import email_uploads
from courier.models.delivery import Delivery, ProviderInbound, SandboxRecord
from courier.models.email import BouncingAddress, UserEmail, UserEmailAttachment
from courier.purge import ArchiveWriter, delete_rows, purge_hook
from courier.uploads.purge import purge_uploads

SANDBOX_REASON = "the email sandbox's records belong to no organization"


@purge_hook("individual", name="email", order=60)
async def purge_emails(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    emails = list(
        (
            await session.execute(
                scoped(
                    select(UserEmail).where(UserEmail.individual_id == individual_id),
                    UserEmail,
                    organization_id,
                )
            )
        ).scalars()
    )
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
    deliveries = list(
        (
            await session.execute(
                scoped(
                    select(Delivery).where(
                        Delivery.resource_type == RESOURCE_TYPE,
                        Delivery.resource_id.in_(email_ids),
                    ),
                    Delivery,
                    organization_id,
                )
            )
        ).scalars()
    )
    delivery_ids = [d.id for d in deliveries]
    if delivery_ids:
        reports = list(
            (
                await session.execute(
                    unscoped(
                        select(ProviderInbound).where(
                            ProviderInbound.delivery_id.in_(delivery_ids)
                        ),
                        "provider reports of this organization's deliveries (ids scoped above)",
                    )
                )
            ).scalars()
        )
        if archive is not None:
            archive.write_rows(ProviderInbound.__tablename__, reports)
        for report in reports:
            await session.delete(report)
        counts["provider_inbound"] = len(reports)
        counts["sandbox_records"] = await _purge_sandbox_copies(
            session, delivery_ids, [a for e in emails for a in e.to]
        )
    counts["deliveries"] = await delete_rows(
        session, organization_id, Delivery, Delivery.id.in_(delivery_ids), archive
    )
    counts["user_emails"] = await delete_rows(
        session, organization_id, UserEmail, UserEmail.id.in_(email_ids), archive
    )
    return counts


async def _purge_sandbox_copies(
    session: AsyncSession, delivery_ids: list[uuid.UUID], addresses: list[str]
) -> int:
    """The sandbox's copies of these deliveries' messages and the mailbox entries naming them
    (a sandbox message's key is its Message-ID, ``<delivery-id@host>``)."""
    wanted = {str(d) for d in delivery_ids}
    messages = (
        await session.execute(
            unscoped(
                select(SandboxRecord).where(
                    SandboxRecord.kind == "email", SandboxRecord.collection == "messages"
                ),
                SANDBOX_REASON,
            )
        )
    ).scalars()
    message_ids = {r.key for r in messages if str((r.data or {}).get("delivery-id", "")) in wanted}
    if not message_ids:
        return 0
    mailbox = (
        await session.execute(
            unscoped(
                select(SandboxRecord).where(
                    SandboxRecord.kind == "email",
                    SandboxRecord.collection == "mailbox",
                    SandboxRecord.key.in_(sorted({a.lower() for a in addresses})),
                ),
                SANDBOX_REASON,
            )
        )
    ).scalars()
    doomed = [r.id for r in mailbox if (r.data or {}).get("message-id") in message_ids]
    result = await session.execute(
        unscoped(
            delete(SandboxRecord).where(
                SandboxRecord.kind == "email",
                (SandboxRecord.id.in_(doomed))
                | (
                    (SandboxRecord.collection == "messages")
                    & SandboxRecord.key.in_(sorted(message_ids))
                ),
            ),
            SANDBOX_REASON,
        ).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
