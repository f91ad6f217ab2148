"""All SQL of the email domain, tenant-scoped: emails, their attachments, bouncing addresses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.tenancy import scoped, unscoped
from courier.core.time import utcnow
from courier.models.delivery import Delivery, DeliveryEvent, ProviderInbound, SandboxRecord
from courier.models.email import BouncingAddress, EmailStatus, UserEmail, UserEmailAttachment
from courier.models.individual import Individual
from courier.models.job import Job
from courier.models.user import User
from courier.providers.common import DeliveryStatus


def individual_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees only the emails that concern it."""
    return stmt.where(UserEmail.individual_id == principal.individual_id)


def attachment_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """Attachments of the emails an individual token sees (its own)."""
    own = scoped(
        select(UserEmail.id).where(UserEmail.individual_id == principal.individual_id),
        UserEmail,
        principal.require_organization(),
    )
    return stmt.where(UserEmailAttachment.email_id.in_(own))


async def load_email(
    session: AsyncSession, organization_id: uuid.UUID, email_id: uuid.UUID
) -> UserEmail | None:
    stmt = scoped(select(UserEmail).where(UserEmail.id == email_id), UserEmail, organization_id)
    found: UserEmail | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def individual_exists(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> bool:
    stmt = scoped(
        select(Individual.id).where(Individual.id == individual_id), Individual, organization_id
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def user_exists(
    session: AsyncSession, organization_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    stmt = scoped(select(User.id).where(User.id == user_id), User, organization_id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def send_job_id(
    session: AsyncSession, organization_id: uuid.UUID, dedupe_key: str
) -> uuid.UUID | None:
    """The id of the job enqueued with ``dedupe_key`` (the email's ``task-id``)."""
    stmt = scoped(select(Job.id).where(Job.dedupe_key == dedupe_key), Job, organization_id)
    found: uuid.UUID | None = (await session.execute(stmt.limit(1))).scalar_one_or_none()
    return found


async def latest_report(
    session: AsyncSession, organization_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryEvent | None:
    """The newest entry of a delivery's history (what the provider last said)."""
    stmt = scoped(
        select(DeliveryEvent)
        .where(DeliveryEvent.delivery_id == delivery_id)
        .order_by(DeliveryEvent.recorded_at.desc(), DeliveryEvent.id.desc())
        .limit(1),
        DeliveryEvent,
        organization_id,
    )
    found: DeliveryEvent | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


# --- attachments --------------------------------------------------------------------------------


async def attachments_of(
    session: AsyncSession,
    organization_id: uuid.UUID,
    email_id: uuid.UUID,
    *,
    status: str | None = None,
) -> list[UserEmailAttachment]:
    stmt = select(UserEmailAttachment).where(
        UserEmailAttachment.email_id == email_id, UserEmailAttachment.removed.is_(False)
    )
    if status is not None:
        stmt = stmt.where(UserEmailAttachment.status == status)
    stmt = stmt.order_by(UserEmailAttachment.created_at, UserEmailAttachment.id)
    return list(
        (await session.execute(scoped(stmt, UserEmailAttachment, organization_id))).scalars()
    )


# --- bouncing addresses ---------------------------------------------------------------------------


async def bouncing(
    session: AsyncSession, organization_id: uuid.UUID, addresses: Sequence[str]
) -> list[BouncingAddress]:
    """Those of ``addresses`` that bounced for this organization."""
    keys = sorted({a.lower() for a in addresses})
    if not keys:
        return []
    stmt = scoped(
        select(BouncingAddress)
        .where(BouncingAddress.address.in_(keys))
        .order_by(BouncingAddress.address),
        BouncingAddress,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def mark_bouncing(
    session: AsyncSession,
    organization_id: uuid.UUID,
    address: str,
    *,
    status: str | None,
    reason: str,
    email_id: uuid.UUID | None,
) -> None:
    """Remember that ``address`` bounced (the first bounce's reason is kept)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table: Any = BouncingAddress.__table__
    stmt: Any = (
        insert(table)
        .values(
            id=uuid.uuid4(),
            organization_id=organization_id,
            address=address.lower()[:320],
            status=(status or None) and status[:16],
            reason=reason[:500],
            email_id=email_id,
            bounced_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["organization_id", "address"])
    )
    await session.execute(unscoped(stmt, "an insert names its organization in its values"))


async def emails_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[UserEmail]:
    stmt = scoped(
        select(UserEmail).where(UserEmail.individual_id == individual_id),
        UserEmail,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def delete_emails_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[UserEmail]:
    """Remove an individual's emails (attachments go with them); returns them as they were."""
    rows = await emails_of(session, organization_id, individual_id)
    if rows:
        await session.execute(
            scoped(
                delete(UserEmail).where(UserEmail.id.in_([r.id for r in rows])),
                UserEmail,
                organization_id,
            ).execution_options(synchronize_session=False)
        )
    return rows


async def load_delivery(
    session: AsyncSession, organization_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery | None:
    stmt = scoped(select(Delivery).where(Delivery.id == delivery_id), Delivery, organization_id)
    found: Delivery | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def record_reply(
    session: AsyncSession, organization_id: uuid.UUID, email_id: uuid.UUID, reply: str
) -> None:
    """Keep the server's reply as the email's result while it is still on its way."""
    await session.execute(
        scoped(
            update(UserEmail).where(
                UserEmail.id == email_id,
                UserEmail.status.in_([EmailStatus.QUEUED.value, EmailStatus.SENDING.value]),
            ),
            UserEmail,
            organization_id,
        )
        .values(result=reply[:1000])
        .execution_options(synchronize_session=False)
    )


async def bounce_report(session: AsyncSession, delivery_id: uuid.UUID) -> ProviderInbound | None:
    """The newest bounce (a DSN's failed recipient) reported for a delivery."""
    stmt = unscoped(
        select(ProviderInbound)
        .where(
            ProviderInbound.delivery_id == delivery_id,
            ProviderInbound.status == DeliveryStatus.UNDELIVERED.value,
        )
        .order_by(ProviderInbound.received_at.desc())
        .limit(1),
        "provider webhooks are stored before their organization is known",
    )
    found: ProviderInbound | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


# --- purging an individual (courier.domains.email.purge) -------------------------------------

SANDBOX_REASON = "the email sandbox's records belong to no organization"


async def deliveries_of(
    session: AsyncSession,
    organization_id: uuid.UUID,
    resource_type: str,
    resource_ids: Sequence[uuid.UUID],
) -> list[Delivery]:
    """The deliveries of these resources (emails: ``resource_type`` is the emails' type)."""
    stmt = scoped(
        select(Delivery).where(
            Delivery.resource_type == resource_type, Delivery.resource_id.in_(resource_ids)
        ),
        Delivery,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def reports_of(
    session: AsyncSession, delivery_ids: Sequence[uuid.UUID]
) -> list[ProviderInbound]:
    """The provider reports of these deliveries (their ids are the organization's, scoped by
    the caller)."""
    stmt = unscoped(
        select(ProviderInbound).where(ProviderInbound.delivery_id.in_(delivery_ids)),
        "provider reports of this organization's deliveries (ids scoped above)",
    )
    return list((await session.execute(stmt)).scalars())


async def purge_sandbox_copies(
    session: AsyncSession, delivery_ids: Sequence[uuid.UUID], addresses: Sequence[str]
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
