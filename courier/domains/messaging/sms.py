"""The SMS path of a channel (the channel bridge): the channel's participant is reached on their
phone, from the channel's text number, and answers from it.

- **Who**: the channel's participant is its one subscriber whose account type is
  ``participant`` (none, or several: nobody is texted); their phone is their login's (the user
  whose primary individual they are), else their own.
- **When** (``can-enable-sms``): the channel's text number is an active number of the
  organization, the participant has a phone, and an SMS consent of that phone is ``accepted``
  (``/v1/user-consents/``). ``with-sms`` is ``set-sms``'s switch while that holds: a STOP
  (which revokes the consent) ends it at once.
- **Turning it on** (``set-sms`` ``active: true``) texts the initial message (the request's
  ``initial-message-js`` for the participant's language or its ``initial-message``, else the
  channel's, else the organization's ``initial-sms-message``) through the texts send path: a
  text accepted in the request's transaction, sent by a job.
- **Provider posts**: a post by a provider in a channel whose path is on enqueues
  :data:`POST_JOB` (in the posting transaction); the job checks the path and the consent again
  and queues the text: the message, or where the channel (``phi-safe``) or the organization
  (``sms-phi-safe``) asks for it, a neutral line with the organization's ``sms-message-link``.
  A message too long for 10 segments is texted that way too.
- **Replies**: a text received on the channel's number from the participant's phone (that is
  not STOP/HELP, a consent answer ...) is posted into the channel as the participant's message
  (source ``sms``). Received texts are applied once per carrier message id and in the order
  they arrived (:mod:`courier.domains.texts.jobs`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.errors import ApiError, ErrorItem
from courier.domains.messaging import repository as repo
from courier.domains.messaging.locales import choose_text_key
from courier.domains.messaging.posting import AuditActor, NewPost, Posted, on_posted, post_messages
from courier.domains.messaging.repository import CHUNK
from courier.domains.org_preferences.service import get_preference
from courier.domains.text_accounts import repository as accounts
from courier.domains.texts.inbound import BRIDGE_HOOKS
from courier.domains.texts.rules import MAX_SEGMENTS, count_segments
from courier.domains.texts.service import TextRefusedError, queue_text
from courier.jobs import enqueue
from courier.models.individual import Individual
from courier.models.messaging import MessagingChannel, MessagingMessage
from courier.models.text import OutboundText
from courier.models.text_account import TextAccountNumber, TextReceiveLog
from courier.models.user import User

SOURCE = "sms"  # the source of a message that arrived as a text
PURPOSE = "bridge"  # the purpose of a text the bridge sends
POST_JOB = "messaging.sms-post"
NEUTRAL_LINE = "You have a new message from your care team."


@dataclass(frozen=True)
class Participant:
    """The person a channel's SMS path texts."""

    individual_id: uuid.UUID
    phone: str | None
    locale: str | None


def pick_participant(people: Iterable[tuple[Any, Any]]) -> Participant | None:
    """The channel's participant among its subscribers (each an Individual, or a Core row of
    its columns, with their login's User or row, if any): the one whose account type is
    ``participant``; None when there is none, or several."""
    found = [(i, u) for i, u in people if i.account_type == "participant"]
    if len(found) != 1:
        return None
    individual, user = found[0]
    phone = user.phone if user is not None and user.phone else individual.phone
    locale = individual.locale or (user.locale if user is not None else None)
    return Participant(individual.id, phone, locale)


@dataclass(frozen=True)
class SmsState:
    """What the SMS path of one channel can do, from the state of things now."""

    text_number_id: uuid.UUID | None  # as set on the channel
    number: TextAccountNumber | None  # the number, while it is one of the organization
    participant: Participant | None
    consented: bool  # an accepted SMS consent of the participant's phone

    @property
    def refusal(self) -> tuple[str, str] | None:
        """Why the path cannot work (code, detail), or None when it can."""
        if self.text_number_id is None:
            return "no-text-number", "the channel has no text number (text-number-id) to send from"
        if self.number is None:
            return "no-text-number", "the channel's text number is no number of the organization"
        if self.number.status != "active" or not self.number.phone_number:
            return (
                "text-number-not-active",
                f"the channel's text number is {self.number.status}, not active",
            )
        if self.participant is None:
            return (
                "no-participant",
                "the channel needs exactly one subscriber whose account type is participant "
                "to text",
            )
        if not self.participant.phone:
            return "no-phone", "the channel's participant has no phone number to text"
        if not self.consented:
            return (
                "no-consent",
                "the participant has not accepted texts: request an SMS consent of their phone "
                "(POST /v1/user-consents/) and wait for their YES",
            )
        return None

    @property
    def can_enable(self) -> bool:
        return self.refusal is None

    @property
    def phone(self) -> str:
        assert self.participant is not None and self.participant.phone
        return self.participant.phone


