"""All SQL of texts, opt-outs and text callbacks (tenant-scoped)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CTE,
    Insert,
    Interval,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from courier.core.bulk import insert_of
from courier.core.direct import Direct
from courier.core.tenancy import in_organization, scoped, unscoped
from courier.models.base import UTCDateTime
from courier.models.delivery import Delivery, DeliveryEvent, ProviderInbound
from courier.models.individual import Individual
from courier.models.job import Job, JobState
from courier.models.organization import Organization
from courier.models.text import OutboundText, TextCallback, TextOptOut
from courier.models.text_account import TextAccount, TextAccountNumber, TextReceiveLog
from courier.models.user import User
from courier.models.user_consent import UserConsent

# Carrier webhooks name their text or number by id before the organization is known.
WEBHOOK = "a carrier webhook names its text or number by id before its organization is known"


async def text(session: AsyncSession, org: uuid.UUID, ident: uuid.UUID) -> OutboundText | None:
    # A text the session holds fully loaded (e.g. the one this transaction just accepted): the
    # SELECT would hand back this same object without refreshing it, after a round trip.
    known = session.identity_map.get(identity_key(OutboundText, ident))
    if (
        isinstance(known, OutboundText)
        and not inspect(known).unloaded
        and known not in session.deleted
        and known.organization_id == org
    ):
        return known
    stmt = scoped(select(OutboundText).where(OutboundText.id == ident), OutboundText, org)
    found: OutboundText | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


@dataclass(frozen=True, slots=True)
class SendingAccount:
    """What accepting a text reads of its text account (and organization)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    phone_number: str | None
    telephony_config: dict[str, Any] | None
    quiet_hours: dict[str, Any] | None
    timezone: str | None


@dataclass(frozen=True, slots=True)
class SendingNumber:
    """What accepting a text reads of the number it is sent from."""

    id: uuid.UUID
    organization_id: uuid.UUID
    account_id: uuid.UUID
    status: str
    phone_number: str | None
    rate_per_second: float | None


@dataclass(frozen=True, slots=True)
class OptOut:
    scope: str
    keyword: str


def _sending_from(by_account: bool) -> Select[Any]:
    """The statement of :func:`sending_from`, built once (its values are bound parameters)."""
    org: Any = bindparam("org")  # in_organization and scoped of a parameter, bound per call
    number = and_(
        TextAccountNumber.id == bindparam("number_id"), in_organization(TextAccountNumber, org)
    )
    opt_out = and_(
        TextOptOut.phone == bindparam("target"),
        TextOptOut.scope.in_([bindparam("number_scope"), "*"]),
        in_organization(TextOptOut, org),
    )
    stmt = cast(
        "Select[Any]",
        select(
            TextAccount.id,
            TextAccount.phone_number,
            TextAccount.telephony_config,
            TextAccount.quiet_hours,
            Organization.timezone,
            TextAccountNumber.id,
            TextAccountNumber.account_id,
            TextAccountNumber.status,
            TextAccountNumber.phone_number,
            TextAccountNumber.rate_per_second,
            TextOptOut.scope,
            TextOptOut.keyword,
        )
        .select_from(TextAccount)
        .outerjoin(Organization, Organization.id == org)
        .outerjoin(TextAccountNumber, number)
        .outerjoin(TextOptOut, opt_out),
    )
    if by_account:
        stmt = stmt.where(TextAccount.id == bindparam("account_id"))
    return scoped(stmt, TextAccount, org).limit(1)


_SENDING_FROM = {by_account: Direct(_sending_from(by_account)) for by_account in (False, True)}


