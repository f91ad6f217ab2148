"""Who acts in a messaging call, and whether they may.

- An individual access token sees, and posts in, only the channels it subscribes to (others:
  404); it reads a draft only if it wrote it; it may not edit or remove another person's
  message (403) nor act as anyone else (403).
- ``staff`` and ``admin`` keys act on behalf of any individual of their organization; where a
  point of view is needed (posting, acking, reacting, preferences) they name ``individual-id``
  (400 when missing), and that individual must subscribe to the channel (422 otherwise). An
  admin key may also remove any message without naming anyone (moderation).
- ``readonly`` keys read. Creating, changing, archiving channels and managing their
  subscribers needs a ``staff`` or ``admin`` key.
"""

from __future__ import annotations

import uuid

from courier.core.errors import (
    ApiError,
    ErrorItem,
    bad_request,
    forbidden,
    not_found,
    unprocessable,
)
from courier.domains.messaging import repository as repo
from courier.jsonapi.context import Context
from courier.models.individual_group import IndividualGroup
from courier.models.messaging import MessagingSubscriber


def resolve_actor(
    ctx: Context, given: uuid.UUID | None, *, required: bool, pointer: str
) -> uuid.UUID | None:
    """The individual a call acts as: ``given`` (from the body), else ``individual-id`` of the
    query, else the token's own individual. An individual token may name only itself (403)."""
    principal = ctx.principal
    if given is not None:
        if principal.is_individual and given != principal.individual_id:
            raise forbidden("an individual token may act only as its own individual")
        if ctx.acting_individual_id is not None and ctx.acting_individual_id != given:
            raise bad_request(
                "individual-id differs between the query and the body",
                "conflicting-individual",
                pointer=pointer,
            )
        actor: uuid.UUID | None = given
    else:
        actor = ctx.acting_individual_id
    if actor is None and required:
        raise ApiError(
            400,
            [
                ErrorItem(
                    "individual-id is required with an API key: the individual on whose "
                    "behalf the call is made",
                    "missing-individual",
                    pointer=pointer,
                )
            ],
            {},
            True,
        )
    return actor


def require_actor(ctx: Context, given: uuid.UUID | None, pointer: str) -> uuid.UUID:
    actor = resolve_actor(ctx, given, required=True, pointer=pointer)
    assert actor is not None
    return actor


async def require_subscriber(
    ctx: Context, channel_id: uuid.UUID, individual_id: uuid.UUID, what: str
) -> MessagingSubscriber:
    """The individual's membership of the channel. Not a member: an individual token cannot
    see the channel at all (404); a key named someone outside it (422)."""
    sub = await repo.find_subscriber(ctx.session, ctx.organization_id, channel_id, individual_id)
    if sub is None:
        raise not_a_subscriber(ctx, individual_id, what)
    return sub


def not_a_subscriber(ctx: Context, individual_id: uuid.UUID, what: str) -> ApiError:
    """An individual token cannot see a channel it is not in (404); a key named someone
    outside it (422)."""
    if ctx.principal.is_individual:
        return not_found(what)
    return unprocessable(
        f"individual {individual_id} does not subscribe to this channel", "not-a-subscriber"
    )


def refuse_individual_token(ctx: Context) -> None:
    if ctx.principal.is_individual:
        raise forbidden("only a staff or admin key may manage channels")


async def require_group(ctx: Context, group_id: uuid.UUID, pointer: str) -> IndividualGroup:
    """An individual group of the caller's organization, else 404 pointing at it."""
    return await repo.require_group(ctx.session, ctx.organization_id, group_id, pointer)
