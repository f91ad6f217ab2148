"""The rules of the people domain: individuals, users and individual groups.

References to other rows in a body (``owner-id``, ``primary-individual-id``, ``parent-id``,
``individual-ids``, ``leader-ids``) must name rows of the caller's organization. An id that
names nothing there, whether it does not exist or belongs to another organization, is answered
with 404 whose ``source.pointer`` names the attribute, so ids of other organizations leak
nothing. A malformed UUID in those attributes is a 400 (schema validation).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, func, or_

from courier.core.errors import ApiError, ErrorItem, bad_request, conflict, forbidden
from courier.core.time import utcnow
from courier.domains.people import repository as people_repository
from courier.domains.people.schemas import check_email
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes, kebab
from courier.jsonapi.resource import CrudService
from courier.models.individual import Individual
from courier.models.individual_group import (
    IndividualGroup,
    IndividualGroupLeader,
    IndividualGroupMember,
)
from courier.models.user import User

# What an individual token may change about its own individual and its own user; the rest
# (legal name, birth date, account type, ownership, integration data, verification, state)
# is the organization's to manage.
INDIVIDUAL_SELF_EDITABLE = frozenset({"preferred_name", "photo", "email", "phone", "locale", "tz"})
USER_SELF_EDITABLE = frozenset(
    {
        "notifications",
        "sms_mode",
        "communication_preferences",
        "locale",
        "tz",
        "locale_explicit",
        "tz_explicit",
        "last_sync_time",
    }
)


def unknown_reference(attribute: str, what: str, ident: uuid.UUID) -> ApiError:
    return ApiError(
        404,
        [
            ErrorItem(
                f"{attribute} names no {what} of this organization: {ident}",
                "not-found",
                pointer=f"/data/attributes/{attribute}",
            )
        ],
    )


def check_self_edit(ctx: Context, attrs: WriteAttributes, allowed: frozenset[str]) -> None:
    """An individual token may change only some of its own attributes: 403 for the others."""
    if not ctx.principal.is_individual:
        return
    refused = sorted(kebab(name) for name in attrs.model_fields_set - allowed)
    if refused:
        raise forbidden("an individual access token may not change " + ", ".join(refused))


async def require_user(ctx: Context, ident: uuid.UUID, attribute: str) -> None:
    if not await people_repository.users_repository.existing_ids(ctx, [ident]):
        raise unknown_reference(attribute, "user", ident)


def fold(text: str) -> str:
    """The key under which usernames and emails are compared (case-insensitive)."""
    return text.casefold()


def email_filter_value(text: str) -> str:
    """``filter[email]``: an email address, compared without regard to case."""
    return fold(check_email(text))


# --- individuals -----------------------------------------------------------------------------


def name_filter(stmt: Select[Any], value: str, _ctx: Context) -> Select[Any]:
    """Case-insensitive substring of the first, last or preferred name."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped.lower()}%"
    return stmt.where(
        or_(
            *(
                func.lower(column).like(pattern, escape="\\")
                for column in (
                    Individual.first_name,
                    Individual.last_name,
                    Individual.preferred_name,
                )
            )
        )
    )


