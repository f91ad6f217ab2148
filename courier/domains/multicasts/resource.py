"""``multicasts`` (list, get, create; cancel, resume, get-recipients), ``user-multicasts``
(list, create) and the one-recipient ``individuals/{id}/multicast``, ``users/{id}/multicast``."""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.multicasts.schemas import (
    MULTICAST_TYPE,
    RECIPIENT_STATES,
    RECIPIENT_TYPE,
    USER_MULTICAST_TYPE,
    IndividualMulticastBody,
    MulticastCreate,
    MulticastRead,
    RecipientRead,
    TaskRead,
    UserMulticastBody,
    UserMulticastCreate,
    UserMulticastRead,
)
from courier.domains.multicasts.service import multicasts as service
from courier.domains.multicasts.service import user_multicast_service
from courier.domains.people.resource import individuals, users
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, EmptyBody, Listing
from courier.jsonapi.resource import Op, ResourceSpec, add_actions, register
from courier.models.fanout import FanoutTarget
from courier.models.multicast import Multicast

INCLUDES = {
    "include-individual-group": q.flag(
        "true: embed the group (filter-type group) with its members and leaders"
    ),
    "include-individual-ids": q.flag("true: list who it was planned for (individual-ids)"),
}

multicasts = register(
    ResourceSpec(
        type_name=MULTICAST_TYPE,
        model=Multicast,
        read_schema=MulticastRead,
        create_schema=MulticastCreate,
        service=service,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.time_window("created-at", Multicast.created_at),
            q.uuid_eq(
                "individual-group-id",
                Multicast.individual_group_id,
                "Multicasts sent to this group (filter-type group)",
            ),
            q.eq(
                "template-id",
                Multicast.template_ref,
                q.parse_text(255),
                "Multicasts of this template, as they named it (its id or its name)",
                schema={"type": "string", "maxLength": 255},
            ),
        ],
        extra_params=dict(INCLUDES),
        sorts={"created-at": Multicast.created_at},
        default_sort=[("created-at", True)],
        permissions={Op.CREATE: Permission.COMMUNICATE},
        summaries={
            Op.LIST: "List multicasts, newest first (filter[cmp-created-at], individual-group-id, "
            "template-id, include-individual-group, include-individual-ids)",
            Op.GET: "Get one multicast with its status and counts",
            Op.CREATE: "Send a templated notification to a filtered set of people (filter-type, "
            "filter-value, template-id, data)",
        },
        singular="multicast",
        tag="notifications",
        actions=[
            ActionSpec(
                "cancel",
                service.do_cancel,
                summary="Cancel a multicast: recipients not reached yet are skipped",
                body=EmptyBody,
                permission=Permission.COMMUNICATE,
                loader=service.load_unlocked,
            ),
            ActionSpec(
                "resume",
                service.do_resume,
                summary="Re-queue a multicast's jobs that gave up (an outage)",
                body=EmptyBody,
                permission=Permission.COMMUNICATE,
            ),
            ActionSpec(
                "get-recipients",
                service.do_get_recipients,
                summary="Each recipient of a multicast with its outcome",
                method="GET",
                permission=Permission.READ,
                listing=Listing(
                    RECIPIENT_TYPE,
                    RecipientRead,
                    order=lambda: [FanoutTarget.target_id],
                    filters=[
                        q.enum(
                            "filter[state]",
                            FanoutTarget.state,
                            RECIPIENT_STATES,
                            "Recipients in this state",
                        )
                    ],
                    present=service.present_recipients,
                ),
            ),
        ],
    )
)


user_multicasts = register(
    ResourceSpec(
        type_name=USER_MULTICAST_TYPE,
        model=Multicast,
        read_schema=UserMulticastRead,
        service=user_multicast_service,
        ops=frozenset(),
        singular="user multicast",
        tag="notifications",
        actions=[
            ActionSpec(
                "",
                user_multicast_service.do_list_user_multicasts,
                summary="Multicasts received by an individual (individual-id required with an "
                "API key)",
                method="GET",
                on="collection",
                permission=Permission.READ,
                individuals=True,
                listing=Listing(
                    USER_MULTICAST_TYPE,
                    UserMulticastRead,
                    order=lambda: [Multicast.created_at.desc(), Multicast.id],
                    present=user_multicast_service.present_user_multicasts,
                ),
                operation_id=f"list-v1-{USER_MULTICAST_TYPE}",
            ),
            ActionSpec(
                "",
                user_multicast_service.do_create_user_multicast,
                summary="Multicast a template to individual-ids and/or individual-group-ids; "
                "returns task-id",
                body=UserMulticastCreate,
                on="collection",
                permission=Permission.COMMUNICATE,
                response=TaskRead,
                operation_id=f"create-v1-{USER_MULTICAST_TYPE}",
            ),
        ],
    )
)

add_actions(
    individuals,
    ActionSpec(
        "multicast",
        service.do_individual_multicast,
        summary="Multicast a template to one individual",
        body=IndividualMulticastBody,
        permission=Permission.COMMUNICATE,
        response=TaskRead,
        tags=("notifications",),
    ),
)

add_actions(
    users,
    ActionSpec(
        "multicast",
        service.do_user_multicast,
        summary="Multicast a template to one user",
        body=UserMulticastBody,
        permission=Permission.COMMUNICATE,
        response=TaskRead,
        tags=("notifications",),
    ),
)
