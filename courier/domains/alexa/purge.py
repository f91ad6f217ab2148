"""Purging an individual from the Alexa tables: their reminders (removed from their device by
a job), their Alexa link, their subscriptions and the proactive events sent to them."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.alexa import repository
from courier.domains.alexa.service import schedule_delete
from courier.models.alexa import AlexaLink, AskEvent, AskReminder, AskSubscription
from courier.purge import ArchiveWriter, delete_rows, purge_hook


@purge_hook("individual", name="alexa")
async def purge_alexa(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    for reminder in await repository.reminders_of(session, organization_id, individual_id):
        await schedule_delete(session, organization_id, reminder)
    subscription_ids = await repository.subscription_ids_of_user(
        session, organization_id, individual_id
    )
    counts = {
        "ask_events": await delete_rows(
            session,
            organization_id,
            AskEvent,
            AskEvent.subscription_id.in_(subscription_ids),
            archive,
        ),
        "ask_subscriptions": await delete_rows(
            session,
            organization_id,
            AskSubscription,
            AskSubscription.user_id == individual_id,
            archive,
        ),
        "ask_reminders": await delete_rows(
            session,
            organization_id,
            AskReminder,
            AskReminder.individual_id == individual_id,
            archive,
        ),
        "alexa_links": await delete_rows(
            session, organization_id, AlexaLink, AlexaLink.individual_id == individual_id, archive
        ),
    }
    return counts
