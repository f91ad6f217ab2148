"""The SQL of the Alexa domain: reminders (an individual sees their own), subscriptions,
the links between Alexa users and individuals, and the unread messages the skill tells of."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.tenancy import ids_where, in_organization, scoped, unscoped
from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.alexa import AlexaLink, AlexaUserToken, AskEvent, AskReminder, AskSubscription
from courier.models.individual import Individual
from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber


def reminder_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees its own reminders."""
    return stmt.where(AskReminder.individual_id == principal.individual_id)


class ReminderRepository(Repository[AskReminder]):
    def __init__(self) -> None:
        super().__init__(AskReminder, what="reminder", individual_scope=reminder_scope)

    def readable(self, ctx: Context) -> Select[Any]:
        stmt = super().readable(ctx)
        if ctx.acting_individual_id is not None:
            stmt = stmt.where(AskReminder.individual_id == ctx.acting_individual_id)
        return stmt


reminders = ReminderRepository()
subscriptions = Repository(AskSubscription, what="subscription")


async def link_of_user(session: AsyncSession, alexa_user_id: str) -> AlexaLink | None:
    """The link of an Alexa user, whatever the organization: a skill request names only the
    Alexa user, and the link says which organization it belongs to."""
    stmt = unscoped(
        select(AlexaLink).where(AlexaLink.alexa_user_id == alexa_user_id),
        "a skill request names an Alexa user, not an organization",
    )
    found: AlexaLink | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def link_of_individual(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> AlexaLink | None:
    stmt = scoped(
        select(AlexaLink)
        .where(AlexaLink.individual_id == individual_id)
        .order_by(AlexaLink.last_modified_at.desc(), AlexaLink.id)
        .limit(1),
        AlexaLink,
        organization_id,
    )
    found: AlexaLink | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def unlink_user(session: AsyncSession, link: AlexaLink) -> None:
    await session.execute(
        scoped(
            delete(AlexaLink).where(AlexaLink.id == link.id), AlexaLink, link.organization_id
        ).execution_options(synchronize_session=False)
    )


async def reminders_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[AskReminder]:
    stmt = scoped(
        select(AskReminder)
        .where(AskReminder.individual_id == individual_id)
        .order_by(AskReminder.created_at, AskReminder.id),
        AskReminder,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def subscription_of(
    session: AsyncSession, organization_id: uuid.UUID, alexa_app_id: str, alexa_user_id: str
) -> AskSubscription | None:
    stmt = scoped(
        select(AskSubscription).where(
            AskSubscription.alexa_app_id == alexa_app_id,
            AskSubscription.alexa_user_id == alexa_user_id,
        ),
        AskSubscription,
        organization_id,
    )
    found: AskSubscription | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def subscription_ids_of_user(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[uuid.UUID]:
    """The ids of the subscriptions of ``individual_id`` (an Alexa subscription's user)."""
    return await ids_where(session, organization_id, AskSubscription.user_id, individual_id)


async def reminder(
    session: AsyncSession, organization_id: uuid.UUID, reminder_id: uuid.UUID
) -> AskReminder | None:
    stmt = scoped(
        select(AskReminder).where(AskReminder.id == reminder_id), AskReminder, organization_id
    )
    found: AskReminder | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def event(
    session: AsyncSession, organization_id: uuid.UUID, event_id: uuid.UUID
) -> AskEvent | None:
    stmt = scoped(select(AskEvent).where(AskEvent.id == event_id), AskEvent, organization_id)
    found: AskEvent | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


# --- the tokens Alexa gives per user (courier.domains.alexa.tokens) --------------------------


async def delete_expired_user_tokens(session: AsyncSession, now: datetime) -> None:
    """Remove the tokens of every user that expired by ``now`` (an indexed delete)."""
    await session.execute(
        delete(AlexaUserToken)
        .where(AlexaUserToken.expires_at <= now)
        .execution_options(synchronize_session=False)
    )


async def delete_user_tokens(session: AsyncSession, alexa_user_id: str) -> None:
    await session.execute(
        delete(AlexaUserToken)
        .where(AlexaUserToken.alexa_user_id == alexa_user_id)
        .execution_options(synchronize_session=False)
    )


# --- unread messages (what "read my new messages" tells) ------------------------------------


@dataclass(frozen=True)
class UnreadFrom:
    """Unread messages of one author (``author_id`` None: written by the system)."""

    author_id: uuid.UUID | None
    count: int


@dataclass(frozen=True)
class UnreadMessage:
    author_id: uuid.UUID | None
    text: str


def _unread(organization_id: uuid.UUID, individual_id: uuid.UUID) -> ColumnElement[bool]:
    """Posted messages past the individual's horizon in the unarchived channels they belong
    to, written by someone else (for :func:`_unread_statement`)."""
    sub, channel, message = MessagingSubscriber, MessagingChannel, MessagingMessage
    return and_(
        sub.individual_id == individual_id,
        in_organization(channel, organization_id),
        channel.archived.is_(False),
        in_organization(message, organization_id),
        message.seq > sub.ack_seq,
        message.seq <= channel.last_seq,
        message.draft.is_(False),
        message.removed.is_(False),
        or_(message.individual_id.is_(None), message.individual_id != individual_id),
    )


def _unread_statement(
    organization_id: uuid.UUID, individual_id: uuid.UUID, *columns: Any
) -> Select[Any]:
    sub = MessagingSubscriber
    stmt = (
        select(*columns)
        .select_from(sub)
        .join(MessagingChannel, MessagingChannel.id == sub.channel_id)
        .join(MessagingMessage, MessagingMessage.channel_id == sub.channel_id)
        .where(_unread(organization_id, individual_id))
    )
    return scoped(cast("Select[Any]", stmt), sub, organization_id)


async def unread_by_author(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[UnreadFrom]:
    """The individual's unread messages counted per author, the earliest-writing first."""
    message = MessagingMessage
    first = func.min(message.posted_time)
    stmt = (
        _unread_statement(
            organization_id, individual_id, message.individual_id, func.count(), first
        )
        .group_by(message.individual_id)
        .order_by(first, message.individual_id)
    )
    rows = (await session.execute(stmt)).all()
    return [UnreadFrom(author, int(count)) for author, count, _ in rows]


async def unread_messages(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID, *, limit: int
) -> list[UnreadMessage]:
    """The individual's ``limit`` oldest unread messages."""
    message = MessagingMessage
    stmt = (
        _unread_statement(organization_id, individual_id, message.individual_id, message.message)
        .order_by(message.posted_time, message.seq, message.id)
        .limit(limit)
    )
    return [UnreadMessage(author, text or "") for author, text in await session.execute(stmt)]


async def spoken_names(
    session: AsyncSession, organization_id: uuid.UUID, ids: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """How the skill names these individuals: first and last name."""
    if not ids:
        return {}
    stmt = scoped(
        cast(
            "Select[Any]",
            select(Individual.id, Individual.first_name, Individual.last_name).where(
                Individual.id.in_(ids)
            ),
        ),
        Individual,
        organization_id,
    )
    names: dict[uuid.UUID, str] = {}
    for ident, first, last in await session.execute(stmt):
        name = " ".join(part.strip() for part in (first or "", last or "") if part.strip())
        if name:
            names[ident] = name
    return names