async def sending_from(
    session: AsyncSession,
    org: uuid.UUID,
    account_id: uuid.UUID | None,
    number_id: uuid.UUID,
    target: str,
) -> tuple[SendingAccount | None, SendingNumber | None, OptOut | None]:
    """In one statement, everything accepting a text from a named number reads: the account
    (the one named, else the organization's) with its telephony config and quiet hours, the
    organization's time zone, the number (None: not in this organization) and an opt-out of
    ``target`` from that number or from the whole organization (None: none). A Core
    statement built once, through the session's connection: no ORM objects."""
    params: dict[str, Any] = {
        "org": org,
        "number_id": number_id,
        "target": target,
        "number_scope": str(number_id),
    }
    if account_id is not None:
        params["account_id"] = account_id
    connection = await session.connection()
    found_rows = await _SENDING_FROM[account_id is not None].rows(connection, params)
    found = found_rows[0] if found_rows else None
    if found is None:
        return None, None, None
    (acc_id, acc_phone, config, quiet, zone, num_id, num_account, status, phone, rate) = found[:10]
    account = SendingAccount(acc_id, org, acc_phone, config, quiet, zone)
    number = (
        SendingNumber(num_id, org, num_account, status, phone, rate) if num_id is not None else None
    )
    opt_out = OptOut(found[10], found[11]) if found[10] is not None else None
    return account, number, opt_out


# --- writing an accepted text ------------------------------------------------------------------


@dataclass(frozen=True)
class SlotClaim:
    """A send job's claim of its number's next free send slot at or after ``due`` (the one
    after it is ``interval`` later): see :func:`take_slot`."""

    organization_id: uuid.UUID
    number_id: uuid.UUID
    due: datetime
    interval: timedelta
    job_key: str


_TEXTS: Table = cast(Any, OutboundText.__table__)
_DELIVERIES: Table = cast(Any, Delivery.__table__)
_HISTORY: Table = cast(Any, DeliveryEvent.__table__)
_JOBS: Table = cast(Any, Job.__table__)


def _accepted_pg(with_job: bool, with_slot: bool = False) -> Insert:
    """PostgreSQL: the text, its delivery, the delivery's first history row and (unless quiet
    hours hold the text) its send job in one statement, the others as data-modifying CTEs
    (foreign keys are checked at the statement's end, when all four rows are there).
    ``with_slot``: the number's send slot is taken in the same statement (:func:`take_slot`'s
    ``UPDATE`` as a CTE) and the job is written to run at it."""
    stmt = insert_of(_TEXTS, "t_")
    if with_slot:
        stmt = stmt.add_cte(_SLOT_TAKEN)
    parts = [(_DELIVERIES, "d_"), (_HISTORY, "h_")] + ([(_JOBS, "j_")] if with_job else [])
    for table, prefix in parts:
        rows = insert_of(table, prefix)
        if table is _JOBS and with_slot:
            # No earlier than the slot (a number gone has none: greatest() skips the NULL).
            run_at = bindparam("j_run_at", type_=_JOBS.c.run_at.type)
            slot = select(_SLOT_TAKEN.c.slot).scalar_subquery()
            rows = rows.values(run_at=func.greatest(run_at, slot, type_=UTCDateTime()))
        stmt = stmt.add_cte(rows.cte(f"{prefix}rows"))
    return stmt


_INSERTS = {table.name: insert(table) for table in (_TEXTS, _DELIVERIES, _HISTORY, _JOBS)}


def take_pending_row(session: AsyncSession, obj: Any) -> dict[str, Any]:
    """The row of ``obj``, an object added to ``session`` and not yet flushed, every column
    named; ``obj`` leaves the session (the caller writes the row). A column the object does
    not set must have no default (None is then what the unit of work would have written)."""
    state = inspect(obj)
    row: dict[str, Any] = {}
    for prop in state.mapper.column_attrs:
        column = prop.columns[0]
        if prop.key in state.dict:
            row[column.key] = state.dict[prop.key]
        elif column.default is None and column.server_default is None:
            row[column.key] = None
        else:
            raise ValueError(f"{column} has a default the row does not set")
    session.sync_session.expunge(obj)
    return row


