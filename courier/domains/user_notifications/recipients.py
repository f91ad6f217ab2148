"""The lookups of :func:`~courier.domains.user_notifications.service.notify_many`'s hot path,
tenant-scoped, as column rows instead of ORM objects (a multicast's chunk is hundreds of
recipients: no identity map, no instance state, only the columns a notification reads).

Each row answers the attributes the service reads of an :class:`Individual`, a :class:`User`
or a :class:`UserDevice` (``row.id``, ``row.locale`` ...), so the rules that take those
objects (:func:`~courier.domains.user_notifications.service.wants`,
:meth:`~courier.domains.templates.service.OrganizationRecipients.recipient`) take these rows.
Statements: one per table and 500 ids, whatever the chunk.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.individual import Individual
from courier.models.push_device import UserDevice
from courier.models.user import User
from courier.models.user_notification import UserNotification

CHUNK = 500  # ids per IN (...) list

# What notify_many reads of each (the recipient's names, locale and time zone; the user's
# channels and preferences; a device's platform).
INDIVIDUAL_COLUMNS = (
    Individual.id,
    Individual.first_name,
    Individual.last_name,
    Individual.preferred_name,
    Individual.locale,
    Individual.tz,
)
USER_COLUMNS = (
    User.id,
    User.primary_individual_id,
    User.first_name,
    User.last_name,
    User.locale,
    User.tz,
    User.phone,
    User.email,
    User.notifications,
)


def _rows(columns: Sequence[Any], model: Any, organization_id: uuid.UUID) -> Select[Any]:
    return scoped(cast("Select[Any]", select(*columns)), model, organization_id)


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


async def earlier(
    session: AsyncSession, organization_id: uuid.UUID, keys: Sequence[str]
) -> dict[str, Any]:
    """dedupe key -> the notification made with it before (``id``, ``channels``)."""
    found: dict[str, Any] = {}
    columns = (UserNotification.dedupe_key, UserNotification.id, UserNotification.channels)
    for chunk in _chunks(keys):
        stmt = _rows(columns, UserNotification, organization_id).where(
            UserNotification.dedupe_key.in_(chunk)
        )
        for row in await session.execute(stmt):
            found[row.dedupe_key] = row
    return found


async def individuals(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    found: dict[uuid.UUID, Any] = {}
    for chunk in _chunks(ids):
        stmt = _rows(INDIVIDUAL_COLUMNS, Individual, organization_id).where(
            Individual.id.in_(chunk)
        )
        for row in await session.execute(stmt):
            found[row.id] = row
    return found


async def users(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    found: dict[uuid.UUID, Any] = {}
    for chunk in _chunks(ids):
        stmt = _rows(USER_COLUMNS, User, organization_id).where(User.id.in_(chunk))
        for row in await session.execute(stmt):
            found[row.id] = row
    return found


async def own_users(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """Each individual's own login account (its primary individual), the oldest if several."""
    found: dict[uuid.UUID, Any] = {}
    for chunk in _chunks(individual_ids):
        stmt = (
            _rows(USER_COLUMNS, User, organization_id)
            .where(User.primary_individual_id.in_(chunk), User.state == "active")
            .order_by(User.created_at, User.id)
        )
        for row in await session.execute(stmt):
            found.setdefault(row.primary_individual_id, row)
    return found


async def devices(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Any]]:
    """The active devices that allow notifications (``id``, ``individual_id``, ``type``), by
    individual, oldest first."""
    found: dict[uuid.UUID, list[Any]] = {}
    columns = (UserDevice.id, UserDevice.individual_id, UserDevice.type)
    for chunk in _chunks(individual_ids):
        stmt = (
            _rows(columns, UserDevice, organization_id)
            .where(
                UserDevice.individual_id.in_(chunk),
                UserDevice.active.is_(True),
                UserDevice.allow_notification.is_(True),
            )
            .order_by(UserDevice.created_at, UserDevice.id)
        )
        for row in await session.execute(stmt):
            found.setdefault(row.individual_id, []).append(row)
    return found
