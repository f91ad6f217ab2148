"""Purging an individual from texting: the texts sent to their phone (and their callbacks),
the texts received from it, their opt-outs, the record of a channel their phone opened as an
unknown number, and the SMS consents of the users whose primary individual they are (with
their history)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.people.repository import users_of_individual
from courier.domains.texts import repository
from courier.models.text import OutboundText, TextOptOut
from courier.models.text_account import TextReceiveLog, UnknownNumberOpening
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="texts")
async def purge_texts(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    phones = await repository.phones_of_individual(session, organization_id, individual_id)
    counts: dict[str, int] = {}
    if phones:
        for model, column in (
            (OutboundText, OutboundText.target),
            (TextReceiveLog, TextReceiveLog.sender),
            (TextOptOut, TextOptOut.phone),
            (UnknownNumberOpening, UnknownNumberOpening.phone),
        ):
            rows = await repository.rows_by_phone(session, organization_id, model, column, phones)
            if archive is not None:
                for row in rows:
                    archive.write(
                        model.__tablename__,
                        {c.name: getattr(row, c.name) for c in model.__table__.columns},
                    )
            await repository.delete_by_phone(session, organization_id, model, column, phones)
            counts[model.__tablename__] = len(rows)
    user_ids = await users_of_individual(session, organization_id, individual_id)
    if user_ids:
        counts["user_consents"] = await repository.delete_consents_of_users(
            session, organization_id, user_ids
        )
    return counts
