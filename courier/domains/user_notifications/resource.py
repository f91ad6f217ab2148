"""``/v1/user-notifications/``: list (``acknowledged``, ``filter[category]``,
``include[inactive]``, ``individual-id``, ``organization-id``), get, ``/{id}/ack/``
(``ack-previous``); ``/v1/user-notification-counts/``: daily counts. Every key reads them; an
individual token reads and acknowledges its own. Notifications are created by
``notify_many`` (multicasts, announcers, escalation ladders), never by a POST here."""

from __future__ import annotations

from sqlalchemy import literal_column

from courier.core.auth import Permission
from courier.domains.user_notifications import jobs as _jobs  # senders and jobs, everywhere
from courier.domains.user_notifications import purge as _purge  # the purge hook
from courier.domains.user_notifications.reading import (
    count_id,
    inactive_filter,
    individual_filter,
    present_counts,
    service,
)
from courier.domains.user_notifications.repository import own_notifications
from courier.domains.user_notifications.schemas import (
    COUNTS_TYPE,
    AckBody,
    NotificationCountRead,
    UserNotificationRead,
)
from courier.domains.user_notifications.service import TYPE
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, Listing
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.user_notification import UserNotification

user_notifications = register(
    ResourceSpec(
        type_name=TYPE,
        model=UserNotification,
        read_schema=UserNotificationRead,
        service=service,
        ops=frozenset({Op.LIST, Op.GET}),
        filters=[
            q.boolean(
                "acknowledged",
                UserNotification.acknowledged,
                "true: only acknowledged notifications; false: only those not acknowledged",
            ),
            q.eq(
                "filter[category]",
                UserNotification.category,
                q.parse_text(32),
                "Notifications of this category",
                schema={"type": "string", "maxLength": 32},
            ),
            q.Filter(
                "include[inactive]",
                q.parse_bool,
                inactive_filter,
                "true: also withdrawn notifications (default false)",
                schema={"type": "boolean", "default": False},
                default=False,
            ),
            q.Filter(
                "individual-id",
                q.parse_uuid,
                individual_filter,
                "The individual whose notifications to list (an individual token: its own)",
                schema={"type": "string", "format": "uuid"},
            ),
        ],
        sorts={"created-at": UserNotification.created_at},
        default_sort=[("created-at", True)],
        individual_scope=own_notifications,
        individual_ops=frozenset({Op.LIST, Op.GET}),
        tag="notifications",
        summaries={
            Op.LIST: "List notifications (acknowledged, filter[category], include[inactive], "
            "individual-id)",
            Op.GET: "Get one notification",
        },
        singular="user notification",
        actions=[
            ActionSpec(
                "ack",
                service.do_ack,
                summary="Acknowledge a notification (ack-previous)",
                body=AckBody,
                permission=Permission.COMMUNICATE,
                individuals=True,
            )
        ],
    )
)

notification_counts = register(
    ResourceSpec(
        type_name="user-notification-counts",
        model=UserNotification,
        read_schema=NotificationCountRead,
        service=type(service)(),
        ops=frozenset(),
        individual_scope=own_notifications,
        tag="notifications",
        singular="notification count",
        actions=[
            ActionSpec(
                "",
                service.do_counts,
                summary="Daily notification counts (filter[cmp-created-at])",
                method="GET",
                on="collection",
                permission=Permission.READ,
                individuals=True,
                listing=Listing(
                    COUNTS_TYPE,
                    NotificationCountRead,
                    order=lambda: [literal_column("day").desc(), literal_column("user_id")],
                    page=q.PageBounds(default=500, maximum=1000, minimum=0),
                    filters=[
                        q.time_window("created-at", UserNotification.created_at),
                        q.organization(UserNotification.organization_id),
                    ],
                    present=present_counts,
                    row_id=count_id,
                ),
                operation_id="list-v1-user-notification-counts",
            )
        ],
    )
)

__all__ = ["_jobs", "_purge", "notification_counts", "user_notifications"]
