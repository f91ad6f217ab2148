"""The rules of texts: which number sends, what may be sent to whom, when it leaves.

A text is accepted (201) and handed to the provider layer's delivery machine
(:mod:`courier.providers.delivery`): a ``deliveries.send`` job sends it at most once; status
callbacks move the delivery, and a hook mirrors each change onto the text, publishes
``texts.<status>`` and queues the post to ``callback-status-url``.

Refusals, in this order: an unknown or inactive number (422), more than 10 segments (400), a
destination the organization's telephony config does not allow (403, seed 001), a target that
opted out (STOP) of the sending number or of the whole organization (403 naming the opt-out).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from courier.config import Settings
from courier.core.errors import forbidden, invalid_attribute, not_found, unprocessable
from courier.core.time import format_timestamp, utcnow
from courier.domains.text_accounts import repository as accounts
from courier.domains.text_accounts.schemas import QuietHours
from courier.domains.texts import repository as repo
from courier.domains.texts.rules import (
    MAX_SEGMENTS,
    count_segments,
    destination_refusal,
    quiet_hours_end,
)
from courier.domains.texts.schemas import TextCreate
from courier.events import publish
from courier.events.webhooks import UnsafeUrlError, parse_url
from courier.jobs import enqueue
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.delivery import DeliveryEvent
from courier.models.job import Job
from courier.models.organization import Organization
from courier.models.text import OutboundText, TextCallback, TextOptOut
from courier.models.text_account import TextAccount, TextAccountNumber
from courier.providers import delivery as deliveries
from courier.providers.sms.kind import SMS

TYPE_NAME = "texts"
CALLBACK_JOB = "texts.callback"
RELEASE_JOB = "texts.release"  # a text held by quiet hours falls due
CALLBACK_RETRY_SECONDS = 0.25


# What a text is sent by: the ORM rows (internal senders: keyword answers, consents, the
# channel bridge) or what ``POST /v1/texts/`` reads in one statement (:func:`repo.sending_from`).
SendingAccountT = TextAccount | repo.SendingAccount
SendingNumberT = TextAccountNumber | repo.SendingNumber
NumberT = TypeVar("NumberT", TextAccountNumber, repo.SendingNumber)
_ACCEPTING = "texts.accepting"  # session.info: the texts being accepted, by id (see queue_text)


class TextRefusedError(Exception):
    """Why an internal send (a keyword answer, a consent message) was not queued."""


def given_number(num: NumberT | None, account_id: uuid.UUID) -> NumberT:
    """The number a text names (``number-id``), once read: 422 unless it is an active number
    of the account."""
    if num is None or num.account_id != account_id:
        raise invalid_attribute("number-id", "no such text number in this account")
    if num.status != "active":
        raise unprocessable(
            f"the text number is {num.status}, not active", "text-number-not-active"
        )
    return num


async def choose_number(
    session: AsyncSession,
    org: uuid.UUID,
    account: TextAccount,
    number_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
) -> TextAccountNumber:
    """The given number, else the user's mapped number, else the account's default."""
    if number_id is not None:
        return given_number(await accounts.number(session, org, number_id), account.id)
    if user_id is not None:
        mapped = await accounts.user_map(session, org, user_id)
        if mapped is not None:
            num = await accounts.number(session, org, mapped.number_id)
            if num is not None and num.status == "active":
                return num
    numbers = await accounts.active_numbers(session, org, account.id)
    for num in numbers:
        if num.phone_number == account.phone_number:
            return num
    if numbers:
        return numbers[0]
    raise unprocessable("the text account has no active number to send from", "no-text-number")


async def due_time(session: AsyncSession, account: SendingAccountT, *, urgent: bool) -> datetime:
    """When the text falls due: now, or when the account's quiet hours end (unless urgent)."""
    now = utcnow()
    if account.quiet_hours and not urgent:
        if isinstance(account, repo.SendingAccount):
            zone = account.timezone  # read with the account
        else:
            org = await session.get(Organization, account.organization_id)
            zone = org.timezone if org else None
        start, end = QuietHours.model_validate(account.quiet_hours).window()
        ends = quiet_hours_end(now, start, end, zone or "UTC")
        if ends is not None:
            return ends
    return now


# --- the number's send slots --------------------------------------------------------------------
#
# A number sends at most ``rate`` texts a second: each text takes the number's next free slot
# (``next_slot_at``, then moved on by 1/rate) and its send job runs no earlier. The slot is
# taken as the accepting transaction commits, in the same transaction, by one short statement:
# the number's row stays locked only from there to the commit, so accepts from one number do
# not wait for each other's whole request (they did when the slot was taken at the start).