class IndividualService(CrudService[Individual]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Individual:
        values = attrs.model_dump()
        if values["owner_id"] is not None:
            await require_user(ctx, values["owner_id"], "owner-id")
        individual = Individual(organization_id=ctx.organization_id, **values)
        ctx.session.add(individual)
        return individual

    async def update(self, ctx: Context, obj: Individual, attrs: WriteAttributes) -> Individual:
        check_self_edit(ctx, attrs, INDIVIDUAL_SELF_EDITABLE)
        given = attrs.given()
        if given.get("owner_id") is not None:
            await require_user(ctx, given["owner_id"], "owner-id")
        for name, value in given.items():
            setattr(obj, name, value)
        return obj


# --- users -----------------------------------------------------------------------------------


class UserService(CrudService[User]):
    """Users: usernames and emails are unique per organization, compared case-insensitively.

    The service checks first (a clear 409 naming the attribute); unique constraints on the
    folded columns are the backstop when two requests race.
    """

    async def _require_unique(
        self, ctx: Context, column: Any, key: str, attribute: str, exclude: uuid.UUID | None
    ) -> None:
        if await people_repository.user_key_taken(ctx, column, key, exclude=exclude):
            raise conflict(
                f"{attribute} is already taken in this organization",
                f"duplicate-{attribute}",
                pointer=f"/data/attributes/{attribute}",
            )

    async def create(self, ctx: Context, attrs: WriteAttributes) -> User:
        values = attrs.model_dump()
        values["username_key"] = fold(values["username"])
        values["email_key"] = fold(values["email"]) if values["email"] else None
        await self._require_unique(ctx, User.username_key, values["username_key"], "username", None)
        if values["email_key"] is not None:
            await self._require_unique(ctx, User.email_key, values["email_key"], "email", None)
        if values["primary_individual_id"] is not None:
            pointer = "/data/attributes/primary-individual-id"
            await people_repository.require_individual(
                ctx, values["primary_individual_id"], pointer=pointer
            )
        user = User(organization_id=ctx.organization_id, **values)
        ctx.session.add(user)
        return user

    async def update(self, ctx: Context, obj: User, attrs: WriteAttributes) -> User:
        check_self_edit(ctx, attrs, USER_SELF_EDITABLE)
        given = attrs.given()
        if "username" in given:
            key = fold(given["username"])
            if key != obj.username_key:
                await self._require_unique(ctx, User.username_key, key, "username", obj.id)
            obj.username_key = key
        if "email" in given:
            email_key = fold(given["email"]) if given["email"] else None
            if email_key != obj.email_key:
                if email_key is not None:
                    await self._require_unique(ctx, User.email_key, email_key, "email", obj.id)
                given.setdefault("email_verified", False)
            obj.email_key = email_key
        if "phone" in given and given["phone"] != obj.phone:
            given.setdefault("phone_verified", False)
            given.setdefault("phone_unsubscribed", False)
        if given.get("primary_individual_id") is not None:
            pointer = "/data/attributes/primary-individual-id"
            await people_repository.require_individual(
                ctx, given["primary_individual_id"], pointer=pointer
            )
        for name, value in given.items():
            setattr(obj, name, value)
        return obj


# --- individual groups -----------------------------------------------------------------------


def group_member_filter(stmt: Select[Any], value: uuid.UUID, ctx: Context) -> Select[Any]:
    """Groups that have this individual among their members (leaders are members too)."""
    return stmt.where(IndividualGroup.id.in_(people_repository.groups_with_member(ctx, value)))


class IndividualGroupService(CrudService[IndividualGroup]):
    """Care teams and cohorts.

    Every leader is also a member: ``leader-ids`` must be a subset of ``individual-ids`` (of the
    request, or of the group's current members when only ``leader-ids`` is sent), else 400. So
    "groups containing an individual" covers its leaders, and a member list is the whole team.
    A group's ``parent-id`` may not make it its own ancestor (400).
    """

    async def _check_parent(
        self, ctx: Context, group: IndividualGroup | None, parent_id: uuid.UUID
    ) -> None:
        seen: set[uuid.UUID] = set()
        current: uuid.UUID | None = parent_id
        while current is not None:
            if group is not None and current == group.id:
                raise bad_request(
                    "parent-id would make the group its own ancestor",
                    "group-cycle",
                    pointer="/data/attributes/parent-id",
                )
            if current in seen:  # an existing loop above us: never extend it
                break
            seen.add(current)
            row = await people_repository.group_parent(ctx, current)
            if row is None:
                raise unknown_reference("parent-id", "individual group", parent_id)
            if group is None:  # a new group has no descendants: any existing parent will do
                return
            current = row.parent_id

    @staticmethod
    def _check_leaders(members: Iterable[uuid.UUID], leaders: Iterable[uuid.UUID]) -> None:
        member_set = set(members)
        outside = [ident for ident in leaders if ident not in member_set]
        if outside:
            raise bad_request(
                "leader-ids must also be members (in individual-ids): "
                + ", ".join(str(i) for i in outside),
                "leader-not-member",
                pointer="/data/attributes/leader-ids",
            )

    async def _replace(
        self,
        ctx: Context,
        model: people_repository.GroupLink,
        group: IndividualGroup,
        current: Sequence[uuid.UUID],
        wanted: Sequence[uuid.UUID],
    ) -> bool:
        wanted_set, current_set = set(wanted), set(current)
        removed = [ident for ident in current if ident not in wanted_set]
        added = [ident for ident in wanted if ident not in current_set]
        if removed:
            await people_repository.remove_group_links(ctx, model, group.id, removed)
        for ident in added:
            ctx.session.add(
                model(organization_id=ctx.organization_id, group_id=group.id, individual_id=ident)
            )
        return bool(removed or added)

    def _group_changed(
        self,
        ctx: Context,
        verb: str,
        group: IndividualGroup,
        attrs: WriteAttributes,
        added: Sequence[uuid.UUID],
    ) -> Changed[IndividualGroup]:
        """The group's change; its event names the individuals who joined (``added-individual-
        ids``): an announcer for ``individual-shared`` acts on them (docs/ANNOUNCERS.md)."""
        joined = list(dict.fromkeys(str(ident) for ident in added))
        data = {"added-individual-ids": joined} if joined else None
        return Changed(group, [self.change(ctx, verb, group, attrs.model_fields_set, data=data)])

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[IndividualGroup]:
        values = attrs.model_dump()
        members: list[uuid.UUID] = values.pop("individual_ids")
        leaders: list[uuid.UUID] = values.pop("leader_ids")
        self._check_leaders(members, leaders)
        if values["parent_id"] is not None:
            await self._check_parent(ctx, None, values["parent_id"])
        await people_repository.require_individuals(ctx, members, "/data/attributes/individual-ids")
        group = IndividualGroup(id=uuid.uuid4(), organization_id=ctx.organization_id, **values)
        ctx.session.add(group)
        # The group row must exist before rows that refer to it (PostgreSQL checks at once).
        await ctx.session.flush()
        await self._replace(ctx, IndividualGroupMember, group, [], members)
        await self._replace(ctx, IndividualGroupLeader, group, [], leaders)
        return self._group_changed(ctx, "created", group, attrs, members)

    async def update(
        self, ctx: Context, obj: IndividualGroup, attrs: WriteAttributes
    ) -> Changed[IndividualGroup]:
        given = attrs.given()
        added: list[uuid.UUID] = []
        members_given = given.pop("individual_ids", None)
        leaders_given = given.pop("leader_ids", None)
        if given.get("parent_id") is not None:
            await self._check_parent(ctx, obj, given["parent_id"])
        changed = False
        if members_given is not None or leaders_given is not None:
            current_members = (
                await people_repository.group_links(ctx, IndividualGroupMember, [obj.id])
            )[obj.id]
            current_leaders = (
                await people_repository.group_links(ctx, IndividualGroupLeader, [obj.id])
            )[obj.id]
            members = current_members if members_given is None else members_given
            leaders = current_leaders if leaders_given is None else leaders_given
            self._check_leaders(members, leaders)
            known = set(current_members)
            added = [i for i in members if i not in known]
            await people_repository.require_individuals(
                ctx, added, "/data/attributes/individual-ids"
            )
            # Leaders go first so no moment has a leader outside the members.
            changed |= await self._replace(
                ctx, IndividualGroupLeader, obj, current_leaders, leaders
            )
            changed |= await self._replace(
                ctx, IndividualGroupMember, obj, current_members, members
            )
        for name, value in given.items():
            setattr(obj, name, value)
        if changed:
            obj.last_modified_at = utcnow()
        return self._group_changed(ctx, "updated", obj, attrs, added)

    async def present(self, ctx: Context, rows: Sequence[IndividualGroup]) -> list[dict[str, Any]]:
        """Two queries for any number of groups: members, then leaders."""
        ids = [row.id for row in rows]
        members = await people_repository.group_links(ctx, IndividualGroupMember, ids)
        leaders = await people_repository.group_links(ctx, IndividualGroupLeader, ids)
        read = self.spec.read_schema
        out = []
        for row in rows:
            member_ids = members.get(row.id, [])
            leader_ids = leaders.get(row.id, [])
            attributes = read.model_validate(
                {
                    "name": row.name,
                    "organization_id": row.organization_id,
                    "parent_id": row.parent_id,
                    "individuals": [{"id": i} for i in member_ids],
                    "individual_ids": member_ids,
                    "individuals_count": len(member_ids),
                    "leaders": [{"id": i} for i in leader_ids],
                    "leader_ids": leader_ids,
                    "last_sync_time": row.last_sync_time,
                    "last_modified_time": row.last_modified_at,
                }
            )
            out.append(attributes.model_dump(mode="json", by_alias=True))
        return out
