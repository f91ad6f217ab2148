"""All SQL of multicasts, tenant-scoped: the rows, who a filter reaches, and the recipients
(the targets of the multicasts' fan-out, ``fanout_targets`` of kind ``multicasts``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Select, or_, select
from sqlalchemy import String as SqlString
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.domains.messaging.repository import chunks
from courier.models.fanout import Fanout, FanoutTarget
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroupMember
from courier.models.job import Job, JobState
from courier.models.multicast import Multicast
from courier.models.template import Template
from courier.models.user import User

FANOUT_KIND = "multicasts"


async def load_multicast(
    session: AsyncSession, organization_id: uuid.UUID, ident: uuid.UUID, *, lock: bool = False
) -> Multicast | None:
    stmt = scoped(select(Multicast), Multicast, organization_id).where(Multicast.id == ident)
    if lock:
        stmt = stmt.with_for_update()
    found: Multicast | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return found


async def template_of(session: AsyncSession, multicast: Multicast) -> Template | None:
    """The multicast's template (None: deleted since)."""
    stmt = scoped(select(Template), Template, multicast.organization_id).where(
        Template.id == multicast.template_id
    )
    found: Template | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def failed_jobs(
    session: AsyncSession,
    organization_id: uuid.UUID,
    kinds: Sequence[str],
    dedupe_keys: tuple[str, str],
) -> list[Job]:
    """The multicast's jobs that used all their attempts, locked (resume): ``dedupe_keys`` is
    its plan job's key and a LIKE pattern of its chunk jobs' keys."""
    exact, pattern = dedupe_keys
    stmt = (
        scoped(select(Job), Job, organization_id)
        .where(
            Job.kind.in_(list(kinds)),
            Job.state == JobState.FAILED.value,
            or_(Job.dedupe_key == exact, Job.dedupe_key.like(pattern)),
        )
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())


# --- who a filter reaches --------------------------------------------------------------------


async def everyone(
    session: AsyncSession, organization_id: uuid.UUID, account_type: str | None
) -> list[uuid.UUID]:
    """The organization's individuals (of one account type), in id order."""
    stmt = scoped(select(Individual.id), Individual, organization_id)
    if account_type is not None:
        stmt = stmt.where(Individual.account_type == account_type)
    return list((await session.execute(stmt.order_by(Individual.id))).scalars())


