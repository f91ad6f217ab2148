"""The IVR: what a line's caller hears, step by step, as TwiML built with the ``twilio``
library's ``VoiceResponse``.

``POST /v1/voice-ivrs/{id}/twiml/?step=...`` (``id``: the voice setting) is the call webhook
the voice service fetches. Steps:

- ``greeting`` (no step): outside business hours the after-hours message, then voicemail;
  otherwise the greeting and a menu, by digits or speech: 1 / "wait" (the queue),
  2 / "message" (voicemail), 3 / "operator" (forward, when the line has a forward-number);
- ``menu``: the caller's choice; ``queue``: the caller joins the line's queue (``<Enqueue>``)
  and hears the wait message; ``hold``: the queue's wait music (the wait message);
- ``connect``: an agent took the caller (Courier redirected the call here): the recording
  announcement when the line records, then ``<Dial>`` to the agent's browser client or phone;
- ``dialed``: the agent's leg ended; ``forward``: ``<Dial>`` to the forward-number;
- ``voicemail``: the recording announcement, then ``<Record>`` (transcribed); ``recorded``.

Anything unexpected (an unknown step, a malformed form, an error of ours) answers safe TwiML:
an apology and voicemail. A caller never hears an application error from Courier.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.time import now_ms
from courier.domains.voice import repository as repo
from courier.domains.voice.repository import fetch_row
from courier.domains.voice.service import (
    callback_url,
    enqueue_dispatch,
    is_open,
    twiml_url,
)
from courier.events import publish
from courier.models.organization import Organization
from courier.models.voice import VoiceQueueAgent, VoiceQueueEntry, VoiceSetting

if TYPE_CHECKING:
    from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped]

log = logging.getLogger("courier.domains.voice.ivr")
DEFAULT_GREETING = "Thank you for calling."
DEFAULT_WAIT = "Please stay on the line. The next available member of our team will be with you."
DEFAULT_RECORDING = "This call will be recorded."
DEFAULT_VOICEMAIL = "Please leave a message after the tone, then press the pound key or hang up."
DEFAULT_AFTER_HOURS = "Our office is closed right now."
SORRY = "We are sorry, something went wrong."
MENU_HINTS = "wait, staff, message, voicemail, operator, forward"
MAX_RECORD_SECONDS = 300


def safe_twiml(settings: Settings, setting_id: uuid.UUID | None) -> str:
    """An apology and, when the line is known, voicemail."""
    from twilio.twiml.voice_response import VoiceResponse

    answer = VoiceResponse()
    answer.say(SORRY)
    if setting_id is not None:
        answer.redirect(twiml_url(settings, setting_id, "voicemail"), method="POST")
    else:
        answer.say("This number is not in service. Goodbye.")
        answer.hangup()
    return str(answer)


def _choice(digits: str, speech: str, forward: bool) -> str | None:
    said = speech.lower()
    if digits == "1" or any(w in said for w in ("wait", "staff", "queue", "nurse")):
        return "queue"
    if digits == "2" or any(w in said for w in ("message", "voicemail", "voice mail")):
        return "voicemail"
    if forward and (digits == "3" or any(w in said for w in ("operator", "forward"))):
        return "forward"
    return None


async def _line_call(session: AsyncSession, setting: VoiceSetting, form: dict[str, str]) -> None:
    """The line's record of the call (how its callbacks find the organization), made by the
    call's first webhook: one ``INSERT ... ON CONFLICT DO NOTHING``."""
    sid = form.get("CallSid", "")
    if not sid:
        return
    status = (form.get("CallStatus") or "in-progress")[:16]
    made = await repo.record_line_call(
        session,
        setting,
        call_sid=sid[:64],
        caller=(form.get("From") or "unknown")[:32],
        status=status,
        now=now_ms(),
    )
    if made is None:
        return  # a later webhook of the call, or the same one again
    publish(
        session,
        organization_id=setting.organization_id,
        resource_type="voice-calls",
        verb="started",
        resource_id=made,
        data={"setting-id": str(setting.id), "call-sid": sid[:64], "status": status},
    )


async def _join_queue(
    session: AsyncSession, setting: VoiceSetting, form: dict[str, str]
) -> uuid.UUID | None:
    """The caller's queue entry (one per call: ``INSERT ... ON CONFLICT DO NOTHING``, the
    individual with the caller's phone found in the same statement)."""
    sid = form.get("CallSid", "")
    if not sid:
        return None
    caller = (form.get("From") or "unknown")[:32]
    org = setting.organization_id
    made = await repo.join_queue(session, setting, call_sid=sid[:64], caller=caller, now=now_ms())
    if made is None:
        return None
    publish(
        session,
        organization_id=org,
        resource_type="voice-queue-entries",
        verb="created",
        resource_id=made,
        data={"setting-id": str(setting.id), "state": "waiting"},
    )
    await enqueue_dispatch(session, org, setting.id)
    return made


def _voicemail(settings: Settings, setting: VoiceSetting, answer: VoiceResponse) -> None:
    # The consent announcement comes before anything is recorded.
    answer.say(setting.recording_message or DEFAULT_RECORDING)
    answer.say(DEFAULT_VOICEMAIL)
    answer.record(
        action=twiml_url(settings, setting.id, "recorded"),
        method="POST",
        max_length=MAX_RECORD_SECONDS,
        timeout=5,
        finish_on_key="#",
        play_beep=True,
        transcribe=True,
        transcribe_callback=callback_url(settings, "transcription"),
        recording_status_callback=callback_url(settings, "recording"),
    )
    answer.say("We did not receive a message. Goodbye.")
    answer.hangup()


