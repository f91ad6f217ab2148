"""``open-channel``: a text from a phone nobody knows opens a messaging channel with a new
individual (a number's ``events.unknown-number`` ``{"action": "open-channel",
"individual-group-id": ..., "message"?}``; docs/SMS.md, "Unknown numbers").

For a text that no keyword, consent, reply callback or channel took, from a phone that has
never talked with the number and that is no individual's or user's of the organization, in the
inbound job's transaction:

1. a participant individual is made for the phone (first name ``SMS``, last name the phone:
   a placeholder that says where it came from; the phone as their ``phone``);
2. a channel is created the one way channels are (:func:`channels.create_channels`): the new
   individual and the members of the rule's group (its leaders as admins), the group as the
   channel's ``individual-group-id``, the number as its ``text-number-id`` and its SMS path
   switched on, so their next texts are posted by the bridge;
3. the text is posted into it as the new individual's message (source ``sms``);
4. the rule's ``message``, if any, is texted back to them.

Exactly once per phone and organization: a replayed webhook is one received text already
(:mod:`courier.domains.texts.inbound`), and two first texts applied at once race for the
unique row of :class:`UnknownNumberOpening`: the loser rolls its individual and channel back
and posts its text into the winner's channel through the bridge.

Providers' posts reach the new individual's phone only once an SMS consent of that phone is
accepted (the bridge's rule): the individual has no login to request one for until staff give
them one (docs/SMS.md).
"""

from __future__ import annotations

import contextlib
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.domains.messaging import repository as repo
from courier.domains.messaging.channels import NewChannel, channel_change, create_channels
from courier.domains.messaging.posting import AuditActor, NewPost, post_messages
from courier.domains.messaging.sms import SOURCE, post_reply
from courier.domains.text_accounts import repository as accounts
from courier.domains.texts import repository as texts
from courier.domains.texts.inbound import UNKNOWN_NUMBER_OPENERS, reply_with
from courier.jsonapi.changes import Actor, change, write_changes
from courier.models.individual import Individual
from courier.models.text_account import TextAccountNumber, TextReceiveLog, UnknownNumberOpening

FIRST_NAME = "SMS"  # the new individual's placeholder first name; the last is the phone
ACTOR = Actor("system", "sms-bridge")
AUDIT = AuditActor(ACTOR.type, ACTOR.id, None, ("message",))
OUTCOME = "unknown-open-channel"


async def _group(session: AsyncSession, org: uuid.UUID, num: TextAccountNumber) -> uuid.UUID | None:
    """The rule's group while it is one of the organization: checked when the number is
    written, read again here (the channel's foreign key must hold; events written before the
    rule needed a group name none)."""
    rule = (num.events or {}).get("unknown-number") or {}
    ident = None
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        ident = uuid.UUID(str(rule.get("individual-group-id")))
    if ident is None:
        return None
    return await repo.existing_group_id(session, org, ident)


async def open_channel(
    session: AsyncSession,
    settings: Settings,
    num: TextAccountNumber,
    sender: str,
    body: str,
    log: TextReceiveLog,
) -> bool:
    """Open a channel with a new individual for an unknown phone's text (see the module).
    True when the text was taken: a channel opened, or the text posted into the one opened for
    this phone; False when the phone is not unknown (it talked with the number, or it is a
    known person's), or its opening's channel no longer takes texts."""
    org = num.organization_id
    if await repo.opening_of(session, org, sender) is not None:
        # Opened by an earlier text (e.g. one applied at the same time, committed since the
        # bridge looked): the bridge posts into its channel if that still takes texts.
        return await _posted_by_bridge(session, settings, num, sender, body, log)
    if await texts.has_talked(session, org, num.id, sender) or await repo.known_phone(
        session, org, sender
    ):
        return False
    group_id = await _group(session, org, num)
    members, leaders = await repo.group_members(session, org, group_id) if group_id else ([], set())
    individual = Individual(
        id=uuid.uuid4(),
        organization_id=org,
        first_name=FIRST_NAME,
        last_name=sender,
        account_type="participant",
        phone=sender,
        extended={},
    )
    new = NewChannel(
        subscribers=[individual.id, *members],
        admins=frozenset(leaders),
        individual_group_id=group_id,
        text_number_id=num.id,
        with_sms=True,
    )
    await session.flush()  # what the text did so far stays, whatever the savepoint's fate
    try:
        async with session.begin_nested():
            session.add(individual)
            await session.flush()
            subscribed = await create_channels(session, org, [new])
            session.add(
                UnknownNumberOpening(
                    organization_id=org,
                    number_id=num.id,
                    phone=sender,
                    individual_id=individual.id,
                    channel_id=new.channel_id,
                )
            )
            await session.flush()
    except IntegrityError:
        # Another text of this phone opened it first (PostgreSQL: our insert waited for its
        # commit). Anything else is no race to settle here.
        if await repo.opening_of(session, org, sender) is None:
            raise
        return await _posted_by_bridge(session, settings, num, sender, body, log)
    channel = await repo.load_channel(session, org, new.channel_id, "/data")
    write_changes(
        session,
        [
            change(
                "individuals",
                individual.id,
                "created",
                fields=["first-name", "last-name", "account-type", "phone"],
                organization_id=org,
            ),
            channel_change(
                channel,
                "created",
                subscribed[channel.id],
                ["individual-ids", "individual-group-id", "text-number-id", "with-sms"],
                {"individual-id": str(individual.id), "receive-log-id": str(log.id)},
            ),
        ],
        actor=ACTOR,
        request_id=None,
        organization_id=org,
    )
    if body.strip():  # a picture alone: the channel is opened, there is nothing to post
        post = NewPost(
            channel_id=channel.id,
            author_id=individual.id,
            text=body,
            source=SOURCE,
            auto_ack=False,
        )
        await post_messages(session, org, [post], actor=AUDIT)
    log.outcome = OUTCOME
    accounts.add_log(session, num, f"unknown number {sender}: opened a messaging channel")
    message = ((num.events or {}).get("unknown-number") or {}).get("message")
    if message:
        account = await accounts.account(session, org, num.account_id)
        if account is not None:
            await reply_with(session, settings, account, num, sender, message, "auto-reply")
    return True


async def _posted_by_bridge(
    session: AsyncSession,
    settings: Settings,
    num: TextAccountNumber,
    sender: str,
    body: str,
    log: TextReceiveLog,
) -> bool:
    if await post_reply(session, settings, num, sender, body, log):
        log.outcome = "channel"
        return True
    return False


if open_channel not in UNKNOWN_NUMBER_OPENERS:
    UNKNOWN_NUMBER_OPENERS.append(open_channel)