_SLOTS = "texts.slot_claims"


def claim_slot(
    session: AsyncSession, settings: Settings, num: SendingNumberT, due: datetime, job_key: str
) -> None:
    """Have the text whose send job is ``job_key`` take ``num``'s next free slot at or after
    ``due`` when ``session`` commits (the job was enqueued to run at ``due``)."""
    defer_claim(session, slot_claim(settings, num, due, job_key))


def defer_claim(session: AsyncSession, claim: repo.SlotClaim) -> None:
    """Have ``claim`` taken as ``session`` commits (:func:`_take_slots`)."""
    claims: list[repo.SlotClaim] = session.info.setdefault(_SLOTS, [])
    claims.append(claim)


def slot_claim(
    settings: Settings, num: SendingNumberT, due: datetime, job_key: str
) -> repo.SlotClaim:
    """The claim of ``num``'s next free slot at or after ``due`` for the send job
    ``job_key``."""
    rate = num.rate_per_second or settings.sms_rate_per_second
    return repo.SlotClaim(num.organization_id, num.id, due, timedelta(seconds=1.0 / rate), job_key)


@event.listens_for(Session, "before_commit")
def _take_slots(session: Session) -> None:
    # Every commit path ends here (requests, jobs, scripts), after everything else was written.
    claims: list[repo.SlotClaim] | None = session.info.pop(_SLOTS, None)
    if not claims:
        return
    session.flush()  # the rows of the transaction first, then the lock: held just to the commit
    # Numbers in one order, so two transactions that text from the same numbers never deadlock.
    for claim in sorted(claims, key=lambda c: c.number_id):
        repo.take_slot(
            session,
            claim.organization_id,
            claim.number_id,
            claim.due,
            claim.interval,
            claim.job_key,
        )


@event.listens_for(Session, "after_rollback")
def _forget_slots(session: Session) -> None:
    session.info.pop(_SLOTS, None)


def refuse_opted_out(target: str, opt_out: TextOptOut | repo.OptOut | None) -> None:
    """:class:`TextRefusedError` if ``target`` opted out (``opt_out``) of the sending number."""
    if opt_out is not None:
        where = "this number" if opt_out.scope != "*" else "every number of the organization"
        raise TextRefusedError(
            f"{target} opted out of texts from {where} (replied {opt_out.keyword}); "
            "they can reply START to opt back in"
        )