# --- reading the state ---------------------------------------------------------------------------


async def load_participants(
    session: AsyncSession, org: uuid.UUID, channel_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Participant | None]:
    """Each channel's participant (two statements per 500 channels at most)."""
    people: dict[uuid.UUID, dict[uuid.UUID, tuple[Individual, User | None]]] = defaultdict(dict)
    wanted = list(dict.fromkeys(channel_ids))
    for start in range(0, len(wanted), CHUNK):
        rows = await repo.participant_rows(session, org, wanted[start : start + CHUNK])
        for channel_id, individual, user in rows:
            people[channel_id].setdefault(individual.id, (individual, user))
    return {ident: pick_participant(people[ident].values()) for ident in wanted}


async def consented_phones(
    session: AsyncSession, org: uuid.UUID, phones: Iterable[str]
) -> set[str]:
    """The phones among ``phones`` with an accepted SMS consent."""
    wanted = sorted(set(phones))
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        found |= await repo.accepted_sms_consents(session, org, wanted[start : start + CHUNK])
    return found


async def channel_states(
    session: AsyncSession,
    org: uuid.UUID,
    channels: Sequence[Any],
    participants: Mapping[uuid.UUID, Participant | None],
) -> dict[uuid.UUID, SmsState]:
    """The SMS state of each channel, given their participants: at most two statements for a
    page (numbers, consents), none when no channel has a text number."""
    number_ids = sorted({c.text_number_id for c in channels if c.text_number_id is not None})
    numbers: dict[uuid.UUID, TextAccountNumber] = {}
    consented: set[str] = set()
    if number_ids:
        numbers = await repo.text_numbers(session, org, number_ids)
        phones = {
            p.phone
            for c in channels
            if c.text_number_id is not None
            and (p := participants.get(c.id)) is not None
            and p.phone
        }
        consented = await consented_phones(session, org, phones)
    states: dict[uuid.UUID, SmsState] = {}
    for channel in channels:
        participant = participants.get(channel.id)
        states[channel.id] = SmsState(
            text_number_id=channel.text_number_id,
            number=numbers.get(channel.text_number_id) if channel.text_number_id else None,
            participant=participant,
            consented=bool(participant and participant.phone and participant.phone in consented),
        )
    return states


async def channel_state(
    session: AsyncSession, org: uuid.UUID, channel: MessagingChannel
) -> SmsState:
    participants = await load_participants(session, org, [channel.id])
    return (await channel_states(session, org, [channel], participants))[channel.id]


async def require_text_number(
    session: AsyncSession, org: uuid.UUID, number_id: uuid.UUID, pointer: str
) -> TextAccountNumber:
    """A text number of the organization named in a body, else 404 pointing at it."""
    found = await accounts.number(session, org, number_id)
    if found is None:
        raise ApiError(
            404,
            [
                ErrorItem(
                    f"text-number-id names no text number of this organization: {number_id}",
                    "not-found",
                    pointer=pointer,
                )
            ],
        )
    return found


# --- what is texted ------------------------------------------------------------------------------


def initial_text(
    sources: Sequence[tuple[Mapping[str, str] | None, str | None]],
    locale: str | None,
    default: str,
) -> str:
    """The first of ``sources`` (localized texts, plain text) that has a text: the localized
    one for ``locale`` if any, else the plain one; else ``default``."""
    for localized, plain in sources:
        key = choose_text_key(localized or {}, locale)
        if key is not None:
            return (localized or {})[key]
        if plain and plain.strip():
            return plain
    return default


async def neutral_text(session: AsyncSession, org: uuid.UUID, channel_id: uuid.UUID) -> str:
    """A text that says there is a message, and where to read it: nothing of its content."""
    template = await get_preference(session, org, "sms-message-link")
    link = template.replace("{channel-id}", str(channel_id)).strip()
    if link:
        return f"{NEUTRAL_LINE} Read it here: {link}"
    return f"{NEUTRAL_LINE} Open the app to read it."


async def phi_safe(session: AsyncSession, org: uuid.UUID, channel: MessagingChannel) -> bool:
    if channel.sms_phi_safe is not None:
        return channel.sms_phi_safe
    return await get_preference(session, org, "sms-phi-safe")


async def post_text(
    session: AsyncSession, org: uuid.UUID, channel: MessagingChannel, message: MessagingMessage
) -> str:
    """What a provider's post becomes on the participant's phone."""
    if await phi_safe(session, org, channel):
        return await neutral_text(session, org, channel.id)
    if count_segments(message.message).segments > MAX_SEGMENTS:
        return await neutral_text(session, org, channel.id)  # too long to text: the app has it
    return message.message


