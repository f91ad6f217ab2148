"""Jobs of the Alexa domain: keep reminders on the linked individual's device, remove them,
and send proactive events (through the delivery machine, at most once).

A sync that the Reminders API does not take (``NotSent``: unreachable, 429, a refused token)
records its error on the reminder and is tried again with backoff, up to
``COURIER_JOB_MAX_ATTEMPTS``; a permanent refusal records its error and stops until the
reminder changes. An individual without a linked Alexa account is a sync error too, and their
reminders are synced as soon as they link (see ``skill.py``).

Reminder calls carry the Alexa user's latest API token when Courier holds one (``tokens.py``);
one the adapter reports refused (``awaiting-user-token`` although a token was given) is
dropped, so the next try waits for the fresh one Alexa was asked for.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from courier.core.time import utcnow
from courier.domains.alexa import repository
from courier.domains.alexa.repository import link_of_individual
from courier.domains.alexa.schedule import parse_local_time
from courier.domains.alexa.service import DELETE_JOB, EVENT_RESOURCE, SYNC_JOB, schedule_sync
from courier.domains.alexa.tokens import forget_access, user_access
from courier.jobs.context import JobContext
from courier.jobs.registry import job_handler
from courier.jobs.worker import backoff_seconds
from courier.jsonapi.changes import SYSTEM, change, write_changes
from courier.models.alexa import AskReminder
from courier.models.delivery import Delivery
from courier.providers.alexa import (
    ALEXA,
    AlexaProvider,
    AlexaReminder,
    ProactiveEvent,
    UserApiAccess,
)
from courier.providers.alexa.base import AWAITING_USER_TOKEN
from courier.providers.common import NotSent, Permanent, ProviderError, SendResult
from courier.providers.delivery import delivery_sender

NOT_LINKED = "not-linked"
MAX_ERROR = 500


def as_alexa_reminder(reminder: AskReminder, locale: str) -> AlexaReminder:
    return AlexaReminder(
        text=reminder.reminder_content,
        locale=locale,
        scheduled_local=parse_local_time(reminder.reminder_time_local),
        time_zone=reminder.tz_info,
        recurrence_rules=(reminder.reminder_rrule,) if reminder.reminder_rrule else (),
    )


async def _load(job: JobContext, reminder_id: uuid.UUID) -> AskReminder | None:
    return await repository.reminder(job.session, job.organization_id, reminder_id)


def _record(job: JobContext, reminder: AskReminder, verb: str, **data: Any) -> None:
    write_changes(
        job.session,
        [
            change(
                "ask-reminders",
                reminder.id,
                verb,
                fields=("synced-to-alexa", "alexa-reminder-id", "sync-error"),
                audience=(reminder.individual_id,),
                organization_id=reminder.organization_id,
                data=data,
            )
        ],
        actor=SYSTEM,
        request_id=None,
    )


async def _failed(
    job: JobContext, reminder: AskReminder, error: ProviderError | None, message: str
) -> dict[str, Any]:
    """Record why the sync failed; try again later when the failure may pass."""
    reminder.sync_error = message[:MAX_ERROR]
    reminder.sync_attempts += 1
    retry = isinstance(error, NotSent) and reminder.sync_attempts < job.settings.job_max_attempts
    _record(job, reminder, "sync-failed", code=error.code if error else NOT_LINKED, retry=retry)
    if retry:
        assert isinstance(error, NotSent)
        delay = max(
            error.retry_after or 0.0,
            backoff_seconds(
                reminder.sync_attempts,
                job.settings.job_backoff_base_seconds,
                job.settings.job_backoff_max_seconds,
            ),
        )
        await schedule_sync(job.session, reminder, delay=delay)
    return {"synced": False, "retry": retry}


@job_handler(SYNC_JOB)
async def sync_reminder(job: JobContext) -> dict[str, Any] | None:
    """Create or update the reminder on the linked individual's Alexa device."""
    reminder = await _load(job, uuid.UUID(str(job.payload["reminder_id"])))
    if reminder is None:
        return {"skipped": "gone"}
    if reminder.synced_version >= reminder.sync_version and reminder.synced_to_alexa:
        return {"skipped": "in sync"}
    link = await link_of_individual(job.session, job.organization_id, reminder.individual_id)
    if link is None:
        return await _failed(
            job,
            reminder,
            None,
            "the individual has not linked an Alexa account yet; the reminder is synced when "
            "they do (docs/ALEXA.md, Account linking)",
        )
    adapter: AlexaProvider = job.providers.get(ALEXA)
    body = as_alexa_reminder(reminder, job.settings.alexa_locale)
    version = reminder.sync_version
    held_id, held_user = reminder.alexa_reminder_id, reminder.alexa_user_id
    user = link.alexa_user_id
    access = await user_access(job.session, job.settings, user)
    moved = bool(held_id and held_user and held_user != user)
    held_access = (
        await user_access(job.session, job.settings, held_user) if moved and held_user else None
    )
    await job.checkpoint()  # no transaction held while Alexa answers
    try:
        if moved and held_id and held_user:
            # Linked to another Alexa account since: move the reminder to it.
            await adapter.delete_reminder(held_id, user_id=held_user, access=held_access)
            held_id = None
        if held_id:
            try:
                await adapter.update_reminder(held_id, body, user_id=user, access=access)
                alexa_id = held_id
            except Permanent as gone:
                if gone.code != "not-found":
                    raise
                # Deleted on the device (by the person): put it back.
                alexa_id = await adapter.create_reminder(body, user_id=user, access=access)
        else:
            alexa_id = await adapter.create_reminder(body, user_id=user, access=access)
    except ProviderError as error:
        if error.code == AWAITING_USER_TOKEN:
            await _forget_refused(job, ((user, access), (held_user, held_access)))
        reminder = await _load(job, reminder.id) or reminder
        return await _failed(job, reminder, error, f"{error.code or 'error'}: {error.message}")
    current = await _load(job, reminder.id)
    if current is None:  # deleted meanwhile: remove what was just made
        await adapter.delete_reminder(alexa_id, user_id=user, access=access)
        return {"skipped": "deleted meanwhile"}
    current.alexa_reminder_id = alexa_id
    current.alexa_user_id = user
    current.synced_version = version
    current.synced_to_alexa = current.sync_version == version
    current.sync_error = None
    current.sync_attempts = 0
    current.synced_at = utcnow()
    _record(job, current, "synced", version=version)
    return {"synced": True, "version": version}


