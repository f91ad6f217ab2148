"""``/v1/org-preferences/``: list every known preference (defaults included) and set one.

Written by hand rather than declared as a ResourceSpec: the collection mixes stored rows with
defaults that have no row, so the generic SQL list does not apply.
"""

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request

from courier.core.auth import Permission
from courier.core.errors import conflict
from courier.core.handlers import JsonResponse
from courier.domains.org_preferences.schemas import (
    TYPE_NAME,
    OrgPreferenceRead,
    OrgPreferenceSetRequest,
)
from courier.domains.org_preferences.service import (
    PREFERENCES,
    PreferenceState,
    check_organization,
    check_set_preference,
    list_preferences,
)
from courier.jsonapi import query as q
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import (
    DocumentModels,
    list_document,
    resource_object,
    single_document,
)
from courier.jsonapi.render import render_rows
from courier.jsonapi.routes import page_parameters
from courier.models.org_preference import OrgPreference

router = APIRouter(tags=[TYPE_NAME])
PATH = f"/v1/{TYPE_NAME}/"
PAGE = q.PageBounds()
NAMES = sorted(PREFERENCES)

FILTERS = [
    q.enum("filter[name]", OrgPreference.name, NAMES, "Only the preference with this name"),
    q.uuid_eq(
        "organization-id",
        OrgPreference.organization_id,
        "The caller's organization (the default); another organization's id finds nothing",
    ),
]

_documents = DocumentModels(TYPE_NAME, OrgPreferenceRead, None, None)

_LIST_PARAMETERS: list[dict[str, Any]] = [
    *(
        {
            "name": flt.param,
            "in": "query",
            "required": False,
            "description": flt.description,
            "schema": flt.schema,
        }
        for flt in FILTERS
    ),
    *page_parameters(PAGE),
]

ERRORS: dict[int | str, dict[str, Any]] = {"4XX": {"description": "Error (CONVENTIONS.md)"}}


def _resources(states: Sequence[PreferenceState]) -> list[dict[str, Any]]:
    rendered = render_rows(OrgPreferenceRead, states)
    return [
        resource_object(TYPE_NAME, state.id, attributes)
        for state, attributes in zip(states, rendered, strict=True)
    ]


@router.get(
    PATH,
    response_model=None,
    summary="List preferences of an organization",
    description="Every known preference of the caller's organization, sorted by name: "
    "alexa-read-message-text (boolean), console-idle-timeout-seconds (integer, 60 to 43200), "
    "default-channel-title (string), email-unsubscribe-url "
    "(string), group-provider-ack (boolean), initial-sms-message (string), locale (string), "
    "sms-message-link (string), sms-phi-safe (boolean). "
    "One the organization never set shows its default with explicit: false. A preference has "
    "one id per organization, the same before and after it is set. organization-id may be "
    "omitted (the seed marks it required): it can only name the caller's own organization.",
    responses={200: {"model": _documents.many}, **ERRORS},
    openapi_extra={"parameters": _LIST_PARAMETERS},
    operation_id=f"list-v1-{TYPE_NAME}",
)
async def list_org_preferences(
    request: Request,
    ctx: Context = Depends(context_dependency(Permission.READ, individual_allowed=False)),
) -> JsonResponse:
    query = q.parse_list_query(request.query_params, filters=FILTERS, sorts=[], page=PAGE)
    organization_id = check_organization(ctx, query.values.get("organization-id"))
    states = await list_preferences(ctx, organization_id, query.values.get("filter[name]"))
    page = states[query.offset : query.offset + query.limit]
    return JsonResponse(list_document(request, query, _resources(page), len(states)))


@router.post(
    PATH,
    response_model=None,
    status_code=201,
    summary="Set a preference (creates or replaces the named one)",
    description="Admin keys only. Give the value as value-js (typed JSON: a string, a "
    "boolean or an integer, as the preference declares) or as value (its text form, "
    "'true'/'false' for a boolean, digits for an integer); both may be given if they agree. "
    "type, if given, must be json. Setting a preference again replaces its value; "
    "created-at then says when the current value was set.",
    responses={201: {"model": _documents.single}, **ERRORS},
    operation_id=f"set-v1-{TYPE_NAME}",
)
async def set_org_preference(
    body: OrgPreferenceSetRequest,
    ctx: Context = Depends(context_dependency(Permission.MANAGE, individual_allowed=False)),
) -> JsonResponse:
    if body.data.type != TYPE_NAME:
        raise conflict(f"data.type must be {TYPE_NAME}", "type-mismatch", pointer="/data/type")
    state = await check_set_preference(ctx, body.data.attributes)
    return JsonResponse(single_document(_resources([state])[0]), status_code=201)
