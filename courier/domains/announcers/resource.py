"""``announcers``: list (filter[name], organization-id), get, create, patch (admin)."""

from __future__ import annotations

from courier.domains.announcers.repository import announcers_repository
from courier.domains.announcers.schemas import (
    ANNOUNCER_TYPE,
    AnnouncerCreate,
    AnnouncerRead,
    AnnouncerUpdate,
)
from courier.domains.announcers.service import announcers
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.announcer import Announcer

announcers_spec = register(
    ResourceSpec(
        type_name=ANNOUNCER_TYPE,
        model=Announcer,
        read_schema=AnnouncerRead,
        create_schema=AnnouncerCreate,
        update_schema=AnnouncerUpdate,
        service=announcers,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.eq(
                "filter[name]",
                Announcer.name,
                q.parse_text(255),
                "The announcer with this name",
                schema={"type": "string", "maxLength": 255},
            ),
        ],
        sorts={
            "name": Announcer.name,
            "created-at": Announcer.created_at,
            "last-modified-at": Announcer.last_modified_at,
        },
        default_sort=[("created-at", False)],
        repository=announcers_repository,
        summaries={
            Op.LIST: "List announcers: event-triggered notifications (filter[name], "
            "organization-id)",
            Op.GET: "Get one announcer",
            Op.CREATE: "Create an announcer (admin): when the event happens (e.g. "
            "individual-shared), send args.template-id to args' recipients",
            Op.UPDATE: "Modify an announcer (admin)",
        },
        singular="announcer",
        tag="notifications",
    )
)