async def _connect(
    session: AsyncSession,
    settings: Settings,
    setting: VoiceSetting,
    entry_id: str,
    answer: VoiceResponse,
) -> None:
    entry = await fetch_row(session, VoiceQueueEntry, setting.organization_id, uuid.UUID(entry_id))
    agent = (
        await fetch_row(session, VoiceQueueAgent, setting.organization_id, entry.agent_id)
        if entry and entry.agent_id
        else None
    )
    if entry is None or agent is None or entry.setting_id != setting.id:
        answer.say(SORRY)
        answer.redirect(twiml_url(settings, setting.id, "voicemail"), method="POST")
        return
    options: dict[str, Any] = {
        "action": twiml_url(settings, setting.id, "dialed", entry=str(entry.id)),
        "method": "POST",
        "timeout": 30,
    }
    if setting.recording_enabled:
        answer.say(setting.recording_message or DEFAULT_RECORDING)
        options["record"] = "record-from-answer"
        options["recording_status_callback"] = callback_url(settings, "recording")
    from twilio.twiml.voice_response import Dial

    dial = Dial(**options)
    if agent.use_pstn and agent.phone_number:
        dial.number(agent.phone_number)
    else:
        dial.client(agent.identity)
    answer.append(dial)


async def _dialed(
    session: AsyncSession,
    settings: Settings,
    setting: VoiceSetting,
    form: dict[str, str],
    entry_id: str,
    answer: VoiceResponse,
) -> None:
    status = form.get("DialCallStatus", "")
    if status in ("completed", "answered"):
        answer.say("Thank you for calling. Goodbye.")
        answer.hangup()
        return
    # The agent did not pick up: the agent is free again, the caller may leave a message.
    entry = await fetch_row(session, VoiceQueueEntry, setting.organization_id, uuid.UUID(entry_id))
    if entry is not None and entry.agent_id is not None:
        agent = await fetch_row(session, VoiceQueueAgent, setting.organization_id, entry.agent_id)
        if agent is not None and agent.entry_id == entry.id and agent.state == "busy":
            agent.state, agent.entry_id, agent.free_since = "available", None, now_ms()
            agent.last_modified_at = now_ms()
    answer.say("We are sorry, nobody could take your call.")
    _voicemail(settings, setting, answer)


async def answer_call(
    session: AsyncSession,
    settings: Settings,
    setting: VoiceSetting,
    step: str,
    query: dict[str, str],
    form: dict[str, str],
) -> str:
    """The TwiML for ``step`` of a call on ``setting``'s line (writes rows; no commit)."""
    from twilio.twiml.voice_response import Gather, VoiceResponse

    answer = VoiceResponse()
    step = step or "greeting"
    if step in ("greeting", "queue", "voicemail"):  # where a call may begin
        await _line_call(session, setting, form)
    if step == "greeting":
        timezone = "UTC"
        if setting.business_hours:
            organization = await session.get(Organization, setting.organization_id)
            timezone = organization.timezone if organization is not None else "UTC"
        if not is_open(setting, timezone):
            answer.say(setting.after_hours_message or DEFAULT_AFTER_HOURS)
            _voicemail(settings, setting, answer)
            return str(answer)
        gather = Gather(
            input="dtmf speech",
            num_digits=1,
            action=twiml_url(settings, setting.id, "menu"),
            method="POST",
            timeout=5,
            hints=MENU_HINTS,
        )
        gather.say(setting.greeting_message or DEFAULT_GREETING)
        menu = "To wait for the next member of our team, press 1 or say wait. "
        menu += "To leave a message, press 2 or say message."
        if setting.forward_number:
            menu += " To reach the operator, press 3 or say operator."
        gather.say(menu)
        answer.append(gather)
        answer.say("We did not receive a choice.")
        answer.redirect(twiml_url(settings, setting.id, "queue"), method="POST")
    elif step == "menu":
        choice = _choice(
            form.get("Digits", "").strip(),
            form.get("SpeechResult", ""),
            bool(setting.forward_number),
        )
        if choice is None:
            answer.say("Sorry, that is not one of the choices.")
            answer.redirect(twiml_url(settings, setting.id), method="POST")
        else:
            answer.redirect(twiml_url(settings, setting.id, choice), method="POST")
    elif step == "queue":
        await _join_queue(session, setting, form)
        answer.say(setting.wait_message or DEFAULT_WAIT)
        answer.enqueue(
            f"line-{setting.id}",
            wait_url=twiml_url(settings, setting.id, "hold"),
            wait_url_method="POST",
        )
    elif step == "hold":
        answer.say(setting.wait_message or DEFAULT_WAIT)
        answer.pause(length=20)
    elif step == "connect":
        await _connect(session, settings, setting, query.get("entry", ""), answer)
    elif step == "dialed":
        await _dialed(session, settings, setting, form, query.get("entry", ""), answer)
    elif step == "forward":
        if setting.forward_number:
            answer.say("Please hold while we connect you.")
            answer.dial(setting.forward_number, timeout=30)
        else:
            _voicemail(settings, setting, answer)
    elif step == "voicemail":
        _voicemail(settings, setting, answer)
    elif step == "recorded":
        answer.say("Thank you. Your message was recorded. Goodbye.")
        answer.hangup()
    else:
        return safe_twiml(settings, setting.id)
    return str(answer)
