"""SMS accounts and numbers: ``/v1/text-accounts/``, ``/v1/text-account-numbers/``, receive
logs (``/v1/text-number-logs/``, ``/v1/text-receive-logs/{id}/``) and
``/v1/text-user-number-maps/``. Reading needs READ; configuring needs MANAGE (admin), and so
do the actions ``claim-number`` (on an account) and ``reset-logs`` (on a number)."""

from __future__ import annotations

from courier.domains.text_accounts.schemas import (
    ClaimNumberBody,
    TextAccountCreate,
    TextAccountRead,
    TextAccountUpdate,
    TextNumberCreate,
    TextNumberLogRead,
    TextNumberRead,
    TextNumberUpdate,
    TextReceiveLogRead,
    TextUserNumberMapCreate,
    TextUserNumberMapRead,
)
from courier.domains.text_accounts.service import (
    TextNumberLogService,
    TextReceiveLogService,
    TextUserNumberMapService,
    accounts,
    numbers,
)
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, EmptyBody
from courier.jsonapi.resource import Op, ResourceSpec, add_actions, register
from courier.models.text_account import (
    TextAccount,
    TextAccountNumber,
    TextNumberLog,
    TextReceiveLog,
    TextUserNumberMap,
)

TAG = "sms"


text_accounts = register(
    ResourceSpec(
        type_name="text-accounts",
        model=TextAccount,
        read_schema=TextAccountRead,
        create_schema=TextAccountCreate,
        update_schema=TextAccountUpdate,
        service=accounts,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        sorts={"created-at": TextAccount.created_at},
        default_sort=[("created-at", False)],
        summaries={
            Op.LIST: "List SMS accounts (organization-id)",
            Op.GET: "Get one SMS account",
            Op.CREATE: "Create an SMS account for an organization",
            Op.UPDATE: "Modify an SMS account",
        },
        singular="text account",
        tag=TAG,
    )
)

text_account_numbers = register(
    ResourceSpec(
        type_name="text-account-numbers",
        model=TextAccountNumber,
        read_schema=TextNumberRead,
        create_schema=TextNumberCreate,
        update_schema=TextNumberUpdate,
        service=numbers,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.uuid_eq("account-id", TextAccountNumber.account_id, "Numbers of this account"),
            q.phone(
                "phone-number",
                TextAccountNumber.phone_number,
                "The number with this phone number (E.164)",
            ),
            q.phone(
                "filter[phone-number]",
                TextAccountNumber.phone_number,
                "The number with this phone number (E.164)",
            ),
        ],
        sorts={"created-at": TextAccountNumber.created_at},
        default_sort=[("created-at", False)],
        summaries={
            Op.LIST: "List numbers (account-id, phone-number, filter[phone-number])",
            Op.GET: "Get one number",
            Op.CREATE: "Provision a number in an area code",
            Op.UPDATE: "Modify a number (alert, events, forward-to, logging, notes)",
        },
        singular="text number",
        tag=TAG,
        actions=[
            ActionSpec(
                "reset-logs",
                numbers.do_reset_logs,
                summary="Clear a number's receive logs",
                body=EmptyBody,
            )
        ],
    )
)

add_actions(
    text_accounts,
    ActionSpec(
        "claim-number",
        accounts.do_claim_number,
        summary="Claim (provision) a number for the account",
        body=ClaimNumberBody,
        response=text_account_numbers,
    ),
)

text_number_logs = register(
    ResourceSpec(
        type_name="text-number-logs",
        model=TextNumberLog,
        read_schema=TextNumberLogRead,
        service=TextNumberLogService(),
        ops=frozenset({Op.LIST}),
        filters=[
            q.uuid_eq(
                "number-id", TextNumberLog.number_id, "The number whose log to read", required=True
            )
        ],
        sorts={"created-at": TextNumberLog.created_at},
        default_sort=[("created-at", True)],
        summaries={Op.LIST: "Receive logs of a number (number-id required)"},
        singular="text number log",
        tag=TAG,
        audited=False,
        events=False,
    )
)

text_receive_logs = register(
    ResourceSpec(
        type_name="text-receive-logs",
        model=TextReceiveLog,
        read_schema=TextReceiveLogRead,
        service=TextReceiveLogService(),
        ops=frozenset({Op.GET}),
        summaries={Op.GET: "One received text (type text-receive-logs)"},
        singular="text receive log",
        tag=TAG,
        audited=False,
        events=False,
    )
)

text_user_number_maps = register(
    ResourceSpec(
        type_name="text-user-number-maps",
        model=TextUserNumberMap,
        read_schema=TextUserNumberMapRead,
        create_schema=TextUserNumberMapCreate,
        service=TextUserNumberMapService(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.uuid_eq("filter[number-id]", TextUserNumberMap.number_id, "Maps to this number"),
            q.uuid_eq(
                "filter[organization-id]",
                TextUserNumberMap.organization_id,
                "Maps of this organization (the caller's own)",
            ),
            q.uuid_eq("filter[user-id]", TextUserNumberMap.user_id, "The map of this user"),
        ],
        sorts={"created-at": TextUserNumberMap.created_at},
        default_sort=[("created-at", False)],
        summaries={
            Op.LIST: "Which number each user texts from",
            Op.GET: "Get one map",
            Op.CREATE: "Map a user to a number (replaces the user's earlier map)",
        },
        singular="text user number map",
        tag=TAG,
    )
)
