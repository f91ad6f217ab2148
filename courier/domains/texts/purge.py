"""Purging an individual from texting: the texts sent to their phone (and their callbacks),
the texts received from it, their opt-outs, the record of a channel their phone opened as an
unknown number, and the SMS consents of the users whose primary individual they are (with
their history)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.individual import Individual
from courier.models.text import OutboundText, TextOptOut
from courier.models.text_account import TextReceiveLog, UnknownNumberOpening
from courier.models.user import User
from courier.models.user_consent import UserConsent
from courier.purge import ArchiveWriter, purge_hook


async def _phones(session: AsyncSession, org: uuid.UUID, individual_id: uuid.UUID) -> set[str]:
    own = scoped(select(Individual.phone).where(Individual.id == individual_id), Individual, org)
    users = scoped(select(User.phone).where(User.primary_individual_id == individual_id), User, org)
    found = {p for (p,) in (await session.execute(own)).all() if p}
    return found | {p for (p,) in (await session.execute(users)).all() if p}


@purge_hook("individual", name="texts")
async def purge_texts(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    phones = await _phones(session, organization_id, individual_id)
    counts: dict[str, int] = {}
    if phones:
        for model, column in (
            (OutboundText, OutboundText.target),
            (TextReceiveLog, TextReceiveLog.sender),
            (TextOptOut, TextOptOut.phone),
            (UnknownNumberOpening, UnknownNumberOpening.phone),
        ):
            rows = (
                (
                    await session.execute(
                        scoped(select(model).where(column.in_(phones)), model, organization_id)
                    )
                )
                .scalars()
                .all()
            )
            if archive is not None:
                for row in rows:
                    archive.write(
                        model.__tablename__,
                        {c.name: getattr(row, c.name) for c in model.__table__.columns},
                    )
            await session.execute(
                scoped(delete(model).where(column.in_(phones)), model, organization_id)
            )
            counts[model.__tablename__] = len(rows)
    users = scoped(
        select(User.id).where(User.primary_individual_id == individual_id), User, organization_id
    )
    user_ids = [u for (u,) in (await session.execute(users)).all()]
    if user_ids:
        consents = scoped(
            delete(UserConsent).where(UserConsent.user_id.in_(user_ids)),
            UserConsent,
            organization_id,
        )
        result = await session.execute(consents)
        counts["user_consents"] = int(getattr(result, "rowcount", 0) or 0)
    return counts
