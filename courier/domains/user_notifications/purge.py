"""Purging an individual's notifications: the rows (what each channel showed), the push and
call deliveries that sent them, and their history. The texts and emails a notification
queued are purged by their own domains' hooks (they name the individual or the phone); the
push sandbox's copies of what the individual's phones showed go too.
Runs before the people hook, which deletes the individual itself."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.user_notifications import repository
from courier.domains.user_notifications.sending import CALL_TYPE
from courier.domains.user_notifications.service import TYPE
from courier.models.delivery import Delivery
from courier.models.user_notification import UserNotification
from courier.purge import ArchiveWriter, delete_rows, purge_hook


@purge_hook("individual", name="user-notifications", order=60)
async def purge_user_notifications(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    ids = await repository.notification_ids_of(session, organization_id, individual_id)
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
    tokens = await repository.device_tokens_of(session, organization_id, individual_id)
    return await repository.delete_phone_screens(session, tokens)