async def queue_channel_text(
    session: AsyncSession,
    settings: Settings,
    channel: MessagingChannel,
    state: SmsState,
    message: str,
    *,
    created_by: uuid.UUID | None = None,
) -> OutboundText:
    """Accept a text of the channel to its participant (the texts send path: a job sends it).
    Raises TextRefusedError (opted out, a destination not allowed, too long)."""
    assert state.number is not None and state.can_enable
    account = await accounts.account(session, channel.organization_id, state.number.account_id)
    assert account is not None  # a number belongs to its account
    return await queue_text(
        session,
        settings,
        account=account,
        num=state.number,
        target=state.phone,
        message=message,
        purpose=PURPOSE,
        created_by=created_by,
        values={"channel_id": channel.id},
    )


# --- provider posts ------------------------------------------------------------------------------


@on_posted
async def enqueue_post_texts(
    session: AsyncSession, organization_id: uuid.UUID, posted: Sequence[Posted]
) -> None:
    """A provider's post in a channel whose SMS path is on: a job texts it. No statement at
    all for posts in other channels."""
    candidates = [
        p.message
        for p in posted
        if p.with_sms and p.message.individual_id is not None and p.message.source != SOURCE
    ]
    if not candidates:
        return
    authors = {m.individual_id for m in candidates}
    providers = await repo.providers_among(session, organization_id, authors)
    for message in candidates:
        if message.individual_id in providers:
            await enqueue(
                session,
                POST_JOB,
                {"message_id": message.id},
                organization_id=organization_id,
                dedupe_key=f"{POST_JOB}:{message.id}",
            )


async def text_post(
    session: AsyncSession, settings: Settings, org: uuid.UUID, message_id: uuid.UUID
) -> dict[str, Any]:
    """The job's work: text a provider's post to the channel's participant, if the path is on
    and the participant consents now. Runs in the job's transaction: the text is accepted
    exactly when the job completes, so a repeated job never texts twice."""
    message = await repo.find_message(session, org, message_id)
    if message is None or message.removed or message.draft:
        return {"skipped": "message"}
    channel = await repo.find_channel(session, org, message.channel_id)
    if channel is None or not channel.with_sms:
        return {"skipped": "sms-off"}
    state = await channel_state(session, org, channel)
    refusal = state.refusal
    if refusal is not None:
        return {"skipped": refusal[0]}
    body = await post_text(session, org, channel, message)
    try:
        text = await queue_channel_text(
            session, settings, channel, state, body, created_by=message.user_id
        )
    except TextRefusedError:
        return {"skipped": "refused"}  # opted out, or a destination not allowed: no text
    return {"text-id": str(text.id)}


# --- replies -------------------------------------------------------------------------------------


async def _open_channel(
    session: AsyncSession, num: TextAccountNumber, phone: str, candidates: Sequence[uuid.UUID]
) -> tuple[uuid.UUID, Participant] | None:
    """The first of ``candidates`` whose path is on at this number, not archived, and whose
    participant has this phone."""
    if not candidates:
        return None
    org = num.organization_id
    found = await repo.open_sms_channels(session, org, num.id, candidates)
    if not found:
        return None
    participants = await load_participants(session, org, sorted(found))
    for channel_id in candidates:
        participant = participants.get(channel_id)
        if channel_id in found and participant is not None and participant.phone == phone:
            return channel_id, participant
    return None


async def post_reply(
    session: AsyncSession,
    settings: Settings,
    num: TextAccountNumber,
    sender: str,
    body: str,
    log: TextReceiveLog,
) -> bool:
    """A text from a channel's participant at its number: posted into the channel as theirs
    (the channel the number last texted them for, else their most recently active one on the
    number). ``receive_text`` calls this once per carrier message, in arrival order."""
    if not body.strip():
        return False  # a picture alone: nothing to post
    chosen = None
    for finder in (repo.texted_channels, repo.channels_of_phone):
        chosen = await _open_channel(session, num, sender, await finder(session, num, sender))
        if chosen is not None:
            break
    if chosen is None:
        return False
    channel_id, participant = chosen
    post = NewPost(
        channel_id=channel_id,
        author_id=participant.individual_id,
        text=body,
        source=SOURCE,
        auto_ack=False,  # written on their phone: what they have not read in the app stays unread
    )
    actor = AuditActor("system", "sms-bridge", None, ("message",))
    await post_messages(session, num.organization_id, [post], actor=actor)
    accounts.add_log(session, num, f"posted a text from {sender} into a messaging channel")
    return True


if post_reply not in BRIDGE_HOOKS:
    BRIDGE_HOOKS.append(post_reply)
