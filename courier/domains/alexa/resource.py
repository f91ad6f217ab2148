from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.alexa.repository import reminder_scope, reminders, subscriptions
from courier.domains.alexa.schemas import (
    AskEventRead,
    AskReminderCreate,
    AskReminderRead,
    AskReminderUpdate,
    AskSubscriptionRead,
    SendBody,
)
from courier.domains.alexa.service import ReminderService, SubscriptionService, do_send
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.alexa import AskReminder, AskSubscription

ask_reminders = register(
    ResourceSpec(
        type_name="ask-reminders",
        model=AskReminder,
        read_schema=AskReminderRead,
        create_schema=AskReminderCreate,
        update_schema=AskReminderUpdate,
        service=ReminderService(),
        repository=reminders,
        individual_scope=reminder_scope,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.uuid_eq(
                "individual-id",
                AskReminder.individual_id,
                "The individual whose reminders to list",
                required=True,
            )
        ],
        sorts={"created-at": AskReminder.created_at, "name": AskReminder.name},
        default_sort=[("created-at", False)],
        permissions={Op.CREATE: Permission.COMMUNICATE, Op.UPDATE: Permission.COMMUNICATE},
        tag="alexa",
        summaries={
            Op.LIST: "Reminders of an individual (individual-id required)",
            Op.GET: "Get one reminder",
            Op.CREATE: "Create a reminder (RRULE, local time, tz); synced to Alexa by a job",
            Op.UPDATE: "Modify a reminder; synced to Alexa by a job",
        },
        singular="reminder",
    )
)

ask_subscriptions = register(
    ResourceSpec(
        type_name="ask-subscriptions",
        model=AskSubscription,
        read_schema=AskSubscriptionRead,
        service=SubscriptionService(),
        repository=subscriptions,
        ops=frozenset({Op.LIST, Op.GET}),
        filters=[
            q.uuid_eq("filter[skill-id]", AskSubscription.skill_id, "Subscriptions to one skill"),
            q.uuid_eq(
                "filter[user-id]", AskSubscription.user_id, "Subscriptions of one individual"
            ),
        ],
        sorts={"created-at": AskSubscription.created_at},
        default_sort=[("created-at", False)],
        tag="alexa",
        summaries={
            Op.LIST: "Alexa proactive-event subscriptions (filter[skill-id], filter[user-id])",
            Op.GET: "Get one subscription",
        },
        singular="subscription",
        actions=[
            ActionSpec(
                "send",
                do_send,
                summary="Send a proactive event to a subscriber",
                body=SendBody,
                permission=Permission.COMMUNICATE,
                response=AskEventRead,
            )
        ],
    )
)