async def insert_accepted(
    session: AsyncSession,
    text_row: dict[str, Any],
    delivery_row: dict[str, Any],
    history_row: dict[str, Any],
    job_row: dict[str, Any] | None,
    slot: SlotClaim | None = None,
) -> bool:
    """Write an accepted text with its delivery, first history row and send job by Core
    statements through the session's connection (every row names its organization): one
    statement on PostgreSQL, one per row on SQLite.

    ``slot`` (with a job): on PostgreSQL the number's send slot is taken in that statement
    too, the job written to run at it; True when it was (else the caller claims it later)."""
    connection = await session.connection()
    rows = [
        (_TEXTS, "t_", text_row),
        (_DELIVERIES, "d_", delivery_row),
        (_HISTORY, "h_", history_row),
    ]
    if job_row is not None:
        rows.append((_JOBS, "j_", job_row))
    if connection.dialect.name == "postgresql":
        params = {prefix + key: value for _t, prefix, row in rows for key, value in row.items()}
        with_slot = slot is not None and job_row is not None
        if slot is not None and with_slot:
            params |= {
                "org": slot.organization_id,
                "number_id": slot.number_id,
                "due": slot.due,
                "interval": slot.interval,
            }
        await _ACCEPTED_PG[job_row is not None, with_slot].execute(connection, params)
        return with_slot
    # SQLite: the parents first (each statement checks its foreign keys)
    for table, _prefix, row in (rows[1], rows[2], rows[0], *rows[3:]):
        await connection.execute(_INSERTS[table.name], row)
    return False


async def user_of_individual(
    session: AsyncSession, org: uuid.UUID, individual_id: uuid.UUID
) -> uuid.UUID | None:
    """The user whose primary individual is ``individual_id`` (one, if several)."""
    stmt = scoped(select(User.id).where(User.primary_individual_id == individual_id), User, org)
    found: uuid.UUID | None = (await session.execute(stmt.limit(1))).scalar_one_or_none()
    return found


async def account_of_text(session: AsyncSession, text_id: uuid.UUID) -> uuid.UUID | None:
    """The text account of text ``text_id``, in whichever organization (status callbacks)."""
    stmt = unscoped(select(OutboundText.account_id).where(OutboundText.id == text_id), WEBHOOK)
    found: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def account_of_number(session: AsyncSession, number_id: uuid.UUID) -> uuid.UUID | None:
    """The text account of number ``number_id``, in whichever organization (inbound texts)."""
    stmt = unscoped(
        select(TextAccountNumber.account_id).where(TextAccountNumber.id == number_id), WEBHOOK
    )
    found: uuid.UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def any_account(session: AsyncSession, account_id: uuid.UUID) -> TextAccount | None:
    """Text account ``account_id``, in whichever organization (carrier webhooks)."""
    stmt = unscoped(select(TextAccount).where(TextAccount.id == account_id), WEBHOOK)
    found: TextAccount | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def opted_out(
    session: AsyncSession, org: uuid.UUID, phone: str, number_id: uuid.UUID
) -> TextOptOut | None:
    stmt = scoped(
        select(TextOptOut).where(
            TextOptOut.phone == phone, TextOptOut.scope.in_([str(number_id), "*"])
        ),
        TextOptOut,
        org,
    )
    found: TextOptOut | None = (await session.execute(stmt.limit(1))).scalars().first()
    return found


async def add_opt_out(
    session: AsyncSession, org: uuid.UUID, phone: str, number_id: uuid.UUID | None, keyword: str
) -> None:
    scope = str(number_id) if number_id is not None else "*"
    stmt = scoped(
        select(TextOptOut.id).where(TextOptOut.phone == phone, TextOptOut.scope == scope),
        TextOptOut,
        org,
    )
    if (await session.execute(stmt)).first() is None:
        session.add(
            TextOptOut(
                organization_id=org, phone=phone, scope=scope, number_id=number_id, keyword=keyword
            )
        )


async def remove_opt_outs(
    session: AsyncSession, org: uuid.UUID, phone: str, number_id: uuid.UUID
) -> int:
    """START lifts the opt-out from this number and the organization-wide one."""
    stmt = scoped(
        delete(TextOptOut).where(
            TextOptOut.phone == phone, TextOptOut.scope.in_([str(number_id), "*"])
        ),
        TextOptOut,
        org,
    )
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


async def last_text_to(
    session: AsyncSession, org: uuid.UUID, number_id: uuid.UUID, phone: str
) -> OutboundText | None:
    """The newest text this number sent to ``phone`` whose replies are reported."""
    stmt = scoped(
        select(OutboundText).where(
            OutboundText.number_id == number_id,
            OutboundText.target == phone,
            OutboundText.purpose == "outbound",
        ),
        OutboundText,
        org,
    ).order_by(OutboundText.created_at.desc(), OutboundText.id.desc())
    found: OutboundText | None = (await session.execute(stmt.limit(1))).scalars().first()
    return found


