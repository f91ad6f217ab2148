"""What the skill answers: an Alexa request envelope (already verified) in, the Alexa response
JSON out (``{"version": "1.0", "response": {...}}``, the shape of ask-sdk-model's
``ResponseEnvelope``).

Account linking: the skill's account linking hands Alexa an individual access token Courier
minted (``POST /v1/access-tokens/``); Alexa sends it in ``context.System.user.accessToken``.
A request carrying a valid one links the Alexa user to that individual (one individual per
Alexa user; a newer token moves the link). Without one, the skill asks the person to link
their account in the Alexa app (a ``LinkAccount`` card) and tells nothing else.

PHI-safe by default: the skill says how many new messages the care team sent and from whom,
and that they are in the app, never their text. An organization that sets its preference
``alexa-read-message-text`` lets the skill read the text aloud.

Every request of a linked user (and the ``Messaging.MessageReceived`` request Courier asks Alexa
for when it needs one) leaves the user's API token for the reminder jobs (``tokens.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.auth import PrincipalKind, authenticate
from courier.core.errors import ApiError
from courier.core.time import utcnow
from courier.domains.alexa import repository as repo
from courier.domains.alexa.schedule import next_occurrences
from courier.domains.alexa.service import schedule_sync
from courier.domains.alexa.tokens import access_of, forget_user, remember_access
from courier.domains.org_preferences.service import get_preference
from courier.jsonapi.changes import Actor, Change, change, write_changes
from courier.models.alexa import AlexaLink, AskReminder, AskSubscription
from courier.providers.alexa.base import AWAITING_USER_TOKEN

REMINDERS_INTENT = "GetRemindersIntent"
MESSAGES_INTENT = "ReadMessagesIntent"
ACKNOWLEDGE_INTENT = "AcknowledgeIntent"
SUBSCRIPTION_CHANGED = "AlexaSkillEvent.ProactiveSubscriptionChanged"
SKILL_DISABLED = "AlexaSkillEvent.SkillDisabled"
MESSAGE_RECEIVED = "Messaging.MessageReceived"
READ_TEXT_PREFERENCE: Literal["alexa-read-message-text"] = "alexa-read-message-text"
LINK_PROMPT = (
    "To hear your reminders and messages, please link your account in the Alexa app, "
    "using the code your care team gave you."
)
MAX_SPOKEN_REMINDERS = 3
MAX_SPOKEN_AUTHORS = 3
MAX_READ_MESSAGES = 5
MAX_READ_CHARS = 600  # of one message's text; Alexa speaks at most 8,000 characters in all
ALEXA_ACTOR = Actor("alexa", "skill")


def skill_id_of(alexa_app_id: str) -> uuid.UUID:
    """Courier's stable id of an Alexa skill (``skill-id`` of ask-subscriptions)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"alexa-skill:{alexa_app_id}")


def respond(text: str | None, *, end: bool = True, link_account: bool = False) -> dict[str, Any]:
    """A ResponseEnvelope: plain-text speech, optionally a LinkAccount card."""
    response: dict[str, Any] = {"shouldEndSession": end}
    if text is not None:
        response["outputSpeech"] = {"type": "PlainText", "text": text}
    if link_account:
        response["card"] = {"type": "LinkAccount"}
    if not end and text is not None:
        response["reprompt"] = {
            "outputSpeech": {"type": "PlainText", "text": "What would you like?"}
        }
    return {"version": "1.0", "sessionAttributes": {}, "response": response}


@dataclass
class Caller:
    alexa_user_id: str
    alexa_app_id: str
    link: AlexaLink | None


