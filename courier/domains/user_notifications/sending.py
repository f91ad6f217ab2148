"""How a notification leaves: its pushes (a delivery per device, sent by the delivery state
machine), its SMS and emails (queued by the dispatch job through the texts and email
domains), and calls placed by an escalation ladder.

Everything here runs in jobs; each push is its own delivery, sent at most once. A token the
push service reports gone deactivates the device in the transaction that records the failure.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.errors import ApiError
from courier.domains.app_credentials.service import credentials_for
from courier.domains.email.service import do_queue_rendered
from courier.domains.text_accounts import repository as accounts
from courier.domains.texts.service import TextRefusedError, choose_number, queue_text
from courier.domains.user_devices.service import (
    deactivate_gone_device,
    push_content,
    push_device,
)
from courier.domains.user_notifications import repository as repo
from courier.domains.user_notifications.endpoints import call_url
from courier.domains.user_notifications.service import TYPE, notify_copy, push_rendering
from courier.jobs.context import JobContext
from courier.models.delivery import Delivery
from courier.models.push_device import UserDevice
from courier.models.user import User
from courier.models.user_notification import UserNotification
from courier.providers import delivery as deliveries
from courier.providers.common import Permanent, RecipientGone, SendResult
from courier.providers.email.message import EmailContent
from courier.providers.push.base import (
    Platform,
    PushCredentials,
    PushMessage,
    PushOutcome,
    PushProvider,
    PushSend,
    send_batch,
)
from courier.providers.voice import VOICE
from courier.providers.voice.base import OutboundCall, VoiceProvider

CALL_TYPE = "user-notification-calls"  # a call placed by a ladder: its delivery's resource type
SMS_PURPOSE = "notification"


def platform_of(device: UserDevice) -> Platform:
    """The device's push platform (its ``type``, one of them by the devices' schema)."""
    return cast(Platform, device.type)


def push_message(notification: UserNotification, platform: str) -> PushMessage | None:
    """What a device of ``platform`` is sent: the rendering (a sensitive template's carries
    only the neutral line and the deep link), the badge, and the notification's id for the
    app to acknowledge it."""
    rendering = push_rendering(notification.data or {}, platform)
    if rendering is None:
        return None
    return PushMessage(
        title=rendering.get("title"),
        body=rendering.get("body"),
        badge=notification.badge,
        category=rendering.get("category") or notification.category,
        data={**dict(rendering.get("data") or {}), "notification-id": str(notification.id)},
    )


@deliveries.delivery_sender(TYPE)
async def send_push(job: JobContext, delivery: Delivery, adapter: PushProvider) -> SendResult:
    session, org = job.session, job.organization_id
    notification = await repo.load_notification(session, org, delivery.resource_id)
    if notification is None:
        raise Permanent("deleted", "the notification was deleted before it was sent")
    device_id = uuid.UUID(delivery.recipient)
    device = (await repo.devices_by_id(session, org, [device_id])).get(device_id)
    if device is None or not device.active:
        raise Permanent("device-inactive", "the device was removed or its token is gone")
    if not device.allow_notification:
        raise Permanent("notifications-off", "the device no longer allows notifications")
    message = push_message(notification, device.type)
    if message is None:
        raise Permanent("nothing-to-push", "the template has no push rendering")
    credentials = await credentials_for(
        session,
        job.settings,
        org,
        device.app_name,
        platform_of(device),
    )
    target = push_device(device)
    await job.checkpoint()  # no transaction (SQLite: no write lock) during the service's call
    try:
        return await adapter.send(target, message, delivery_id=delivery.id, credentials=credentials)
    except RecipientGone as exc:
        # Recorded with the failure (the caller marks the delivery failed in this session).
        await deactivate_gone_device(session, org, device_id, code=exc.code)
        raise


@deliveries.batch_sender(TYPE)
async def prepare_pushes(
    job: JobContext, batch: list[Delivery], adapter: PushProvider
) -> Mapping[uuid.UUID, deliveries.SendAction | Permanent]:
    """The pushes of a batch, read in a few statements: each delivery's notification, device
    and the app's credentials. Their provider calls are one batch (:func:`send_batch`: the
    sandbox takes it in one transaction), made when the first of them is called, after the
    claim is committed; each delivery still gets its own outcome."""
    session, org = job.session, job.organization_id
    notification_ids = list({row.resource_id for row in batch})
    device_ids = list({uuid.UUID(row.recipient) for row in batch})
    notifications = await repo.notifications_by_id(session, org, notification_ids)
    devices = await repo.devices_by_id(session, org, device_ids)
    credentials: dict[tuple[str, str], PushCredentials | None] = {}
    actions: dict[uuid.UUID, deliveries.SendAction | Permanent] = {}
    sends: list[PushSend] = []
    for row in batch:
        notification = notifications.get(row.resource_id)
        device = devices.get(uuid.UUID(row.recipient))
        if notification is None:
            actions[row.id] = Permanent(
                "deleted", "the notification was deleted before it was sent"
            )
            continue
        if device is None or not device.active:
            actions[row.id] = Permanent("device-inactive", "the device was removed or is gone")
            continue
        if not device.allow_notification:
            actions[row.id] = Permanent("notifications-off", "the device no longer allows them")
            continue
        message = push_message(notification, device.type)
        if message is None:
            actions[row.id] = Permanent("nothing-to-push", "the template has no push rendering")
            continue
        key = (device.app_name, device.type)
        if key not in credentials:
            credentials[key] = await credentials_for(
                session,
                job.settings,
                org,
                device.app_name,
                platform_of(device),
            )
        sends.append(PushSend(row.id, push_device(device), message, credentials[key]))
    shared = _SharedBatch(adapter, sends)
    for index, send in enumerate(sends):
        actions[send.delivery_id] = shared.action(index)
    return actions


class _SharedBatch:
    """One provider call for a batch's pushes, made by whichever of their actions runs first;
    each action then answers its own push's outcome."""

    def __init__(self, adapter: PushProvider, sends: list[PushSend]) -> None:
        self.adapter = adapter
        self.sends = sends
        self._outcomes: asyncio.Task[list[PushOutcome]] | None = None

    def action(self, index: int) -> deliveries.SendAction:
        async def call() -> SendResult:
            if self._outcomes is None:
                self._outcomes = asyncio.ensure_future(send_batch(self.adapter, self.sends))
            outcome = (await asyncio.shield(self._outcomes))[index]
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        return call


