"""All SQL of texts, opt-outs and text callbacks (tenant-scoped)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, and_, delete, func, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from courier.core.tenancy import in_organization, scoped, unscoped
from courier.models.delivery import ProviderInbound
from courier.models.individual import Individual
from courier.models.job import Job, JobState
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


async def sending_from(
    session: AsyncSession,
    org: uuid.UUID,
    account_id: uuid.UUID | None,
    number_id: uuid.UUID,
    target: str,
) -> tuple[TextAccount | None, TextAccountNumber | None, TextOptOut | None]:
    """In one statement, what accepting a text from a named number reads: the account (the
    one named, else the organization's), the number (None: not in this organization) and an
    opt-out of ``target`` from that number or from the whole organization (None: none)."""
    number = and_(TextAccountNumber.id == number_id, in_organization(TextAccountNumber, org))
    opt_out = and_(
        TextOptOut.phone == target,
        TextOptOut.scope.in_([str(number_id), "*"]),
        in_organization(TextOptOut, org),
    )
    stmt = cast(
        "Select[Any]",
        select(TextAccount, TextAccountNumber, TextOptOut)
        .select_from(TextAccount)
        .outerjoin(TextAccountNumber, number)
        .outerjoin(TextOptOut, opt_out, full=False),
    )
    if account_id is not None:
        stmt = stmt.where(TextAccount.id == account_id)
    found = (await session.execute(scoped(stmt, TextAccount, org).limit(1))).first()
    if found is None:
        return None, None, None
    return found[0], found[1], found[2]


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


def postpone_job(session: Session, org: uuid.UUID, dedupe_key: str, run_at: datetime) -> None:
    """Have the queued job ``dedupe_key`` run no earlier than ``run_at`` (a text's send slot;
    synchronous, as :func:`~courier.domains.text_accounts.repository.take_slot`)."""
    session.execute(
        scoped(
            update(Job).where(
                Job.dedupe_key == dedupe_key,
                Job.state == JobState.QUEUED.value,
                Job.run_at < run_at,
            ),
            Job,
            org,
        )
        .values(run_at=run_at)
        .execution_options(synchronize_session=False)
    )


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
