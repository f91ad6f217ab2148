"""The SQL of the Alexa domain: reminders (an individual sees their own), subscriptions,
and the links between Alexa users and individuals."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.tenancy import scoped, unscoped
from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.alexa import AlexaLink, AskReminder, AskSubscription


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
