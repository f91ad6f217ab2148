"""What a ladder's phone call says: the voice service fetches the call's TwiML here once the
callee picks up (``POST /providers/voice/notifications/{id}``, signed by the service, not
part of the API). The call says the notification's lock-screen line (a sensitive template's
neutral line: whoever answers the phone hears nothing clinical) and asks for 1 to confirm;
pressing 1 acknowledges the notification, which stops its ladder."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response

from courier.config import Settings
from courier.core.db import commit
from courier.core.errors import not_found
from courier.core.time import now_ms
from courier.domains.user_notifications.reading import _acked, _cancel_ladder
from courier.domains.user_notifications.repository import notification_of_call
from courier.domains.user_notifications.service import push_rendering
from courier.jsonapi.changes import SYSTEM, write_changes
from courier.models.user_notification import UserNotification
from courier.providers.common import CALLBACK_PREFIX, KINDS, load_provider_kinds, providers_for
from courier.providers.inbound import raw_request
from courier.providers.voice.base import VoiceProvider

router = APIRouter(tags=["providers"])
CALL_PATH = CALLBACK_PREFIX + "/voice/notifications/{notification_id}"
CONFIRM_DIGIT = "1"


def call_url(settings: Settings, notification_id: uuid.UUID) -> str:
    from courier.providers.common import public_base

    return public_base(settings) + CALL_PATH.format(notification_id=notification_id)


def spoken_line(notification: UserNotification) -> str:
    """What the call says: the push's line (neutral for a sensitive template), else the
    text's, else the app's title."""
    data: dict[str, Any] = dict(notification.data or {})
    push = push_rendering(data, "apn")
    if push is not None and push.get("body"):
        return str(push["body"])
    bodies = (data.get("sms") or {}).get("bodies") or []
    if bodies:
        return str(bodies[0])
    app = data.get("app") or {}
    return str(app.get("body") or app.get("title") or "You have a new notification.")


@router.post(CALL_PATH, include_in_schema=False)
async def call_script(notification_id: str, request: Request) -> Response:
    settings: Settings = request.app.state.settings
    load_provider_kinds()
    adapter = providers_for(settings).get(KINDS["voice"])
    raw = await raw_request(settings, request, "notifications")
    if not isinstance(adapter, VoiceProvider) or not adapter.verify(raw):
        return Response(status_code=403)
    try:
        ident = uuid.UUID(notification_id)
    except ValueError as exc:
        raise not_found("notification") from exc
    from twilio.twiml.voice_response import Gather, VoiceResponse  # type: ignore[import-untyped]

    digits = raw.form_dict().get("Digits", [""])[0]
    answer = VoiceResponse()
    async with request.app.state.database.sessionmaker() as session:
        notification = await notification_of_call(session, ident)
        if notification is None:
            raise not_found("notification")
        if digits == CONFIRM_DIGIT:
            if not notification.acknowledged:
                change = _acked(notification, now_ms(), notification.organization_id)
                await _cancel_ladder(session, notification)
                write_changes(
                    session,
                    [change],
                    actor=SYSTEM,
                    request_id=None,
                    organization_id=notification.organization_id,
                )
            answer.say("Thank you. Goodbye.")
        else:
            gather = Gather(num_digits=1, action=str(raw.url).split("?")[0], method="POST")
            gather.say(spoken_line(notification))
            gather.say(f"Press {CONFIRM_DIGIT} to confirm you received this message.")
            answer.append(gather)
            answer.say("Goodbye.")
        await commit(session)
    return Response(str(answer), media_type="application/xml")
