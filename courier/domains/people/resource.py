"""The people domain: individuals (patients, providers), users (logins), individual groups.

Reading people needs READ (every role); creating and changing them needs MANAGE (admin). An
individual access token sees and may PATCH only its own individual and its own user (the one
whose primary individual it is), and only some of their attributes; it cannot use groups.
"""

from __future__ import annotations

from sqlalchemy import func

from courier.domains.people.repository import individuals_repository, users_repository
from courier.domains.people.schemas import (
    IndividualCreate,
    IndividualGroupCreate,
    IndividualGroupRead,
    IndividualGroupUpdate,
    IndividualRead,
    IndividualUpdate,
    UserCreate,
    UserRead,
    UserUpdate,
)
from courier.domains.people.service import (
    IndividualGroupService,
    IndividualService,
    UserService,
    email_filter_value,
    group_member_filter,
    name_filter,
)
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroup
from courier.models.user import User

CRUD = frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE})

individuals = register(
    ResourceSpec(
        type_name="individuals",
        model=Individual,
        read_schema=IndividualRead,
        create_schema=IndividualCreate,
        update_schema=IndividualUpdate,
        service=IndividualService(),
        ops=CRUD,
        filters=[
            q.enum(
                "filter[account-type]",
                Individual.account_type,
                ["provider", "participant"],
                "Individuals of this account type",
            ),
            q.Filter(
                "filter[name]",
                q.parse_text(),
                name_filter,
                "Individuals whose first, last or preferred name contains this (any case)",
            ),
            q.Filter(
                "filter[email]",
                email_filter_value,
                lambda stmt, value, _ctx: stmt.where(func.lower(Individual.email) == value),
                "Individuals with this email address (any case)",
                schema={"type": "string", "format": "email"},
            ),
        ],
        sorts={
            "last-name": func.lower(Individual.last_name),
            "first-name": func.lower(Individual.first_name),
            "last-modified-time": Individual.last_modified_at,
        },
        default_sort=[("last-name", False), ("first-name", False)],
        repository=individuals_repository,
        individual_ops=frozenset({Op.UPDATE}),
        summaries={
            Op.LIST: "List individuals (patients, providers) of an organization",
            Op.GET: "Get one individual",
            Op.CREATE: "Create an individual (supports the 'extended' JSON field)",
            Op.UPDATE: "Modify an individual ('extended' kept unless explicitly modified)",
        },
        singular="individual",
        tag="people",
    )
)

users = register(
    ResourceSpec(
        type_name="users",
        model=User,
        read_schema=UserRead,
        create_schema=UserCreate,
        update_schema=UserUpdate,
        service=UserService(),
        ops=CRUD,
        filters=[
            q.Filter(
                "filter[email]",
                email_filter_value,
                lambda stmt, value, _ctx: stmt.where(User.email_key == value),
                "Users with this email address (any case)",
                schema={"type": "string", "format": "email"},
            ),
            q.Filter(
                "filter[username]",
                lambda text: q.parse_text()(text).casefold(),
                lambda stmt, value, _ctx: stmt.where(User.username_key == value),
                "The user with this username (any case)",
                schema={"type": "string", "maxLength": 255},
            ),
            q.uuid_eq(
                "filter[individual-id]",
                User.primary_individual_id,
                "Users whose primary individual is this one",
            ),
        ],
        sorts={
            "username": User.username_key,
            "last-name": func.lower(User.last_name),
            "first-name": func.lower(User.first_name),
        },
        default_sort=[("username", False)],
        repository=users_repository,
        individual_ops=frozenset({Op.UPDATE}),
        summaries={
            Op.LIST: "List users (filter[email], filter[individual-id], filter[username])",
            Op.GET: "Get one user",
            Op.CREATE: "Create a user (login account: email, phone, locale, tz, notifications)",
            Op.UPDATE: "Modify a user",
        },
        singular="user",
        tag="people",
    )
)

individual_groups = register(
    ResourceSpec(
        type_name="individual-groups",
        model=IndividualGroup,
        read_schema=IndividualGroupRead,
        create_schema=IndividualGroupCreate,
        update_schema=IndividualGroupUpdate,
        service=IndividualGroupService(),
        ops=CRUD,
        filters=[
            q.contains("filter[name]", IndividualGroup.name, "Groups whose name contains this"),
            q.Filter(
                "filter[individual-id]",
                q.parse_uuid,
                group_member_filter,
                "Groups with this individual among their members",
                schema={"type": "string", "format": "uuid"},
            ),
            q.uuid_eq("filter[parent-id]", IndividualGroup.parent_id, "Sub-groups of this group"),
        ],
        sorts={
            "name": func.lower(IndividualGroup.name),
            "last-modified-time": IndividualGroup.last_modified_at,
        },
        default_sort=[("name", False)],
        summaries={
            Op.LIST: "List individual groups (care teams, cohorts)",
            Op.GET: "Get one individual group",
            Op.CREATE: "Create an individual group (members, leaders, parent group)",
            Op.UPDATE: "Modify an individual group",
        },
        singular="individual group",
        tag="people",
    )
)