async def members_of(
    session: AsyncSession, organization_id: uuid.UUID, group_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    if not group_ids:
        return set()
    stmt = scoped(
        select(IndividualGroupMember.individual_id), IndividualGroupMember, organization_id
    ).where(IndividualGroupMember.group_id.in_(list(group_ids)))
    return set((await session.execute(stmt)).scalars())


async def existing(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    stmt = scoped(select(Individual.id), Individual, organization_id)
    for chunk in chunks(ids):
        found.update((await session.execute(stmt.where(Individual.id.in_(chunk)))).scalars())
    return found


async def primary_individuals(
    session: AsyncSession, organization_id: uuid.UUID, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """user -> its primary individual (users without one are left out)."""
    found: dict[uuid.UUID, uuid.UUID] = {}
    columns = cast("Select[Any]", select(User.id, User.primary_individual_id))
    stmt = scoped(columns, User, organization_id).where(User.primary_individual_id.is_not(None))
    for chunk in chunks(user_ids):
        for user, individual in await session.execute(stmt.where(User.id.in_(chunk))):
            found[user] = individual
    return found


async def existing_users(
    session: AsyncSession, organization_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    stmt = scoped(select(User.id), User, organization_id)
    for chunk in chunks(ids):
        found.update((await session.execute(stmt.where(User.id.in_(chunk)))).scalars())
    return found


async def names(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_ids: Iterable[uuid.UUID],
    user_ids: Iterable[uuid.UUID],
) -> tuple[dict[uuid.UUID, tuple[str, str]], dict[uuid.UUID, str]]:
    """(individual -> (first, last name), user -> username) for a page of multicasts."""
    people: dict[uuid.UUID, tuple[str, str]] = {}
    users: dict[uuid.UUID, str] = {}
    wanted = list(dict.fromkeys(individual_ids))
    if wanted:
        columns = cast(
            "Select[Any]", select(Individual.id, Individual.first_name, Individual.last_name)
        )
        stmt = scoped(columns, Individual, organization_id).where(Individual.id.in_(wanted))
        for ident, first, last in await session.execute(stmt):
            people[ident] = (first, last)
    logins = list(dict.fromkeys(user_ids))
    if logins:
        columns = cast("Select[Any]", select(User.id, User.username))
        stmt = scoped(columns, User, organization_id).where(User.id.in_(logins))
        for ident, username in await session.execute(stmt):
            users[ident] = username
    return people, users


# --- recipients ------------------------------------------------------------------------------


async def planned_ids(
    session: AsyncSession, organization_id: uuid.UUID, fanout_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """fan-out -> its recipients, in id order (include-individual-ids)."""
    found: dict[uuid.UUID, list[uuid.UUID]] = {ident: [] for ident in fanout_ids}
    if not fanout_ids:
        return found
    columns = cast("Select[Any]", select(FanoutTarget.fanout_id, FanoutTarget.target_id))
    stmt = (
        scoped(columns, FanoutTarget, organization_id)
        .where(FanoutTarget.fanout_id.in_(list(fanout_ids)))
        .order_by(FanoutTarget.fanout_id, FanoutTarget.target_id)
    )
    for fanout, target in await session.execute(stmt):
        found[fanout].append(target)
    return found


def recipients_statement(organization_id: uuid.UUID, fanout_id: uuid.UUID | None) -> Select[Any]:
    """The recipients of one multicast's fan-out (none before it was started)."""
    stmt = scoped(select(FanoutTarget), FanoutTarget, organization_id)
    if fanout_id is None:
        return stmt.where(FanoutTarget.fanout_id.is_(None))
    return stmt.where(FanoutTarget.fanout_id == fanout_id)


def received_statement(organization_id: uuid.UUID, individual_id: uuid.UUID) -> Select[Any]:
    """The multicasts planned for an individual (user-multicasts)."""
    fanouts = (
        scoped(select(Fanout.subject_id), Fanout, organization_id)
        .join(FanoutTarget, FanoutTarget.fanout_id == Fanout.id)
        .where(Fanout.kind == FANOUT_KIND, FanoutTarget.target_id == individual_id)
    )
    return scoped(select(Multicast), Multicast, organization_id).where(Multicast.id.in_(fanouts))


async def targets_for(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    multicast_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, FanoutTarget]:
    """multicast -> the individual's target row in its fan-out (a page of user-multicasts)."""
    if not multicast_ids:
        return {}
    columns = cast("Select[Any]", select(Fanout.subject_id, FanoutTarget))
    stmt = (
        scoped(columns, Fanout, organization_id)
        .join(FanoutTarget, FanoutTarget.fanout_id == Fanout.id)
        .where(
            Fanout.kind == FANOUT_KIND,
            Fanout.subject_id.in_(list(multicast_ids)),
            FanoutTarget.target_id == individual_id,
        )
    )
    return {subject: target for subject, target in await session.execute(stmt)}


# --- purges ----------------------------------------------------------------------------------


def recipient_rows_of(organization_id: uuid.UUID, individual_id: uuid.UUID) -> Any:
    """The condition on ``fanout_targets`` naming an individual as a multicast's recipient."""
    fanouts = scoped(select(Fanout.id), Fanout, organization_id).where(Fanout.kind == FANOUT_KIND)
    return (FanoutTarget.target_id == individual_id) & FanoutTarget.fanout_id.in_(fanouts)


async def multicasts_naming(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[Multicast]:
    """The multicasts sent to the individual by name (individual-id, individual-ids)."""
    stmt = scoped(select(Multicast), Multicast, organization_id).where(
        (Multicast.individual_id == individual_id)
        | sql_cast(Multicast.individual_ids, SqlString).like(f"%{individual_id}%")
    )
    return list((await session.execute(stmt)).scalars())
