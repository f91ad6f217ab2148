"""Purging an individual's notifications: the rows (what each channel showed), the push and
call deliveries that sent them, and their history. The texts and emails a notification
queued are purged by their own domains' hooks (they name the individual or the phone); the
push sandbox's copies of what the individual's phones showed go too.
Runs before the people hook, which deletes the individual itself."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped, unscoped
from courier.domains.user_notifications.sending import CALL_TYPE
from courier.domains.user_notifications.service import TYPE
from courier.models.delivery import Delivery, SandboxRecord
from courier.models.push_device import UserDevice
from courier.models.user_notification import UserNotification
from courier.purge import ArchiveWriter, delete_rows, purge_hook


@purge_hook("individual", name="user-notifications", order=60)
async def purge_user_notifications(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    ids = list(
        (
            await session.execute(
                scoped(
                    select(UserNotification.id).where(
                        UserNotification.individual_id == individual_id
                    ),
                    UserNotification,
                    organization_id,
                )
            )
        ).scalars()
    )
    counts = {"deliveries": 0, "user_notifications": 0, "sandbox_records": 0}
    counts["sandbox_records"] = await _purge_phone_screens(session, organization_id, individual_id)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        # Their history rows go with them (ON DELETE CASCADE).
        counts["deliveries"] += await delete_rows(
            session,
            organization_id,
            Delivery,
            Delivery.resource_type.in_([TYPE, CALL_TYPE]) & Delivery.resource_id.in_(chunk),
            archive,
        )
        counts["user_notifications"] += await delete_rows(
            session, organization_id, UserNotification, UserNotification.id.in_(chunk), archive
        )
    return counts


async def _purge_phone_screens(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> int:
    """What the push sandbox kept of the pushes to the individual's devices (titles and bodies
    are the notifications' content). Runs before the devices' own hook deletes the tokens."""
    tokens = list(
        (
            await session.execute(
                scoped(
                    select(UserDevice.token).where(UserDevice.individual_id == individual_id),
                    UserDevice,
                    organization_id,
                )
            )
        ).scalars()
    )
    removed = 0
    for start in range(0, len(tokens), 500):
        result = await session.execute(
            unscoped(
                delete(SandboxRecord).where(
                    SandboxRecord.kind == "push",
                    SandboxRecord.collection == "shown",
                    SandboxRecord.key.in_(tokens[start : start + 500]),
                ),
                "the push sandbox's records belong to no organization; keyed by device token",
            ).execution_options(synchronize_session=False)
        )
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return removed
