"""What a text received on one of our numbers does, in this order:

1. it is recorded (``text-receive-logs``; a repeated carrier message id is ignored) and, if
   the number has ``forward-to``, forwarded there;
2. a compliance keyword acts: STOP (STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) opts the sender
   out of this number, or of every number where the account's ``opt-out-scope`` is
   ``organization``, and revokes or declines their SMS consents; START (UNSTOP, YES) from
   someone opted out opts them back in; HELP (INFO) is answered with the account's help text;
3. an answer to a pending consent request (YES-like accepts, NO declines, anything else gets
   the ``invalid-response`` message);
4. a reply to the newest text this number sent the sender: posted to its ``callback-url``
   (matched against ``expected-responses``; ``callback-one-off`` closes after the first);
5. channel bridge hooks (a messaging channel texting this participant);
6. a sender nobody texted: the number's ``events.unknown-number`` action (``open-channel``:
   the openers of :data:`UNKNOWN_NUMBER_OPENERS`, which decide themselves whether the sender
   is unknown).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.domains.text_accounts import repository as accounts
from courier.domains.texts import repository as repo
from courier.domains.texts.rules import (
    ACCEPT_WORDS,
    DECLINE_WORDS,
    Keyword,
    keyword_of,
    matches_expected,
    normalize_reply,
)
from courier.domains.texts.service import TextRefusedError, owe_callback, publish_text, queue_text
from courier.events import publish
from courier.models.text_account import TextAccount, TextAccountNumber, TextReceiveLog
from courier.models.user_consent import UserConsent, UserConsentEvent

DEFAULT_HELP = "Reply STOP to stop receiving texts, START to receive them again."
STOP_REPLY = (
    "You are unsubscribed and will receive no more texts from this number. "
    "Reply START to resubscribe."
)
START_REPLY = "You are subscribed again. Reply STOP to stop, HELP for help."

# A bridge hook: (session, settings, number, sender, body, log) -> True when it took the text.
BridgeHook = Callable[
    [AsyncSession, Settings, TextAccountNumber, str, str, TextReceiveLog], Awaitable[bool]
]
BRIDGE_HOOKS: list[BridgeHook] = []


async def reply_with(
    session: AsyncSession,
    settings: Settings,
    account: TextAccount,
    num: TextAccountNumber,
    target: str,
    message: str,
    purpose: str,
    *,
    check_opt_out: bool = True,
) -> None:
    with contextlib.suppress(TextRefusedError):  # e.g. a destination not allowed: no answer
        await queue_text(
            session,
            settings,
            account=account,
            num=num,
            target=target,
            message=message,
            purpose=purpose,
            urgent=True,  # an answer to what the person just wrote
            check_opt_out=check_opt_out,
        )


async def receive_text(
    session: AsyncSession,
    settings: Settings,
    num: TextAccountNumber,
    *,
    sender: str,
    body: str,
    sid: str,
) -> TextReceiveLog | None:
    org = num.organization_id
    account = await accounts.account(session, org, num.account_id)
    if account is None:
        return None
    log = TextReceiveLog(
        id=uuid.uuid4(),
        organization_id=org,
        number_id=num.id,
        sender=sender,
        to=num.phone_number or "",
        message=body,
        sid=sid,
    )
    try:
        async with session.begin_nested():
            session.add(log)
            await session.flush()
    except IntegrityError:
        return None  # this carrier message was already received
    accounts.add_log(session, num, f"received a text from {sender}")
    publish(
        session,
        organization_id=org,
        resource_type="text-receive-logs",
        verb="created",
        resource_id=log.id,
        data={"id": str(log.id), "number-id": str(num.id)},
    )
    if num.forward_to and num.forward_to != sender:
        await reply_with(
            session,
            settings,
            account,
            num,
            num.forward_to,
            f"From {sender}: {body}"[:1600],
            "forward",
        )
        accounts.add_log(session, num, f"forwarded to {num.forward_to}")

    keyword = keyword_of(body)
    consent = await repo.pending_consent(session, org, sender)
    if keyword is Keyword.STOP:
        scope = None if account.opt_out_scope == "organization" else num.id
        await repo.add_opt_out(session, org, sender, scope, normalize_reply(body))
        await _end_consents(session, org, sender, "stop")
        await reply_with(
            session, settings, account, num, sender, STOP_REPLY, "keyword", check_opt_out=False
        )
        log.outcome = "opt-out"
        return log
    if keyword is Keyword.HELP:
        await reply_with(
            session,
            settings,
            account,
            num,
            sender,
            account.help_text or DEFAULT_HELP,
            "keyword",
            check_opt_out=False,
        )
        log.outcome = "help"
        return log
    if consent is not None:
        await _answer_consent(session, settings, account, num, consent, body)
        if keyword is Keyword.START:
            await repo.remove_opt_outs(session, org, sender, num.id)
        log.outcome = f"consent-{consent.state}"
        return log
    if keyword is Keyword.START and await repo.opted_out(session, org, sender, num.id):
        # START/UNSTOP/YES opt back in; from someone not opted out, YES is just a reply.
        await repo.remove_opt_outs(session, org, sender, num.id)
        await reply_with(session, settings, account, num, sender, START_REPLY, "keyword")
        log.outcome = "opt-in"
        return log

    text = await repo.last_text_to(session, org, num.id, sender)
    if text is not None and text.callback_url and not text.replies_closed:
        matched = matches_expected(body, text.expected_responses or [])
        text.reply_count += 1
        await owe_callback(
            session,
            text,
            text.callback_url,
            {
                "type": "texts.reply",
                "from": sender,
                "to": num.phone_number,
                "message": body,
                "expected": matched is not None if text.expected_responses else None,
                "matched-response": matched,
                "unexpected": bool(text.expected_responses) and matched is None,
            },
        )
        if text.callback_one_off:
            text.replies_closed = True
        log.text_id = text.id
        publish_text(session, text, "replied", **{"receive-log-id": str(log.id)})
        log.outcome = "reply"
    for hook in BRIDGE_HOOKS:
        if await hook(session, settings, num, sender, body, log):
            log.outcome = log.outcome or "channel"
            return log
    if log.outcome is None:
        await _unknown_number(session, settings, account, num, sender, body, log)
    return log


async def _unknown_number(
    session: AsyncSession,
    settings: Settings,
    account: TextAccount,
    num: TextAccountNumber,
    sender: str,
    body: str,
    log: TextReceiveLog,
) -> None:
    rule = dict((num.events or {}).get("unknown-number") or {})
    action = rule.get("action", "ignore")
    if action == "open-channel":
        # Before the "never talked" check: an opener must see the channel that a first text
        # of the same phone, applied at the same time, has just opened (see the hook's type).
        for opener in UNKNOWN_NUMBER_OPENERS:
            if await opener(session, settings, num, sender, body, log):
                return
    if await repo.has_talked(session, num.organization_id, num.id, sender):
        return
    log.outcome = f"unknown-{action}"
    if action == "auto-reply" and rule.get("message"):
        await reply_with(session, settings, account, num, sender, rule["message"], "auto-reply")
    elif action == "forward" and rule.get("forward-to"):
        await reply_with(
            session,
            settings,
            account,
            num,
            rule["forward-to"],
            f"From {sender}: {body}"[:1600],
            "forward",
        )
    elif action == "open-channel":
        # No opener took it: the phone is a known person's. Nothing is opened or texted; their
        # texts reach the channels the bridge has for them.
        accounts.add_log(session, num, f"unknown number {sender}: open-channel, a known phone")
        return
    accounts.add_log(session, num, f"unknown number {sender}: {action}")


# open-channel: hooks that open a messaging channel with a new individual (the channel bridge,
# courier.domains.messaging.sms_openings). Called with the same arguments as a BridgeHook for a
# text nothing else took, on a number whose action is open-channel, *before* the "never
# talked" check: the opener decides whether the sender is unknown, and returns True when it
# took the text (opened a channel for it, or posted it into the one a concurrent text of the
# same phone opened). It sends the rule's message itself.
UNKNOWN_NUMBER_OPENERS: list[BridgeHook] = []


# --- consents -----------------------------------------------------------------------------


def consent_changed(session: AsyncSession, consent: UserConsent, state: str, reason: str) -> None:
    consent.state = state
    from courier.core.time import utcnow

    consent.last_modified_at = utcnow()
    session.add(
        UserConsentEvent(
            organization_id=consent.organization_id,
            consent_id=consent.id,
            state=state,
            reason=reason,
        )
    )
    publish(
        session,
        organization_id=consent.organization_id,
        resource_type="user-consents",
        verb=state,
        resource_id=consent.id,
        data={"id": str(consent.id), "state": state},
    )


async def _end_consents(session: AsyncSession, org: uuid.UUID, phone: str, reason: str) -> None:
    for consent in await repo.open_consents(session, org, phone):
        consent_changed(
            session, consent, "declined" if consent.state == "pending" else "revoked", reason
        )


async def _answer_consent(
    session: AsyncSession,
    settings: Settings,
    account: TextAccount,
    num: TextAccountNumber,
    consent: UserConsent,
    body: str,
) -> None:
    word = normalize_reply(body)
    messages = dict((consent.args or {}).get("messages") or {})
    if word in ACCEPT_WORDS:
        consent_changed(session, consent, "accepted", "reply")
        if messages.get("accept"):
            await reply_with(
                session, settings, account, num, consent.target_id, messages["accept"], "consent"
            )
    elif word in DECLINE_WORDS:
        consent_changed(session, consent, "declined", "reply")
    else:
        session.add(
            UserConsentEvent(
                organization_id=consent.organization_id,
                consent_id=consent.id,
                state="pending",
                reason="invalid-response",
            )
        )
        if messages.get("invalid-response"):
            await reply_with(
                session,
                settings,
                account,
                num,
                consent.target_id,
                messages["invalid-response"],
                "consent",
            )
