"""The counters of a communication summary that other domains own.

``GET /v1/communication-summaries/`` reports ``notifications`` and ``video-channels`` beside the
message counts. Those tables belong to domains of their own, so each joins the summary by
registering one function here; until one does, its count is 0::

    from courier.domains.inbox.counters import summary_counter

    @summary_counter("notifications")
    async def unread_notifications(
        session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
    ) -> int:
        ...  # one aggregate query, through courier.core.tenancy.scoped
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

SummaryCounter = Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[int]]

# The summary attributes other domains fill, in the order the summary shows them.
COUNTER_NAMES = ("notifications", "video-channels")

_COUNTERS: dict[str, SummaryCounter] = {}


def summary_counter(name: str) -> Callable[[SummaryCounter], SummaryCounter]:
    """Register the function that counts ``name`` for an individual (once per name)."""
    if name not in COUNTER_NAMES:
        raise ValueError(f"{name!r} is not a summary counter; use one of {COUNTER_NAMES}")

    def register(counter: SummaryCounter) -> SummaryCounter:
        if name in _COUNTERS and _COUNTERS[name] is not counter:
            raise ValueError(f"summary counter {name!r} registered twice")
        _COUNTERS[name] = counter
        return counter

    return register


async def count_others(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> dict[str, int]:
    """Every registered counter's value for the individual; 0 where no domain counts yet."""
    counts: dict[str, int] = {}
    for name in COUNTER_NAMES:
        counter = _COUNTERS.get(name)
        counts[name] = (
            0 if counter is None else int(await counter(session, organization_id, individual_id))
        )
    return counts