async def has_talked(
    session: AsyncSession, org: uuid.UUID, number_id: uuid.UUID, phone: str
) -> bool:
    """Whether this number ever texted ``phone`` or heard from it before."""
    sent = scoped(
        select(OutboundText.id).where(
            OutboundText.number_id == number_id, OutboundText.target == phone
        ),
        OutboundText,
        org,
    )
    if (await session.execute(sent.limit(1))).first() is not None:
        return True
    heard = scoped(
        select(func.count()).where(
            TextReceiveLog.number_id == number_id, TextReceiveLog.sender == phone
        ),
        TextReceiveLog,
        org,
    )
    return int((await session.execute(heard)).scalar_one()) > 1  # the one just received


async def callback(session: AsyncSession, org: uuid.UUID, ident: uuid.UUID) -> TextCallback | None:
    stmt = scoped(select(TextCallback).where(TextCallback.id == ident), TextCallback, org)
    found: TextCallback | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def earlier_undelivered(
    session: AsyncSession, org: uuid.UUID, row: TextCallback
) -> Sequence[uuid.UUID]:
    stmt = scoped(
        select(TextCallback.id).where(
            TextCallback.text_id == row.text_id,
            TextCallback.seq < row.seq,
            TextCallback.delivered_at.is_(None),
        ),
        TextCallback,
        org,
    )
    return list((await session.execute(stmt)).scalars().all())


# --- a number's send slots (courier.domains.texts.service) -------------------------------------


def _slot_statements() -> tuple[CTE, Update, Select[Any], Update, Update]:
    """The statements of :func:`take_slot`, built once (values are bound per call)."""
    org: Any = bindparam("org")
    number, job = TextAccountNumber, Job
    due = bindparam("due", type_=UTCDateTime())
    interval = bindparam("interval", type_=Interval())
    # The number's ``last-modified-at`` is left alone: sending changes nothing a client sees.
    keep = {"last_modified_at": number.last_modified_at}
    taken = (
        scoped(update(number).where(number.id == bindparam("number_id")), number, org)
        .values(
            next_slot_at=func.greatest(
                func.coalesce(number.next_slot_at, due), due, type_=UTCDateTime()
            )
            + interval,
            **keep,
        )
        .returning((number.next_slot_at - interval).label("slot"))
        .cte("slot")
    )
    queued = and_(
        job.dedupe_key == bindparam("job_key"),
        job.state == JobState.QUEUED.value,
        in_organization(job, org),
    )
    # PostgreSQL: the slot taken and the send job moved to it, in one statement.
    postgresql = (
        update(job)
        .where(queued, job.run_at < taken.c.slot)
        .values(run_at=taken.c.slot)
        .execution_options(synchronize_session=False)
    )
    read = scoped(
        select(number.next_slot_at).where(number.id == bindparam("number_id")), number, org
    )
    move = scoped(update(number).where(number.id == bindparam("number_id")), number, org).values(
        next_slot_at=bindparam("next_slot_at", type_=UTCDateTime()), **keep
    )
    postpone = update(job).where(queued, job.run_at < due).values(run_at=due)
    return taken, postgresql, read, move, postpone


_SLOT_TAKEN, _SLOT_PG, _SLOT_READ, _SLOT_MOVE, _SLOT_POSTPONE = _slot_statements()
# (with_job, with_slot): the accept's one statement on PostgreSQL (see insert_accepted)
_ACCEPTED_PG = {
    (with_job, with_slot): Direct(_accepted_pg(with_job, with_slot))
    for with_job, with_slot in ((False, False), (True, False), (True, True))
}


