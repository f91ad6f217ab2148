"""``templates``: list, get, create, patch (admin); and ``users/{id}/validate-multicast-params``
(staff and admin), which renders a template for a user without sending."""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.people.resource import users
from courier.domains.templates.repository import templates_repository
from courier.domains.templates.schemas import (
    TEMPLATE_TYPE,
    TemplateCreate,
    TemplateRead,
    TemplateUpdate,
    ValidateMulticastBody,
    ValidateMulticastRead,
)
from courier.domains.templates.service import templates
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec
from courier.jsonapi.resource import Op, ResourceSpec, add_actions, register
from courier.models.template import Template

templates_spec = register(
    ResourceSpec(
        type_name=TEMPLATE_TYPE,
        model=Template,
        read_schema=TemplateRead,
        create_schema=TemplateCreate,
        update_schema=TemplateUpdate,
        service=templates,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.eq(
                "filter[name]",
                Template.name,
                q.parse_text(255),
                "The template with this name",
                schema={"type": "string", "maxLength": 255},
            ),
            q.eq(
                "filter[category]",
                Template.category,
                q.parse_text(64),
                "Templates of this category",
                schema={"type": "string", "maxLength": 64},
            ),
        ],
        sorts={
            "name": Template.name,
            "created-at": Template.created_at,
            "last-modified-at": Template.last_modified_at,
        },
        default_sort=[("name", False)],
        repository=templates_repository,
        summaries={
            Op.LIST: "List notification templates (filter[name], filter[category])",
            Op.GET: "Get one template",
            Op.CREATE: "Create a template (admin): per-channel bodies (apn, fcm, web, sms, "
            "email) in sandboxed Jinja2, required data keys with types, locale variants, "
            "sensitivity",
            Op.UPDATE: "Modify a template (admin)",
        },
        singular="template",
        tag="templates",
    )
)

add_actions(
    users,
    ActionSpec(
        "validate-multicast-params",
        templates.do_validate_multicast_params,
        summary="Check template data against a template without sending",
        body=ValidateMulticastBody,
        permission=Permission.COMMUNICATE,
        response=ValidateMulticastRead,
        tags=("templates",),
    ),
)
