"""The rules of Alexa reminders and subscriptions: a reminder belongs to an individual of the
organization and is kept on their device by a sync job after every change; a proactive event
is sent to a subscriber by a delivery (at most once)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import forbidden, invalid_attribute
from courier.core.time import utcnow
from courier.domains.alexa.schedule import ScheduleError, check_schedule, next_occurrences
from courier.domains.alexa.schemas import AskEventRead, AskReminderRead, SendBody
from courier.domains.people.repository import require_individual
from courier.jobs.outbox import enqueue
from courier.jsonapi.changes import Changed, change
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.render import render_rows
from courier.jsonapi.resource import CrudService
from courier.models.alexa import AskEvent, AskReminder, AskSubscription
from courier.providers.alexa import ALEXA
from courier.providers.delivery import create_delivery

SYNC_JOB = "alexa.sync-reminder"
DELETE_JOB = "alexa.delete-reminder"
EVENT_RESOURCE = "ask-events"
SYNCED_FIELDS = {"name", "reminder_content", "reminder_rrule", "reminder_time_local", "tz_info"}


async def schedule_sync(
    session: AsyncSession, reminder: AskReminder, *, delay: float = 0.0
) -> None:
    """Enqueue the job that brings the device in line with ``reminder`` (this version)."""
    await enqueue(
        session,
        SYNC_JOB,
        {"reminder_id": reminder.id, "version": reminder.sync_version},
        organization_id=reminder.organization_id,
        run_at=utcnow() + timedelta(seconds=delay) if delay else None,
        dedupe_key=f"{SYNC_JOB}:{reminder.id}:{reminder.sync_version}:{reminder.sync_attempts}",
    )


async def schedule_delete(
    session: AsyncSession, organization_id: uuid.UUID, reminder: AskReminder
) -> None:
    """Enqueue the removal of ``reminder`` from the device it was synced to, if any."""
    if reminder.alexa_reminder_id and reminder.alexa_user_id:
        await enqueue(
            session,
            DELETE_JOB,
            {
                "reminder_id": reminder.id,
                "alexa_reminder_id": reminder.alexa_reminder_id,
                "alexa_user_id": reminder.alexa_user_id,
            },
            organization_id=organization_id,
            dedupe_key=f"{DELETE_JOB}:{reminder.id}",
        )


def _check_schedule(time_local: str, tz_info: str, rule: str | None) -> None:
    try:
        check_schedule(time_local, tz_info, rule)
    except ScheduleError as error:
        raise invalid_attribute(error.attribute, str(error), "invalid-schedule") from None


class ReminderService(CrudService[AskReminder]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[AskReminder]:
        values = attrs.model_dump()
        await require_individual(
            ctx, values["individual_id"], pointer="/data/attributes/individual-id"
        )
        if ctx.principal.is_individual and values["individual_id"] != ctx.principal.individual_id:
            raise forbidden("an individual token may make reminders only for itself")
        _check_schedule(values["reminder_time_local"], values["tz_info"], values["reminder_rrule"])
        reminder = AskReminder(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            created_by=ctx.principal.actor_id,
            synced_to_alexa=False,
            sync_version=1,
            synced_version=0,
            sync_attempts=0,
            **values,
        )
        ctx.session.add(reminder)
        await schedule_sync(ctx.session, reminder)
        return self.changed(ctx, "created", reminder, attrs.model_fields_set)

    async def update(self, ctx: Context, obj: AskReminder, attrs: WriteAttributes) -> AskReminder:
        given = attrs.given()
        moved = False
        for name, value in given.items():
            if getattr(obj, name) != value:
                setattr(obj, name, value)
                moved = moved or name in SYNCED_FIELDS
        if moved:
            _check_schedule(obj.reminder_time_local, obj.tz_info, obj.reminder_rrule)
            obj.sync_version += 1
            obj.synced_to_alexa = False
            obj.sync_attempts = 0
            obj.sync_error = None
            await schedule_sync(ctx.session, obj)
        return obj

    def individuals_of(self, obj: AskReminder) -> Iterable[uuid.UUID]:
        return (obj.individual_id,)

    async def present(self, ctx: Context, rows: Sequence[AskReminder]) -> list[dict[str, Any]]:
        now = utcnow()
        out = []
        for row in rows:
            attributes = {
                "account_id": row.organization_id,
                "individual_id": row.individual_id,
                "name": row.name,
                "reminder_content": row.reminder_content,
                "reminder_rrule": row.reminder_rrule,
                "reminder_time_local": row.reminder_time_local,
                "tz_info": row.tz_info,
                "synced_to_alexa": row.synced_to_alexa,
                "alexa_reminder_id": row.alexa_reminder_id,
                "sync_error": row.sync_error,
                "next_occurrences": next_occurrences(
                    row.reminder_time_local, row.tz_info, row.reminder_rrule, after=now
                ),
                "created_at": row.created_at,
                "created_by": row.created_by,
                "last_modified_at": row.last_modified_at,
            }
            out.append(attributes)
        return render_rows(AskReminderRead, out)


class SubscriptionService(CrudService[AskSubscription]):
    def individuals_of(self, obj: AskSubscription) -> Iterable[uuid.UUID]:
        return (obj.user_id,) if obj.user_id else ()


async def do_send(
    ctx: Context, subscription: AskSubscription, body: SendBody
) -> Changed[AskEventRead]:
    """Announce a proactive event (``AMAZON.MessageAlert.Activated``,
    ``AMAZON.MedicationReminder.Activated`` ...) to this subscriber on their Alexa devices.
    Accepted at once (201) and sent by a job, at most once, through the Proactive Events API
    (the alexa adapter); the answer names the delivery whose state tells the outcome."""
    now = utcnow()
    event = AskEvent(
        id=uuid.uuid4(),
        organization_id=subscription.organization_id,
        subscription_id=subscription.id,
        alexa_user_id=subscription.alexa_user_id,
        name=body.event.name,
        payload=body.event.payload,
        localized=list(body.localized),
        expires_at=now + timedelta(seconds=body.expire),
        created_at=now,
    )
    ctx.session.add(event)
    await ctx.session.flush()
    delivery = await create_delivery(
        ctx.session,
        ctx.settings,
        organization_id=subscription.organization_id,
        kind=ALEXA,
        resource_type=EVENT_RESOURCE,
        resource_id=event.id,
        recipient=subscription.alexa_user_id,
    )
    event.delivery_id = delivery.id
    answer = AskEventRead(
        id=event.id,
        subscription_id=subscription.id,
        name=event.name,
        delivery_id=delivery.id,
        state=delivery.state,
        expires_at=event.expires_at,
    )
    sent = change(
        "ask-subscriptions",
        subscription.id,
        "event-sent",
        audience=[subscription.user_id] if subscription.user_id else [],
        organization_id=subscription.organization_id,
        data={"event-id": str(event.id), "name": event.name, "delivery-id": str(delivery.id)},
    )
    return Changed(answer, [sent])