async def queue_text(
    session: AsyncSession,
    settings: Settings,
    *,
    account: SendingAccountT,
    num: SendingNumberT,
    target: str,
    message: str,
    purpose: str,
    created_by: uuid.UUID | None = None,
    urgent: bool = False,
    check_opt_out: bool = True,
    values: dict[str, Any] | None = None,
    sole_text: bool = False,
) -> OutboundText:
    """Accept a text and its delivery in the caller's transaction (never sends).

    ``sole_text``: the transaction queues no other text (an API accept), so on PostgreSQL
    the number's send slot is taken by the statement that writes the text, one statement
    fewer; a transaction that may queue several takes its slots as it commits, in the
    numbers' order (:func:`_take_slots`), so that two such transactions never deadlock.

    Raises :class:`TextRefusedError` (internal senders) for what the API answers with 400/403.
    Written by Core statements (the text, its delivery and first history row, its send job),
    no ORM object for the unit of work to flush; the text returned is the row as written, a
    transient object outside the session.
    """
    org = account.organization_id
    counted = count_segments(message)
    if counted.segments > MAX_SEGMENTS:
        raise TextRefusedError(
            f"message is {counted.segments} SMS segments ({counted.encoding}); at most "
            f"{MAX_SEGMENTS} are sent"
        )
    refusal = destination_refusal(target, account.telephony_config or {})
    if refusal is not None:
        raise TextRefusedError(refusal)
    if check_opt_out:
        refuse_opted_out(target, await repo.opted_out(session, org, target, num.id))
    due = await due_time(session, account, urgent=urgent)
    now = utcnow()
    held = due > now
    delivery_id = uuid.uuid4()
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "organization_id": org,
        "created_at": now,
        "last_modified_at": now,
        "account_id": account.id,
        "number_id": num.id,
        "delivery_id": delivery_id,
        "from_number": num.phone_number or "",
        "target": target,
        "message": message,
        "encoding": counted.encoding.value,
        "segments": counted.segments,
        "purpose": purpose,
        "urgent": urgent,
        "created_by": created_by,
        "callback_url": None,
        "callback_status_url": None,
        "callback_json": None,
        "callback_one_off": False,
        "expected_responses": None,
        "replies_closed": False,
        "reply_count": 0,
        "callback_seq": 0,
        "status": "accepted",
        "error": None,
        "provider_id": None,
        "channel_id": None,
        "consent_id": None,
    } | (values or {})
    # The delivery first: its ``accepted`` change runs the hooks (mirror_delivery publishes
    # ``texts.accepted`` and owes the status callback), which read the text from here instead
    # of the database; what they changed (the callback's seq) is then written with the text.
    text = OutboundText(**row)
    accepting: dict[uuid.UUID, OutboundText] = session.info.setdefault(_ACCEPTING, {})
    accepting[text.id] = text
    try:
        # Nothing flushed meanwhile (a callback job's dedupe look-up would): the rows stay
        # pending until written below, a callback row after its text.
        with session.sync_session.no_autoflush:
            delivery = await deliveries.create_delivery(
                session,
                settings,
                organization_id=org,
                kind=SMS,
                resource_type=TYPE_NAME,
                resource_id=text.id,
                recipient=target,
                run_at=due,
                delivery_id=delivery_id,
                send=not held,
            )
    finally:
        del accepting[text.id]
    # The rows the provider layer made (the delivery, its first history row, its send job)
    # and the text are written by Core statements (one on PostgreSQL), not flushed by the
    # unit of work.
    send_key = deliveries.first_send_key(delivery_id)
    history = job = None
    for obj in session.new:
        if isinstance(obj, DeliveryEvent) and obj.delivery_id == delivery_id:
            history = obj
        elif isinstance(obj, Job) and obj.dedupe_key == send_key:
            job = obj
    assert history is not None and (job is not None or held)
    claim = slot_claim(settings, num, due, send_key)
    slot_taken = await repo.insert_accepted(
        session,
        {key: getattr(text, key) for key in row},
        repo.take_pending_row(session, delivery),
        repo.take_pending_row(session, history),
        repo.take_pending_row(session, job) if job is not None else None,
        slot=claim if sole_text and not held and not session.info.get(_SLOTS) else None,
    )
    if held:
        # Held by quiet hours: the text takes its number's send slot only when they end, so
        # the texts sent meanwhile (the urgent ones) do not queue behind it.
        await enqueue(
            session,
            RELEASE_JOB,
            {"text_id": text.id, "due": due.isoformat()},
            organization_id=org,
            run_at=due,
            dedupe_key=f"{RELEASE_JOB}:{text.id}",
            new_key=True,
        )
    elif not slot_taken:
        defer_claim(session, claim)
    return text


def accepting_text(session: AsyncSession, ident: uuid.UUID) -> OutboundText | None:
    """The text :func:`queue_text` is writing in this transaction, while its delivery's
    hooks run (not yet in the database)."""
    found: dict[uuid.UUID, OutboundText] | None = session.info.get(_ACCEPTING)
    return found.get(ident) if found else None


async def release_text(
    session: AsyncSession, settings: Settings, text: OutboundText, held_until: datetime
) -> None:
    """Start sending a text its quiet hours held: it takes its number's next free slot now
    (at the end of the hours at the earliest), like a text accepted at that moment."""
    delivery_id = text.delivery_id
    assert delivery_id is not None  # every text accepted for sending has its delivery
    due = max(utcnow(), held_until)
    await deliveries.start_send(session, text.organization_id, delivery_id, run_at=due)
    num = await accounts.number(session, text.organization_id, text.number_id)
    if num is not None:
        claim_slot(session, settings, num, due, deliveries.first_send_key(delivery_id))


def _check_callback_url(settings: Settings, name: str, url: str | None) -> None:
    if url is None:
        return
    try:
        parse_url(url, allow_private=settings.webhook_allow_private)
    except UnsafeUrlError as exc:
        raise invalid_attribute(name, str(exc), "invalid-callback-url") from exc


async def _sender_user(ctx: Context, given: uuid.UUID | None) -> uuid.UUID | None:
    """The staff user on whose behalf the text goes: ``user-id``, else the user whose
    primary individual an individual token acts as."""
    if given is not None:
        if not await accounts.user_exists(ctx.session, ctx.organization_id, given):
            raise invalid_attribute("user-id", "no such user in this organization")
        return given
    individual = ctx.principal.individual_id
    if individual is None:
        return None
    return await repo.user_of_individual(ctx.session, ctx.organization_id, individual)


