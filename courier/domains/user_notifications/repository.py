"""The SQL of user notifications (tenant-scoped): what an individual may see, the look-ups
``notify_many`` makes a page of targets at a time (dedupe keys, individuals, users, devices,
consents, badge totals, one IN list per 500), the notifications' multi-row INSERT, withdrawing
and acknowledging, the queued ladder steps an acknowledgement cancels, what the sending jobs
read (a batch's notifications and push deliveries, the devices pushed to), and the
notification a ladder's phone call names."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Row, Select, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.bulk import insert_rows
from courier.core.tenancy import ids_where, scoped, unscoped
from courier.jsonapi.repository import CHUNK
from courier.models.delivery import Delivery, SandboxRecord
from courier.models.individual import Individual
from courier.models.job import Job, JobState
from courier.models.messaging import BadgeCount
from courier.models.push_device import UserDevice
from courier.models.user import User
from courier.models.user_consent import UserConsent
from courier.models.user_notification import UserNotification

M = TypeVar("M")
T = TypeVar("T")


def own_notifications(stmt: Select[Any], principal: Any) -> Select[Any]:
    """An individual token sees the notifications addressed to it."""
    return stmt.where(UserNotification.individual_id == principal.individual_id)


def scoped_rows(stmt: Any, model: Any, organization_id: uuid.UUID) -> Select[Any]:
    """:func:`scoped` for a statement of several columns (typed as any select)."""
    return scoped(cast("Select[Any]", stmt), model, organization_id)


def _among(key: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``key IN (values)`` with the values written into the statement (quoted by the
    dialect), not bound: the server plans each batch with its values and the table as it is
    then. A batch's look-ups run once per chunk on tables a multicast is filling; bound, the
    plan PostgreSQL kept for the prepared statement (chosen while the table was nearly empty,
    before autovacuum's first ANALYZE) read every row of the organization and compared it with
    each of the 250 parameters in turn: ~20 ms per chunk at 10,000 rows, where the planned
    values are a hash lookup."""
    among: ColumnElement[bool] = key.in_(
        bindparam(None, list(values), expanding=True, literal_execute=True)
    )
    return among


