"""Reactions to messages: one per individual and type (dislike, like, lol, love, sad, wow)."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError

from courier.core.errors import conflict, not_found
from courier.domains.messaging import repository as repo
from courier.domains.messaging.messages import load_message_as, message_change
from courier.domains.messaging.schemas import ReactionBody
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.models.messaging import MessagingMessage, MessagingReaction


def _reactable(message: MessagingMessage) -> None:
    if message.draft:
        raise conflict("a draft cannot be reacted to", "draft")
    if message.removed:
        raise conflict("a removed message cannot be reacted to", "removed")


async def do_add_reaction(
    ctx: Context, target: MessagingMessage, body: ReactionBody
) -> Changed[MessagingMessage]:
    """One reaction per individual and type: adding the same one again changes nothing."""
    message, reactor = await load_message_as(ctx, target, body.individual_id)
    _reactable(message)
    org = ctx.organization_id
    if await repo.find_reaction(ctx.session, org, message.id, reactor, body.reaction_type):
        return Changed(message)
    try:
        async with ctx.session.begin_nested():  # a concurrent twin may win the unique key
            ctx.session.add(
                MessagingReaction(
                    organization_id=org,
                    message_id=message.id,
                    individual_id=reactor,
                    reaction_type=body.reaction_type,
                )
            )
    except IntegrityError:
        return Changed(message)
    return await _reaction_changed(ctx, message, reactor, body.reaction_type, "reacted")


async def do_delete_reaction(
    ctx: Context, target: MessagingMessage, body: ReactionBody
) -> Changed[MessagingMessage]:
    """A reaction the individual has not given: 404."""
    message, reactor = await load_message_as(ctx, target, body.individual_id)
    reaction = await repo.find_reaction(
        ctx.session, ctx.organization_id, message.id, reactor, body.reaction_type
    )
    if reaction is None:
        raise not_found("reaction")
    await ctx.session.delete(reaction)
    await ctx.session.flush()
    return await _reaction_changed(ctx, message, reactor, body.reaction_type, "unreacted")


async def _reaction_changed(
    ctx: Context, message: MessagingMessage, reactor: uuid.UUID, reaction_type: str, verb: str
) -> Changed[MessagingMessage]:
    audience = await repo.subscriber_ids(ctx.session, ctx.organization_id, message.channel_id)
    data = {"individual-id": str(reactor), "reaction-type": reaction_type}
    return Changed(message, [message_change(message, verb, audience, ["reactions"], data)])
