"""Purging an individual from the people tables: the last hook, since every domain's rows
refer to the individual.

- Group memberships and leaderships are deleted; the groups stay.
- Users whose primary individual it is are deleted: such a user is the person's own login, and
  holds their name, email and phone. Individuals that such a user managed (``owner_id``, e.g. a
  child's record managed by a parent) stay, with the owner unlinked.
- The individual row itself is deleted.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.tenancy import scoped
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroupLeader, IndividualGroupMember
from courier.models.user import User
from courier.purge import ArchiveWriter, delete_rows, purge_hook, update_rows

PEOPLE_ORDER = 1000


@purge_hook("individual", name="people", order=PEOPLE_ORDER)
async def purge_people(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    counts["individual_group_leaders"] = await delete_rows(
        session,
        organization_id,
        IndividualGroupLeader,
        IndividualGroupLeader.individual_id == individual_id,
        archive,
    )
    counts["individual_group_members"] = await delete_rows(
        session,
        organization_id,
        IndividualGroupMember,
        IndividualGroupMember.individual_id == individual_id,
        archive,
    )
    users = list(
        (
            await session.execute(
                scoped(
                    select(User.id).where(User.primary_individual_id == individual_id),
                    User,
                    organization_id,
                )
            )
        ).scalars()
    )
    counts["individuals.owner-unlinked"] = await update_rows(
        session,
        organization_id,
        Individual,
        Individual.owner_id.in_(users),
        {"owner_id": None},
        archive,
    )
    counts["users"] = await delete_rows(
        session, organization_id, User, User.primary_individual_id == individual_id, archive
    )
    counts["individuals"] = await delete_rows(
        session, organization_id, Individual, Individual.id == individual_id, archive
    )
    return counts