def _system(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    context = envelope.get("context")
    system = context.get("System") if isinstance(context, Mapping) else None
    if isinstance(system, Mapping):
        return system
    session = envelope.get("session")  # older envelopes: the same facts under "session"
    return session if isinstance(session, Mapping) else {}


def _ids(envelope: Mapping[str, Any]) -> tuple[str, str, str | None]:
    system = _system(envelope)
    user = system.get("user") if isinstance(system.get("user"), Mapping) else {}
    application = (
        system.get("application") if isinstance(system.get("application"), Mapping) else {}
    )
    assert isinstance(user, Mapping) and isinstance(application, Mapping)
    token = user.get("accessToken")
    return (
        str(user.get("userId") or ""),
        str(application.get("applicationId") or ""),
        token if isinstance(token, str) and token else None,
    )


def application_allowed(settings: Settings, envelope: Mapping[str, Any]) -> bool:
    allowed = {s.strip() for s in settings.alexa_skill_ids.split(",") if s.strip()}
    return not allowed or _ids(envelope)[1] in allowed


async def _link(
    session: AsyncSession, settings: Settings, envelope: Mapping[str, Any]
) -> tuple[Caller, list[Change]]:
    """The caller, linked by a valid individual access token or by an earlier link."""
    alexa_user_id, app_id, token = _ids(envelope)
    existing = await repo.link_of_user(session, alexa_user_id) if alexa_user_id else None
    if token is None or not alexa_user_id:
        return Caller(alexa_user_id, app_id, existing), []
    try:
        principal = await authenticate(session, settings, f"Bearer {token}")
    except ApiError:
        return Caller(alexa_user_id, app_id, None), []  # a stale token links nobody
    if principal.kind is not PrincipalKind.INDIVIDUAL or principal.individual_id is None:
        return Caller(alexa_user_id, app_id, None), []  # never an API key in a device's hands
    org, individual = principal.require_organization(), principal.individual_id
    if existing is not None and (existing.organization_id, existing.individual_id) == (
        org,
        individual,
    ):
        return Caller(alexa_user_id, app_id, existing), []
    if existing is not None:
        await repo.unlink_user(session, existing)
        await session.flush()
    link = AlexaLink(
        id=uuid.uuid4(),
        organization_id=org,
        individual_id=individual,
        alexa_user_id=alexa_user_id,
        alexa_app_id=app_id,
    )
    session.add(link)
    for reminder in await repo.reminders_of(session, org, individual):
        if not reminder.synced_to_alexa or reminder.alexa_user_id != alexa_user_id:
            reminder.sync_attempts = 0
            reminder.synced_to_alexa = False
            reminder.sync_version += 1
            await schedule_sync(session, reminder)
    linked = change(
        "individuals",
        individual,
        "alexa-linked",
        audience=(individual,),
        organization_id=org,
        data={"link-id": str(link.id)},
    )
    return Caller(alexa_user_id, app_id, link), [linked]


def _when(instant: datetime, zone: str) -> str:
    local = instant.astimezone(ZoneInfo(zone))
    hour = local.strftime("%I").lstrip("0") or "12"
    return f"{local.strftime('%A')} at {hour}:{local.strftime('%M %p')}"


def _upcoming(reminders: Sequence[AskReminder]) -> list[tuple[datetime, AskReminder]]:
    now = utcnow()
    due: list[tuple[datetime, AskReminder]] = []
    for reminder in reminders:
        upcoming = next_occurrences(
            reminder.reminder_time_local,
            reminder.tz_info,
            reminder.reminder_rrule,
            after=now,
            count=1,
        )
        if upcoming:
            due.append((upcoming[0], reminder))
    due.sort(key=lambda pair: (pair[0], pair[1].name))
    return due


async def _reminders_speech(session: AsyncSession, link: AlexaLink, *, only_next: bool) -> str:
    due = _upcoming(await repo.reminders_of(session, link.organization_id, link.individual_id))
    if not due:
        return "You have no upcoming reminders."
    if only_next:
        when, reminder = due[0]
        return f"Your next reminder is {reminder.name}, {_when(when, reminder.tz_info)}."
    spoken = [f"{r.name}, {_when(w, r.tz_info)}" for w, r in due[:MAX_SPOKEN_REMINDERS]]
    count = len(due)
    head = f"You have {count} reminder{'s' if count != 1 else ''}. "
    return head + ". ".join(spoken) + "."


def _messages(count: int) -> str:
    return f"{count} new message{'s' if count != 1 else ''}"


def _spoken_list(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _spoken_text(text: str) -> str:
    words = " ".join(text.split())
    if not words:
        return "a message without text"
    if len(words) > MAX_READ_CHARS:
        words = words[:MAX_READ_CHARS].rsplit(" ", 1)[0] + " ..."
    return words if words[-1] in ".!?" else words + "."


async def _messages_speech(session: AsyncSession, link: AlexaLink) -> str:
    """How many unread messages and from whom; their text only where the organization set
    ``alexa-read-message-text``."""
    org, me = link.organization_id, link.individual_id
    authors = await repo.unread_by_author(session, org, me)
    total = sum(a.count for a in authors)
    if total == 0:
        return "You have no new messages from your care team."
    head = f"You have {_messages(total)} from your care team"
    if await get_preference(session, org, READ_TEXT_PREFERENCE):
        unread = await repo.unread_messages(session, org, me, limit=MAX_READ_MESSAGES)
        names = await repo.spoken_names(session, org, {m.author_id for m in unread if m.author_id})
        read = [
            f"From {names.get(m.author_id, 'your care team') if m.author_id else 'your care team'}"
            f": {_spoken_text(m.text)}"
            for m in unread
        ]
        left = total - len(unread)
        tail = f" {_messages(left).replace(' new', ' more')} in the app." if left > 0 else ""
        return f"{head}. " + " ".join(read) + tail
    shown = authors[:MAX_SPOKEN_AUTHORS]
    names = await repo.spoken_names(session, org, {a.author_id for a in shown if a.author_id})
    senders = [
        names.get(a.author_id, "your care team") if a.author_id else "your care team" for a in shown
    ]
    if len(authors) == 1:
        return f"{head}, from {senders[0]}. Please open the app to read them."
    who = _spoken_list([f"{a.count} from {name}" for a, name in zip(shown, senders, strict=True)])
    if len(authors) > len(shown):
        who += f", and {sum(a.count for a in authors[len(shown) :])} from others"
    return f"{head}: {who}. Please open the app to read them."


async def _subscription_changed(
    session: AsyncSession, caller: Caller, envelope: Mapping[str, Any]
) -> list[Change]:
    """Create, update or remove the caller's subscription to proactive events."""
    link = caller.link
    if link is None or not caller.alexa_app_id:
        return []  # nobody Courier knows: nothing to keep (Alexa needs only the 200)
    body = envelope["request"].get("body")
    events = []
    if isinstance(body, Mapping) and isinstance(body.get("subscriptions"), list):
        events = sorted(
            {
                str(item["eventName"])[:255]
                for item in body["subscriptions"]
                if isinstance(item, Mapping) and item.get("eventName")
            }
        )
    org = link.organization_id
    held = await repo.subscription_of(session, org, caller.alexa_app_id, caller.alexa_user_id)
    if not events:
        if held is None:
            return []
        await session.delete(held)
        verb, ident = "deleted", held.id
    elif held is None:
        held = AskSubscription(
            id=uuid.uuid4(),
            organization_id=org,
            skill_id=skill_id_of(caller.alexa_app_id),
            alexa_app_id=caller.alexa_app_id,
            alexa_user_id=caller.alexa_user_id,
            user_id=link.individual_id,
            registered_events=events,
        )
        session.add(held)
        verb, ident = "created", held.id
    else:
        held.registered_events = events
        held.user_id = link.individual_id
        verb, ident = "updated", held.id
    return [
        change(
            "ask-subscriptions",
            ident,
            verb,
            fields=("registered-events",),
            audience=(link.individual_id,),
            organization_id=org,
        )
    ]


async def _token_arrived(session: AsyncSession, caller: Caller) -> None:
    """A request brought the user's API token (kept by ``answer``), e.g. the skill message
    Courier sent to get one: sync now the reminders that wait for it (a fresh job; the delayed
    one finds them done). Removals from the device of a purged individual retry by themselves.
    """
    link = caller.link
    if link is None:
        return
    for reminder in await repo.reminders_of(session, link.organization_id, link.individual_id):
        waiting = (reminder.sync_error or "").startswith(f"{AWAITING_USER_TOKEN}:")
        if not reminder.synced_to_alexa and waiting:
            reminder.sync_attempts = 0
            reminder.sync_version += 1  # a job of its own (the queued one is keyed by version)
            await schedule_sync(session, reminder)


async def _skill_disabled(session: AsyncSession, caller: Caller) -> list[Change]:
    """The person disabled the skill: forget the link, their subscriptions and API token."""
    if caller.alexa_user_id:
        await forget_user(session, caller.alexa_user_id)
    link = caller.link
    if link is None:
        return []
    held = await repo.subscription_of(
        session, link.organization_id, caller.alexa_app_id, caller.alexa_user_id
    )
    changes = []
    if held is not None:
        await session.delete(held)
        changes.append(
            change("ask-subscriptions", held.id, "deleted", organization_id=held.organization_id)
        )
    await repo.unlink_user(session, link)
    changes.append(
        change(
            "individuals",
            link.individual_id,
            "alexa-unlinked",
            audience=(link.individual_id,),
            organization_id=link.organization_id,
        )
    )
    return changes


async def answer(
    session: AsyncSession, settings: Settings, envelope: Mapping[str, Any]
) -> dict[str, Any]:
    """The response to a verified skill request; records what it changed (not committed)."""
    request = envelope["request"]
    kind = str(request.get("type") or "")
    caller, changes = await _link(session, settings, envelope)
    link = caller.link
    access = access_of(envelope)
    keeps_token = link is not None or kind == MESSAGE_RECEIVED
    if access is not None and caller.alexa_user_id and kind != SKILL_DISABLED and keeps_token:
        await remember_access(session, settings, caller.alexa_user_id, access)
        await _token_arrived(session, caller)
    result: dict[str, Any]
    if kind == MESSAGE_RECEIVED:
        result = respond(None)  # acknowledged: Alexa stops delivering it
    elif kind == SUBSCRIPTION_CHANGED:
        changes += await _subscription_changed(session, caller, envelope)
        result = respond(None)
    elif kind == SKILL_DISABLED:
        changes += await _skill_disabled(session, caller)
        result = respond(None)
    elif kind.startswith("AlexaSkillEvent.") or kind == "SessionEndedRequest":
        result = respond(None)
    elif kind not in ("LaunchRequest", "IntentRequest"):
        result = respond("Sorry, I can't help with that.")
    elif link is None:
        result = respond(LINK_PROMPT, link_account=True)
    elif kind == "LaunchRequest":
        result = respond(await _reminders_speech(session, link, only_next=True), end=False)
    else:
        intent = request.get("intent")
        name = str(intent.get("name") or "") if isinstance(intent, Mapping) else ""
        if name == REMINDERS_INTENT:
            result = respond(await _reminders_speech(session, link, only_next=False))
        elif name == MESSAGES_INTENT:
            result = respond(await _messages_speech(session, link))
        elif name == ACKNOWLEDGE_INTENT:
            changes.append(
                change(
                    "individuals",
                    link.individual_id,
                    "alexa-acknowledged",
                    audience=(link.individual_id,),
                    organization_id=link.organization_id,
                    audited=False,
                )
            )
            result = respond("Thank you. I've let your care team know.")
        elif name == "AMAZON.HelpIntent":
            result = respond(
                "You can ask: what are my reminders, or: read my new messages.", end=False
            )
        elif name in ("AMAZON.StopIntent", "AMAZON.CancelIntent"):
            result = respond("Goodbye.")
        else:
            result = respond("Sorry, I didn't get that. You can ask: what are my reminders.")
    if changes:
        actor = (
            Actor("individual-token", str(link.individual_id)) if link is not None else ALEXA_ACTOR
        )
        write_changes(session, changes, actor=actor, request_id=None)
    return result


__all__ = ["answer", "application_allowed", "respond", "skill_id_of"]