class TextService(CrudService[OutboundText]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> OutboundText:
        assert isinstance(attrs, TextCreate)
        org = ctx.organization_id
        if attrs.organization_id is not None and attrs.organization_id != org:
            raise not_found("organization")
        account: SendingAccountT | None
        named: repo.SendingNumber | None = None
        opt_out: TextOptOut | repo.OptOut | None = None
        if attrs.number_id is not None:
            # The common case, a named number: the account (its telephony config, quiet hours
            # and organization's time zone), the number and any opt-out in one statement.
            account, named, opt_out = await repo.sending_from(
                ctx.session, org, attrs.account_id, attrs.number_id, attrs.target
            )
        elif attrs.account_id is not None:
            account = await accounts.account(ctx.session, org, attrs.account_id)
        else:
            account = await accounts.account_of(ctx.session, org)
        if account is None:
            if attrs.account_id is not None:
                raise not_found("text account")
            raise unprocessable(
                "the organization has no text account: create one first", "no-text-account"
            )
        _check_callback_url(ctx.settings, "callback-url", attrs.callback_url)
        _check_callback_url(ctx.settings, "callback-status-url", attrs.callback_status_url)
        user_id = await _sender_user(ctx, attrs.user_id)
        num: SendingNumberT
        if attrs.number_id is not None:
            num = given_number(named, account.id)
        else:
            assert isinstance(account, TextAccount)
            num = await choose_number(ctx.session, org, account, None, user_id)
        counted = count_segments(attrs.message)
        if counted.segments > MAX_SEGMENTS:
            raise invalid_attribute(
                "message",
                f"message is {counted.segments} SMS segments ({counted.encoding}); at most "
                f"{MAX_SEGMENTS} are sent",
                "too-many-segments",
            )
        try:
            refusal = destination_refusal(attrs.target, account.telephony_config or {})
            if refusal is not None:
                raise TextRefusedError(refusal)
            if attrs.number_id is None:
                opt_out = await repo.opted_out(ctx.session, org, attrs.target, num.id)
            refuse_opted_out(attrs.target, opt_out)
            return await queue_text(
                ctx.session,
                ctx.settings,
                account=account,
                num=num,
                target=attrs.target,
                message=attrs.message,
                purpose="outbound",
                created_by=user_id,
                urgent=attrs.urgent,
                check_opt_out=False,  # just checked
                sole_text=True,
                values={
                    "callback_url": attrs.callback_url,
                    "callback_status_url": attrs.callback_status_url,
                    "callback_json": attrs.callback_json,
                    "callback_one_off": attrs.callback_one_off,
                    "expected_responses": attrs.expected_responses,
                },
            )
        except TextRefusedError as exc:
            raise forbidden(str(exc)) from exc

    async def present(self, ctx: Context, rows: Sequence[OutboundText]) -> list[dict[str, Any]]:
        return [present_text(row) for row in rows]


def present_text(row: OutboundText) -> dict[str, Any]:
    return {
        "account-id": str(row.account_id),
        "number-id": str(row.number_id),
        "callback-status-url": row.callback_status_url,
        "callback-url": row.callback_url,
        "created-at": format_timestamp(row.created_at),
        "created-by": str(row.created_by) if row.created_by else None,
        "error": row.error,
        "from": row.from_number,
        "last-modified-at": format_timestamp(row.last_modified_at),
        "message": row.message,
        "status": row.status,
        "target": row.target,
        "twilio-sid": row.provider_id,
        "segments": row.segments,
        "encoding": row.encoding,
        "purpose": row.purpose,
        "reply-count": row.reply_count,
    }


# --- callbacks to the client's URLs ------------------------------------------------------------


async def owe_callback(
    session: AsyncSession, text: OutboundText, url: str, body: dict[str, Any]
) -> None:
    """Queue a post to ``url`` after the text's earlier ones (same transaction)."""
    text.callback_seq += 1
    row = TextCallback(
        id=uuid.uuid4(),
        organization_id=text.organization_id,
        text_id=text.id,
        seq=text.callback_seq,
        url=url,
        body={
            **body,
            "text-id": str(text.id),
            "callback-json": text.callback_json,
            "occurred-at": format_timestamp(utcnow()),
        },
    )
    session.add(row)
    await enqueue(
        session,
        CALLBACK_JOB,
        {"callback_id": row.id},
        organization_id=text.organization_id,
        dedupe_key=f"{CALLBACK_JOB}:{row.id}:0",
    )


def publish_text(session: AsyncSession, text: OutboundText, verb: str, **data: Any) -> None:
    publish(
        session,
        organization_id=text.organization_id,
        resource_type=TYPE_NAME,
        verb=verb,
        resource_id=text.id,
        data={"id": str(text.id), **data},
    )
