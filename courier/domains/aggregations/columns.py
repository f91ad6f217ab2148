"""The aggregate columns, computed from the messaging tables for many individuals at once.

One query per column (per 500 individuals), whatever the number of individuals: never a query
per individual. The queries are in :mod:`courier.domains.aggregations.repository`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.aggregations.repository import (
    Values,
    channel_count,
    last_contact_time,
    message_count,
    unread_count,
)

CHUNK = 500
Column = Callable[[AsyncSession, uuid.UUID, Sequence[uuid.UUID]], Awaitable[Values]]


COLUMN_FUNCTIONS: dict[str, Column] = {
    "message-count": message_count,
    "unread-count": unread_count,
    "last-contact-time": last_contact_time,
    "channel-count": channel_count,
}


async def compute(
    session: AsyncSession, org: uuid.UUID, wanted: dict[str, list[uuid.UUID]]
) -> dict[tuple[str, uuid.UUID], Any]:
    """Values of each column for the individuals asked for it."""
    values: dict[tuple[str, uuid.UUID], Any] = {}
    for column, ids in wanted.items():
        function = COLUMN_FUNCTIONS[column]
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), CHUNK):
            for ident, value in (
                await function(session, org, unique[start : start + CHUNK])
            ).items():
                values[(column, ident)] = value
    return values