@deliveries.on_permanent_failure(TYPE)
async def deactivate_gone(session: AsyncSession, delivery: Delivery, error: Permanent) -> None:
    """A push service said the token is gone: the device is deactivated with the failure."""
    if isinstance(error, RecipientGone):
        await deactivate_gone_device(
            session, delivery.organization_id, uuid.UUID(delivery.recipient), code=error.code
        )


@push_content(TYPE)
async def pushed_content(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, Mapping[str, Any]]:
    """What each notification's pushes showed (for the devices' ``get-logs``)."""
    shown: dict[uuid.UUID, Mapping[str, Any]] = {}
    for row in (await repo.notifications_by_id(session, organization_id, ids)).values():
        message = push_message(row, "apn")
        if message is not None:
            shown[row.id] = message.shown()
    return shown


# --- SMS and email ------------------------------------------------------------------------------


async def queue_sms(
    session: AsyncSession, settings: Settings, notification: UserNotification, user: User
) -> str:
    """Queue the notification's SMS to the user's phone; what happened, in a few words."""
    bodies = (notification.data or {}).get("sms", {}).get("bodies") or []
    if not bodies or not user.phone:
        return "skipped: no sms body or no phone"
    account = await accounts.account_of(session, notification.organization_id)
    if account is None:
        return "skipped: the organization has no text account"
    try:
        num = await choose_number(session, notification.organization_id, account, None, user.id)
        for body in bodies:
            await queue_text(
                session,
                settings,
                account=account,
                num=num,
                target=user.phone,
                message=body,
                purpose=SMS_PURPOSE,
            )
    except (TextRefusedError, ApiError) as exc:
        return f"skipped: {exc}"[:200]
    return "queued"


async def queue_mail(
    session: AsyncSession, settings: Settings, notification: UserNotification, user: User
) -> str:
    email = (notification.data or {}).get("email")
    if not email or not user.email:
        return "skipped: no email rendering or no address"
    if email.get("text") is None and email.get("html") is None:
        return "skipped: the email has no body"
    try:
        await do_queue_rendered(
            session,
            settings,
            organization_id=notification.organization_id,
            to=[user.email],
            content=EmailContent(
                subject=email.get("subject") or "", text=email.get("text"), html=email.get("html")
            ),
            individual_id=notification.individual_id,
            created_by=f"notification:{notification.id}"[:64],
        )
    except ApiError as exc:  # the address bounced before
        return f"skipped: {exc.items[0].detail if exc.items else 'refused'}"[:200]
    return "queued"


# --- calls (escalation) -------------------------------------------------------------------------


async def place_call(
    session: AsyncSession, settings: Settings, notification: UserNotification, phone: str
) -> Delivery:
    """A call to ``phone`` about the notification, as a voice delivery."""
    return await deliveries.create_delivery(
        session,
        settings,
        organization_id=notification.organization_id,
        kind=VOICE,
        resource_type=CALL_TYPE,
        resource_id=notification.id,
        recipient=phone,
    )


@deliveries.delivery_sender(CALL_TYPE)
async def send_call(job: JobContext, delivery: Delivery, adapter: VoiceProvider) -> SendResult:
    session, org = job.session, job.organization_id
    notification = await repo.load_notification(session, org, delivery.resource_id)
    if notification is None:
        raise Permanent("deleted", "the notification was deleted before the call")
    account = await accounts.account_of(session, org)
    if account is None:
        raise Permanent("no-caller-id", "the organization has no number to call from")
    try:
        num = await choose_number(session, org, account, None, notification.user_id)
    except ApiError as exc:
        raise Permanent("no-caller-id", "the organization has no active number") from exc
    call = OutboundCall(
        to=delivery.recipient,
        from_=num.phone_number or "",
        url=call_url(job.settings, notification.id),
        status_callback_url=deliveries_callback(job.settings, delivery.id),
    )
    await job.checkpoint()
    return await adapter.place_call(call, delivery_id=delivery.id)


def deliveries_callback(settings: Settings, delivery_id: uuid.UUID) -> str:
    from courier.providers.common import callback_url

    return callback_url(settings, "voice", "status", delivery_id=delivery_id)


async def alert_care_team(
    session: AsyncSession,
    settings: Settings,
    notification: UserNotification,
    step: Mapping[str, Any],
    index: int,
) -> uuid.UUID | None:
    """The ladder's last resort: a care-team member gets the notification as their own."""
    user_id = step.get("user-id")
    return await notify_copy(
        session,
        settings,
        source_row=notification,
        individual_id=uuid.UUID(str(step["individual-id"])),
        user_id=uuid.UUID(str(user_id)) if user_id else None,
        source=f"ladder:{notification.id}",
        dedupe_key=f"ladder:{notification.id}:{index}",
    )