async def _forget_refused(
    job: JobContext, used: tuple[tuple[str | None, UserApiAccess | None], ...]
) -> None:
    """Drop the tokens the adapter found refused (it asked Alexa for fresh ones)."""
    for alexa_user_id, access in used:
        if alexa_user_id and access is not None:
            await forget_access(job.session, job.settings, alexa_user_id, access)


@job_handler(DELETE_JOB)
async def delete_reminder(job: JobContext) -> dict[str, Any] | None:
    """Remove a reminder (already deleted in Courier) from the device that holds it. Without
    a good user token, the adapter asks Alexa for one and the job is tried again."""
    adapter: AlexaProvider = job.providers.get(ALEXA)
    user = str(job.payload["alexa_user_id"])
    access = await user_access(job.session, job.settings, user)
    await job.checkpoint()
    try:
        await adapter.delete_reminder(
            str(job.payload["alexa_reminder_id"]), user_id=user, access=access
        )
    except NotSent as error:
        if error.code == AWAITING_USER_TOKEN and access is not None:
            await forget_access(job.session, job.settings, user, access)
            await job.checkpoint()
        raise
    return {"deleted": True}


@delivery_sender(EVENT_RESOURCE)
async def send_event(job: JobContext, delivery: Delivery, adapter: Any) -> SendResult:
    """Announce one proactive event; its id is the reference Amazon de-duplicates on."""
    event = await repository.event(job.session, job.organization_id, delivery.resource_id)
    if event is None:
        raise Permanent("gone", "the event was purged before it was sent")
    if event.expires_at <= utcnow() + timedelta(minutes=5):
        raise Permanent("expired", "the event expired before it could be sent")
    await job.checkpoint()
    alexa: AlexaProvider = adapter
    return await alexa.send_event(
        ProactiveEvent(
            name=event.name,
            payload=event.payload,
            reference_id=str(event.id),
            expires_at=event.expires_at,
            localized_attributes=tuple(event.localized),
        ),
        user_id=event.alexa_user_id,
    )
