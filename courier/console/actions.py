"""What the console changes, through the API's own services and permission checks.

A console action is the API operation it stands for: the resource's declared permission is
required of the session's principal (403 otherwise, whatever the page rendered), the
resource's service does the work with its rules, and the result is recorded through the
route factory's ``settle`` (audit row, events), exactly as the HTTP route would.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from courier.core.handlers import validation_items
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
    """The resource's declared item action ``name`` (``""``: the action on the item itself,
    e.g. a DELETE declared as an action)."""
    spec = spec_named(type_name)
    return next(a for a in spec.actions if a.name == name and a.method == method and a.on == "item")


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


def refusal_of(error: ValidationError) -> str:
    """A body the API would refuse with 400, in the API's words (one clause per field)."""
    errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in error.errors()]
    return "; ".join(item.detail for item in validation_items(errors))


async def create(ctx: Context, type_name: str, attributes: dict[str, Any]) -> Changed[Any]:
    """``POST /v1/<type>/``: the declared permission, the service's rules, audit and events.
    The result keeps what the API shows once (an API key's secret)."""
    spec = spec_named(type_name)
    ctx.principal.require(spec.permission(Op.CREATE))
    assert spec.create_schema is not None
    attrs = spec.create_schema.model_validate(attributes)
    result = await spec.service.create(ctx, attrs)
    await ctx.session.flush()
    obj = settle(ctx, spec, result, "created", sorted(attrs.model_fields_set))
    if isinstance(result, Changed):
        return result
    return Changed(obj)


async def delete(ctx: Context, type_name: str, ident: uuid.UUID) -> None:
    """``DELETE /v1/<type>/{id}/`` (a revocation, for keys and console users)."""
    spec = spec_named(type_name)
    ctx.principal.require(spec.permission(Op.DELETE))
    obj = await spec.service.load(ctx, ident, for_update=True)
    result = await spec.service.delete(ctx, obj)
    settle(ctx, spec, obj if result is None else result, "deleted", ())
    await ctx.session.flush()


def readable(ctx: Context, type_name: str, op: Op = Op.LIST) -> Any:
    """The rows ``GET /v1/<type>/`` would show this principal (403 without its permission)."""
    spec = spec_named(type_name)
    ctx.principal.require(spec.permission(op))
    return spec.service.query(ctx)


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
    organization's), its body schema, its handler, its changes recorded as the route records
    them. What the handler answered."""
    spec = spec_named(type_name)
    action = action_named(type_name, name, method)
    ctx.principal.require(action.permission)
    loader = action.loader or spec.service.load
    target = await loader(ctx, ident, for_update=action.changes_state)
    parsed = (
        action.body.model_validate(body) if action.body is not None and body is not None else None
    )
    result = await action.handler(ctx, target, parsed)
    if isinstance(result, Changed):
        record_changes(ctx, result.changes)
        result = result.obj
    await ctx.session.flush()
    return result