def _chunks(values: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


# --- what notify_many reads ------------------------------------------------------------------


async def by_dedupe_keys(
    session: AsyncSession, organization_id: uuid.UUID, keys: Sequence[str]
) -> dict[str, UserNotification]:
    """The notifications made earlier under any of ``keys``, by key."""
    found: dict[str, UserNotification] = {}
    for chunk in _chunks(keys):
        stmt = scoped(
            select(UserNotification).where(UserNotification.dedupe_key.in_(chunk)),
            UserNotification,
            organization_id,
        )
        for row in (await session.execute(stmt)).scalars():
            assert row.dedupe_key is not None
            found[row.dedupe_key] = row
    return found


async def rows_by_id(
    session: AsyncSession, organization_id: uuid.UUID, model: type[M], ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, M]:
    """The organization's rows of ``model`` (individuals, users) among ``ids``, by id."""
    table: Any = model
    found: dict[uuid.UUID, M] = {}
    for chunk in _chunks(ids):
        stmt = scoped(select(table).where(table.id.in_(chunk)), table, organization_id)
        for row in (await session.execute(stmt)).scalars():
            found[row.id] = row
    return found


async def own_users(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, User]:
    """Each individual's own login account (its primary individual), the oldest if several."""
    found: dict[uuid.UUID, User] = {}
    for chunk in _chunks(individual_ids):
        stmt = scoped(
            select(User)
            .where(User.primary_individual_id.in_(chunk), User.state == "active")
            .order_by(User.created_at, User.id),
            User,
            organization_id,
        )
        for row in (await session.execute(stmt)).scalars():
            assert row.primary_individual_id is not None
            found.setdefault(row.primary_individual_id, row)
    return found


async def notifiable_devices(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[UserDevice]]:
    """The active devices that allow notifications, by individual."""
    found: dict[uuid.UUID, list[UserDevice]] = {}
    for chunk in _chunks(individual_ids):
        stmt = scoped(
            select(UserDevice)
            .where(
                UserDevice.individual_id.in_(chunk),
                UserDevice.active.is_(True),
                UserDevice.allow_notification.is_(True),
            )
            .order_by(UserDevice.created_at, UserDevice.id),
            UserDevice,
            organization_id,
        )
        for row in (await session.execute(stmt)).scalars():
            found.setdefault(row.individual_id, []).append(row)
    return found


async def sms_consented(
    session: AsyncSession, organization_id: uuid.UUID, users: Sequence[User]
) -> set[uuid.UUID]:
    """The users with an accepted SMS consent for the phone they have now."""
    wanted = [user for user in users if user.phone]
    allowed: set[uuid.UUID] = set()
    for chunk in _chunks(wanted):
        stmt = scoped_rows(
            select(UserConsent.user_id, UserConsent.target_id).where(
                UserConsent.user_id.in_([user.id for user in chunk]),
                UserConsent.type == "sms",
                UserConsent.state == "accepted",
            ),
            UserConsent,
            organization_id,
        )
        phones = {user.id: user.phone for user in chunk}
        for user_id, target in (await session.execute(stmt)).all():
            if phones.get(user_id) == target:
                allowed.add(user_id)
    return allowed


async def badge_totals(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """What the app's badge shows for each individual: the messaging badge counts plus the
    notifications not yet acknowledged."""
    totals: dict[uuid.UUID, int] = {}
    for chunk in _chunks(individual_ids):
        badges = scoped_rows(
            select(BadgeCount.individual_id, func.sum(BadgeCount.count))
            .where(_among(BadgeCount.individual_id, chunk))
            .group_by(BadgeCount.individual_id),
            BadgeCount,
            organization_id,
        )
        for ident, total in (await session.execute(badges)).all():
            totals[ident] = totals.get(ident, 0) + int(total or 0)
        unread = scoped_rows(
            select(UserNotification.individual_id, func.count())
            .where(
                _among(UserNotification.individual_id, chunk),
                UserNotification.acknowledged.is_(False),
                UserNotification.active.is_(True),
            )
            .group_by(UserNotification.individual_id),
            UserNotification,
            organization_id,
        )
        for ident, count in (await session.execute(unread)).all():
            totals[ident] = totals.get(ident, 0) + int(count or 0)
    return totals


# --- notify_many's hot path: column rows, not ORM objects (a multicast's chunk is hundreds of
# recipients: no identity map, no instance state, only the columns a notification reads). Each
# row answers the attributes the service reads of an Individual, a User or a UserDevice.

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


def _column_rows(columns: Sequence[Any], model: Any, organization_id: uuid.UUID) -> Select[Any]:
    return scoped(cast("Select[Any]", select(*columns)), model, organization_id)


async def _column_rows_by(
    session: AsyncSession,
    organization_id: uuid.UUID,
    model: Any,
    columns: Sequence[Any],
    key: Any,
    values: Sequence[Any],
) -> dict[Any, Any]:
    """The organization's rows of ``model`` (``columns``) whose ``key`` is among ``values``,
    by that key: one statement per 500 values."""
    found: dict[Any, Any] = {}
    for chunk in _chunks(values):
        stmt = _column_rows(columns, model, organization_id).where(_among(key, chunk))
        for row in await session.execute(stmt):
            found[getattr(row, key.key)] = row
    return found


async def earlier_notifications(
    session: AsyncSession, organization_id: uuid.UUID, keys: Sequence[str]
) -> dict[str, Any]:
    """dedupe key -> the notification made with it before (``id``, ``channels``)."""
    columns = (UserNotification.dedupe_key, UserNotification.id, UserNotification.channels)
    key = UserNotification.dedupe_key
    return await _column_rows_by(session, organization_id, UserNotification, columns, key, keys)


async def recipient_individuals(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    columns = INDIVIDUAL_COLUMNS
    return await _column_rows_by(session, organization_id, Individual, columns, Individual.id, ids)


async def recipient_users(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    return await _column_rows_by(session, organization_id, User, USER_COLUMNS, User.id, ids)


async def recipient_own_users(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """Each individual's own login account (its primary individual), the oldest if several."""
    found: dict[uuid.UUID, Any] = {}
    for chunk in _chunks(individual_ids):
        stmt = (
            _column_rows(USER_COLUMNS, User, organization_id)
            .where(User.primary_individual_id.in_(chunk), User.state == "active")
            .order_by(User.created_at, User.id)
        )
        for row in await session.execute(stmt):
            found.setdefault(row.primary_individual_id, row)
    return found


async def recipient_devices(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Any]]:
    """The active devices that allow notifications (``id``, ``individual_id``, ``type``), by
    individual, oldest first."""
    found: dict[uuid.UUID, list[Any]] = {}
    columns = (UserDevice.id, UserDevice.individual_id, UserDevice.type)
    for chunk in _chunks(individual_ids):
        stmt = (
            _column_rows(columns, UserDevice, organization_id)
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


# --- writing ---------------------------------------------------------------------------------


async def insert_notifications(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """One multi-row INSERT of plain rows (no ORM objects: a multicast's chunk is hundreds of
    them). Through the connection: a Core insert names its organization in every row, so it
    cannot leak across tenants, and it is not a query the tenancy guard reasons about."""
    connection = await session.connection()
    await insert_rows(connection, cast(Any, UserNotification.__table__), rows)


async def active_of_source(
    session: AsyncSession, organization_id: uuid.UUID, source: str
) -> list[Row[Any]]:
    """The active notifications of ``source``: (id, individual_id) rows."""
    stmt = scoped_rows(
        select(UserNotification.id, UserNotification.individual_id).where(
            UserNotification.source == source, UserNotification.active.is_(True)
        ),
        UserNotification,
        organization_id,
    )
    return list((await session.execute(stmt)).all())


async def deactivate(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Make the notifications ``ids`` inactive (one UPDATE per 500)."""
    for chunk in _chunks(ids):
        await session.execute(
            scoped(
                update(UserNotification).where(UserNotification.id.in_(chunk)),
                UserNotification,
                organization_id,
            )
            .values(active=False, last_modified_at=now)
            .execution_options(synchronize_session=False)
        )


# --- reading and acknowledging ---------------------------------------------------------------


async def user_names(
    session: AsyncSession, organization_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str | None, str | None]]:
    """Each user's first and last name."""
    if not user_ids:
        return {}
    stmt = scoped_rows(
        select(User.id, User.first_name, User.last_name).where(User.id.in_(user_ids)),
        User,
        organization_id,
    )
    return {r.id: (r.first_name, r.last_name) for r in await session.execute(stmt)}


async def unacknowledged_before(
    session: AsyncSession, organization_id: uuid.UUID, row: UserNotification
) -> list[UserNotification]:
    """The individual's other unacknowledged notifications made no later than ``row``
    (PostgreSQL: locked, as they are about to be acknowledged)."""
    stmt = scoped(
        select(UserNotification).where(
            UserNotification.individual_id == row.individual_id,
            UserNotification.acknowledged.is_(False),
            UserNotification.id != row.id,
            UserNotification.created_at <= row.created_at,
        ),
        UserNotification,
        organization_id,
    )
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).scalars())


async def cancel_queued_jobs(
    session: AsyncSession, organization_id: uuid.UUID, dedupe_keys: Sequence[str], now: datetime
) -> None:
    """Cancel the still-queued jobs of ``dedupe_keys`` (a stopped ladder's steps)."""
    await session.execute(
        scoped(
            update(Job).where(Job.dedupe_key.in_(dedupe_keys), Job.state == JobState.QUEUED.value),
            Job,
            organization_id,
        )
        .values(state=JobState.CANCELLED.value, finished_at=now)
        .execution_options(synchronize_session=False)
    )


# --- sending (the jobs) ------------------------------------------------------------------------


async def load_notification(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID, *, for_update: bool = False
) -> UserNotification | None:
    """The notification, fresh from the database (``for_update``: locked on PostgreSQL)."""
    stmt = scoped(
        select(UserNotification).where(UserNotification.id == ident),
        UserNotification,
        organization_id,
    ).execution_options(populate_existing=True)
    if for_update and session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    found: UserNotification | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def notifications_by_id(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, UserNotification]:
    """The notifications ``ids`` (one IN list: a batch of deliveries, a page of logs)."""
    stmt = scoped(
        select(UserNotification).where(_among(UserNotification.id, ids)),
        UserNotification,
        organization_id,
    )
    return {row.id: row for row in (await session.execute(stmt)).scalars()}


async def devices_by_id(
    session: AsyncSession, organization_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, UserDevice]:
    """The devices ``ids`` (whatever their state: the sender decides)."""
    stmt = scoped(select(UserDevice).where(_among(UserDevice.id, ids)), UserDevice, organization_id)
    return {row.id: row for row in (await session.execute(stmt)).scalars()}


async def pending_pushes(
    session: AsyncSession,
    organization_id: uuid.UUID,
    batch_id: uuid.UUID,
    *,
    resource_type: str,
    channel: str,
) -> list[uuid.UUID]:
    """The push deliveries (``resource_type``, ``channel``) of a ``notify_many`` call not yet
    sent."""
    notifications = scoped(
        select(UserNotification.id).where(UserNotification.batch_id == batch_id),
        UserNotification,
        organization_id,
    )
    stmt = scoped(
        select(Delivery.id).where(
            Delivery.resource_type == resource_type,
            Delivery.channel == channel,
            Delivery.resource_id.in_(notifications.scalar_subquery()),
            Delivery.state.in_(["accepted", "queued", "sending"]),
        ),
        Delivery,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def undispatched(
    session: AsyncSession, organization_id: uuid.UUID, batch_id: uuid.UUID
) -> list[UserNotification]:
    """The notifications of a ``notify_many`` call whose SMS and emails are not queued yet."""
    stmt = scoped(
        select(UserNotification).where(
            UserNotification.batch_id == batch_id, UserNotification.dispatched_at.is_(None)
        ),
        UserNotification,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def notification_of_call(session: AsyncSession, ident: uuid.UUID) -> UserNotification | None:
    """The notification a ladder's phone call names (any organization: the voice service's
    signed webhook names no organization)."""
    stmt = unscoped(
        select(UserNotification).where(UserNotification.id == ident),
        "a call webhook signed by the voice service names its notification",
    )
    found: UserNotification | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


# --- purging an individual (courier.domains.user_notifications.purge) ------------------------


async def notification_ids_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[uuid.UUID]:
    return await ids_where(session, organization_id, UserNotification.individual_id, individual_id)


async def device_tokens_of(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[str]:
    stmt = scoped(
        select(UserDevice.token).where(UserDevice.individual_id == individual_id),
        UserDevice,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars())


async def delete_phone_screens(session: AsyncSession, tokens: Sequence[str]) -> int:
    """Delete what the push sandbox kept of the pushes to these device tokens (one DELETE per
    500 tokens); how many rows went."""
    removed = 0
    for start in range(0, len(tokens), 500):
        result = await session.execute(
            unscoped(
                delete(SandboxRecord).where(
                    SandboxRecord.kind == "push",
                    SandboxRecord.collection == "shown",
                    SandboxRecord.key.in_(tokens[start : start + 500]),
                ),
                "the push sandbox's records belong to no organization; keyed by device token",
            ).execution_options(synchronize_session=False)
        )
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return removed