def take_slot(
    session: Session,
    org: uuid.UUID,
    number_id: uuid.UUID,
    due: datetime,
    interval: timedelta,
    job_key: str,
) -> None:
    """The text whose send job is ``job_key`` takes the number's next free send slot at or
    after ``due`` (the one after it is ``interval`` later), and its job runs no earlier.
    Synchronous: it runs as the transaction commits (``before_commit``), in Core statements
    built once, through the session's connection.

    PostgreSQL: one statement, an ``UPDATE ... RETURNING`` of the number's ``next_slot_at``
    under its row lock (transactions that overlap each get a slot of their own; the row is
    locked only from here to the commit) in a CTE, and the job's ``UPDATE`` to that slot.
    SQLite: the transaction holds the database's write lock from its start (``BEGIN
    IMMEDIATE``), so a read and writes do the same."""
    connection = session.connection()
    params: dict[str, Any] = {"org": org, "number_id": number_id, "job_key": job_key}
    if connection.dialect.name == "postgresql":
        connection.execute(_SLOT_PG, params | {"due": due, "interval": interval})
        return
    found = connection.execute(_SLOT_READ, params).first()
    if found is None:
        return  # the number is gone
    slot = max(due, found[0] or due)
    connection.execute(_SLOT_MOVE, params | {"next_slot_at": slot + interval})
    if slot > due:
        connection.execute(_SLOT_POSTPONE, params | {"due": slot})


# --- consents a text answers (courier.domains.texts.inbound) ---------------------------------


async def pending_consent(session: AsyncSession, org: uuid.UUID, phone: str) -> UserConsent | None:
    """The newest consent asked of ``phone`` still waiting for its answer."""
    stmt = scoped(
        select(UserConsent).where(UserConsent.target_id == phone, UserConsent.state == "pending"),
        UserConsent,
        org,
    ).order_by(UserConsent.created_at.desc())
    found: UserConsent | None = (await session.execute(stmt.limit(1))).scalars().first()
    return found


async def open_consents(session: AsyncSession, org: uuid.UUID, phone: str) -> list[UserConsent]:
    """The consents of ``phone`` still pending or accepted."""
    stmt = scoped(
        select(UserConsent).where(
            UserConsent.target_id == phone, UserConsent.state.in_(["pending", "accepted"])
        ),
        UserConsent,
        org,
    )
    return list((await session.execute(stmt)).scalars().all())


# --- texts received (courier.domains.texts.jobs) ----------------------------------------------


async def earlier_unapplied(session: AsyncSession, inbound: ProviderInbound) -> bool:
    """Whether a text that ``inbound``'s sender sent the same number before it is still to
    be applied (through ``ix_provider_inbound_unapplied``: only what is pending is read)."""
    stmt = unscoped(
        select(ProviderInbound.raw).where(
            ProviderInbound.organization_id == inbound.organization_id,  # tenancy-ok: see below
            ProviderInbound.applied_at.is_(None),
            ProviderInbound.received_at < inbound.received_at,
            ProviderInbound.provider == inbound.provider,
            ProviderInbound.event_type == "message",
        ),
        "provider_inbound is not a tenant table; the statement names its organization",
    )
    sender, to = inbound.raw.get("From"), inbound.raw.get("To")
    return any(
        raw.get("From") == sender and raw.get("To") == to
        for raw in (await session.execute(stmt)).scalars()
    )


# --- purging an individual (courier.domains.texts.purge, voice's purge too) ------------------


async def phones_of_individual(
    session: AsyncSession, org: uuid.UUID, individual_id: uuid.UUID
) -> set[str]:
    """The individual's phone and the phones of the users whose primary individual it is."""
    own = scoped(select(Individual.phone).where(Individual.id == individual_id), Individual, org)
    users = scoped(select(User.phone).where(User.primary_individual_id == individual_id), User, org)
    found = {p for (p,) in (await session.execute(own)).all() if p}
    return found | {p for (p,) in (await session.execute(users)).all() if p}


async def rows_by_phone(
    session: AsyncSession, org: uuid.UUID, model: Any, column: Any, phones: set[str]
) -> list[Any]:
    """The rows of ``model`` whose ``column`` is one of ``phones``."""
    stmt = scoped(select(model).where(column.in_(phones)), model, org)
    return list((await session.execute(stmt)).scalars().all())


async def delete_by_phone(
    session: AsyncSession, org: uuid.UUID, model: Any, column: Any, phones: set[str]
) -> None:
    await session.execute(scoped(delete(model).where(column.in_(phones)), model, org))


async def delete_consents_of_users(
    session: AsyncSession, org: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> int:
    """Delete these users' consents (their history goes with them); how many they were."""
    result = await session.execute(
        scoped(delete(UserConsent).where(UserConsent.user_id.in_(user_ids)), UserConsent, org)
    )
    return int(getattr(result, "rowcount", 0) or 0)
