"""The jobs of user notifications: the dispatch of a ``notify_many`` call's SMS and emails,
and each step of an escalation ladder (one job per step, at its time).

A step does nothing once the notification is acknowledged or withdrawn: ``ack`` cancels the
steps still queued, and a step that starts anyway (a race with the ack) reads the
notification locked and stops. Each step runs once: its state moves from ``scheduled`` in the
transaction that does its work.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.time import now_ms, utcnow
from courier.domains.user_notifications import repository as repo
from courier.domains.user_notifications import sending
from courier.domains.user_notifications.repository import notifiable_devices, sms_consented
from courier.domains.user_notifications.service import (
    DISPATCH_JOB,
    ESCALATE_JOB,
    PUSH_JOB,
    TYPE,
)
from courier.jobs import JobContext, job_handler
from courier.jsonapi.changes import SYSTEM, change, write_changes
from courier.models.user import User
from courier.models.user_notification import UserNotification
from courier.providers import delivery as deliveries
from courier.providers.push.kind import PUSH


@job_handler(PUSH_JOB)
async def push(job: JobContext) -> dict[str, Any] | None:
    """Send the pushes of one ``notify_many`` call (each its own delivery, at most once)."""
    session, org = job.session, job.organization_id
    batch_id = uuid.UUID(str(job.payload["batch_id"]))
    ids = await repo.pending_pushes(session, org, batch_id, resource_type=TYPE, channel=PUSH.name)
    return await deliveries.send_deliveries(job, ids)


@job_handler(DISPATCH_JOB)
async def dispatch(job: JobContext) -> dict[str, Any] | None:
    """Queue the SMS and emails of one ``notify_many`` call's notifications."""
    session, org = job.session, job.organization_id
    batch_id = uuid.UUID(str(job.payload["batch_id"]))
    rows = await repo.undispatched(session, org, batch_id)
    users = await repo.rows_by_id(
        session, org, User, list({row.user_id for row in rows if row.user_id is not None})
    )
    outcomes: dict[str, int] = {}
    now = now_ms()
    for row in rows:
        user = users.get(row.user_id) if row.user_id is not None else None
        if user is not None and row.active and not row.acknowledged:
            if "sms" in row.channels:
                done = await sending.queue_sms(session, job.settings, row, user)
                outcomes[f"sms {done}"] = outcomes.get(f"sms {done}", 0) + 1
            if "email" in row.channels:
                done = await sending.queue_mail(session, job.settings, row, user)
                outcomes[f"email {done}"] = outcomes.get(f"email {done}", 0) + 1
        row.dispatched_at = now
    return {"notifications": len(rows), "outcomes": len(outcomes)}


# --- escalation -----------------------------------------------------------------------------------


async def _step_work(
    session: AsyncSession,
    settings: Settings,
    row: UserNotification,
    step: dict[str, Any],
    index: int,
) -> str:
    """Do one step; what happened, in a few words (ids only, no content)."""
    channel = step["channel"]
    users = await repo.rows_by_id(
        session, row.organization_id, User, [row.user_id] if row.user_id else []
    )
    user = users.get(row.user_id) if row.user_id else None
    if channel == "push":
        devices = (await notifiable_devices(session, row.organization_id, [row.individual_id])).get(
            row.individual_id, []
        )
        for device in devices:
            await deliveries.create_delivery(
                session,
                settings,
                organization_id=row.organization_id,
                kind=PUSH,
                resource_type=TYPE,
                resource_id=row.id,
                recipient=str(device.id),
            )
        return f"pushed to {len(devices)} device(s)" if devices else "skipped: no active device"
    if channel == "sms":
        if user is None:
            return "skipped: no user"
        if user.id not in await sms_consented(session, row.organization_id, [user]):
            return "skipped: no accepted SMS consent for the user's phone"
        return "sms " + await sending.queue_sms(session, settings, row, user)
    if channel == "email":
        if user is None:
            return "skipped: no user"
        return "email " + await sending.queue_mail(session, settings, row, user)
    if channel == "voice":
        if user is None or not user.phone:
            return "skipped: no phone"
        delivery = await sending.place_call(session, settings, row, user.phone)
        step["delivery-id"] = str(delivery.id)
        return "call placed"
    if channel == "care-team":
        alerted = await sending.alert_care_team(session, settings, row, step, index)
        step["notification-id"] = str(alerted) if alerted else None
        return "care team alerted" if alerted else "skipped: no such care-team member"
    return "skipped: unknown channel"


@job_handler(ESCALATE_JOB)
async def escalate(job: JobContext) -> dict[str, Any] | None:
    session, org = job.session, job.organization_id
    ident = uuid.UUID(str(job.payload["notification_id"]))
    index = int(job.payload["step"])
    row = await repo.load_notification(session, org, ident, for_update=True)
    if row is None or not row.escalation:
        return {"skipped": "no such notification"}
    ladder = dict(row.escalation)
    steps = [dict(step) for step in ladder.get("steps", [])]
    if index >= len(steps) or steps[index].get("state") != "scheduled":
        return {"skipped": "step already handled"}
    now = utcnow()
    if row.acknowledged or not row.active:
        for step in steps[index:]:
            if step.get("state") == "scheduled":
                step["state"] = "cancelled"
        ladder["state"] = "stopped"
        row.escalation = {**ladder, "steps": steps}
        return {"skipped": "acknowledged" if row.acknowledged else "withdrawn"}
    step = steps[index]
    result = await _step_work(session, job.settings, row, step, index)
    step["state"] = "skipped" if result.startswith("skipped") else "done"
    step["done-at"] = now.isoformat()
    step["result"] = result
    last = all(s.get("state") != "scheduled" for s in steps)
    ladder["state"] = "done" if last else "escalated"
    ladder["level"] = index + 1
    row.escalation = {**ladder, "steps": steps}
    row.last_modified_at = now_ms()
    write_changes(
        session,
        [
            change(
                TYPE,
                row.id,
                "escalated",
                fields=["escalation"],
                audience=(row.individual_id,),
                organization_id=org,
                data={"step": index, "channel": step["channel"], "state": step["state"]},
            )
        ],
        actor=SYSTEM,
        request_id=None,
    )
    return {"step": index, "channel": step["channel"], "state": step["state"]}
