"""What the console changes, through the API's own services and permission checks.

A console action is the API operation it stands for: the resource's declared permission is
required of the session's principal (403 otherwise, whatever the page rendered), the
resource's service does the work with its rules, and the result is recorded through the
route factory's ``settle`` (audit row, events), exactly as the HTTP route would.
"""

from __future__ import annotations

import uuid
from typing import Any

from courier.jsonapi.actions import ActionSpec
from courier.jsonapi.changes import Changed, record_changes
from courier.jsonapi.context import Context
from courier.jsonapi.resource import REGISTRY, Op, ResourceSpec
from courier.jsonapi.routes import settle
from courier.models.messaging import MessagingMessage

MESSAGES = "messaging-messages"


def spec_named(type_name: str) -> ResourceSpec[Any]:
    for spec in REGISTRY:
        if spec.type_name == type_name:
            return spec
    raise LookupError(type_name)


def action_named(type_name: str, name: str, method: str = "POST") -> ActionSpec:
    """The resource's declared action ``name`` (``""``: the action on the item itself, e.g. a
    DELETE declared as an action)."""
    spec = spec_named(type_name)
    return next(a for a in spec.actions if a.name == name and a.method == method)


def may(ctx: Context, type_name: str, op: Op) -> bool:
    """Whether the principal holds the permission the API asks for this operation."""
    return ctx.principal.can(spec_named(type_name).permission(op))


async def post_message(
    ctx: Context, channel_id: uuid.UUID, author_id: uuid.UUID, text: str
) -> MessagingMessage:
    """``POST /v1/messaging-messages/`` with ``individual-id``: a staff or admin key posts on
    behalf of a care-team member subscribed to the channel (the API's rule: 422 otherwise)."""
    spec = spec_named(MESSAGES)
    ctx.principal.require(spec.permission(Op.CREATE))
    assert spec.create_schema is not None
    attrs = spec.create_schema.model_validate(
        {"channel-id": str(channel_id), "individual-id": str(author_id), "message": text}
    )
    result = await spec.service.create(ctx, attrs)
    await ctx.session.flush()
    message: MessagingMessage = settle(ctx, spec, result, "created", sorted(attrs.model_fields_set))
    return message


async def create_resource(
    ctx: Context, type_name: str, attributes: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """``POST /v1/<type>/``: the resource's create permission, its service, its audit rows
    and events. The created object and the attributes its answer reveals once (a secret, an
    access token)."""
    spec = spec_named(type_name)
    ctx.principal.require(spec.permission(Op.CREATE))
    assert spec.create_schema is not None
    attrs = spec.create_schema.model_validate(attributes)
    result = await spec.service.create(ctx, attrs)
    revealed = dict(result.revealed) if isinstance(result, Changed) else {}
    await ctx.session.flush()
    return settle(ctx, spec, result, "created", sorted(attrs.model_fields_set)), revealed


async def run_action(
    ctx: Context,
    type_name: str,
    name: str,
    ident: uuid.UUID,
    body: dict[str, Any] | None = None,
    *,
    method: str = "POST",
) -> Any:
    """An item action of the API (``/v1/<type>/{id}/<name>/``, or the DELETE declared as an
    action): its permission (403), its target loaded as the route loads it (404 for another
    organization's), its handler, its changes recorded. What the handler answered."""
    spec = spec_named(type_name)
    action = action_named(type_name, name, method)
    ctx.principal.require(action.permission)
    loader = action.loader or spec.service.load
    target = await loader(ctx, ident, for_update=action.changes_state)
    parsed = action.body.model_validate(body) if action.body is not None and body else None
    result = await action.handler(ctx, target, parsed)
    if isinstance(result, Changed):
        record_changes(ctx, result.changes)
        result = result.obj
    await ctx.session.flush()
    return result
