"""The rules of messages: posting (through :mod:`posting`), editing, drafts, removal,
acknowledging (read horizons) and receipts.

Ordering and unread counts (see :mod:`courier.models.messaging`): posting takes the channel's
next ``seq`` with one ``UPDATE ... SET last_seq = last_seq + 1 ... RETURNING``, which holds the
channel's row lock on PostgreSQL until commit (SQLite serialises writers), so seqs are unique
and contiguous. A subscriber's horizon (``ack_seq``) only moves with a conditional UPDATE, so it
never goes backwards (unless ``allow-past``) however requests interleave. Lock order is always
channel row, then subscriber rows in individual-id order, so concurrent requests cannot
deadlock. A draft's events go to its author only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, false, func

from courier.core.auth import Permission
from courier.core.errors import (
    ApiError,
    ErrorItem,
    conflict,
    forbidden,
    invalid_attribute,
    not_found,
)
from courier.core.time import now_ms
from courier.domains.messaging import posting, render
from courier.domains.messaging import repository as repo
from courier.domains.messaging.access import (
    not_a_subscriber,
    require_actor,
    require_subscriber,
    resolve_actor,
)
from courier.domains.messaging.analysis import enqueue_analysis
from courier.domains.messaging.schemas import (
    MESSAGE_TYPE,
    AckBody,
    MessageCreate,
    MessageUpdate,
)
from courier.domains.org_preferences.service import get_preference
from courier.domains.people.repository import require_individual, unknown_individual
from courier.jsonapi.changes import Change, Changed, change
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.paging import Page
from courier.jsonapi.query import ListQuery
from courier.jsonapi.resource import CrudService
from courier.models.messaging import MessagingMessage

# List parameters that shape each message's rendering, not which messages are listed.
RENDER_ONLY = frozenset({"include-read-receipts", "include-phrases", "thumbnail"})


def message_change(
    message: MessagingMessage,
    verb: str,
    audience: Iterable[uuid.UUID],
    fields: Iterable[str] = (),
    data: dict[str, Any] | None = None,
) -> Change:
    """``messaging-messages.<verb>`` for ``audience``; the event names the channel."""
    return change(
        MESSAGE_TYPE,
        message.id,
        verb,
        fields=fields,
        audience=audience,
        data={"channel-id": str(message.channel_id), **(data or {})},
    )


def refuse_archived_post(archived: bool) -> None:
    if archived:
        raise conflict("the channel is archived: nothing can be posted in it", "archived")


@dataclass(frozen=True)
class Fresh:
    """A message just posted, with its attributes as the response shows them."""

    id: uuid.UUID
    attributes: dict[str, Any]


class MessageService(CrudService[MessagingMessage]):
    list_rows = True

    def query(self, ctx: Context) -> Select[Any]:
        """Messages of the caller's channels (drafts: only the caller's own). Without a
        caller (an API key naming no individual): every posted message of the organization."""
        return repo.visible_messages(ctx.organization_id, ctx.acting_individual_id)

    async def load(
        self, ctx: Context, ident: uuid.UUID, *, for_update: bool = False
    ) -> MessagingMessage:
        if for_update and not ctx.principal.is_individual and ctx.acting_individual_id is None:
            # A key changing a message names its author in the body; update() checks it.
            return await self.load_any(ctx, ident)
        return await super().load(ctx, ident, for_update=for_update)

    async def load_any(self, ctx: Context, ident: uuid.UUID) -> MessagingMessage:
        """Any message of the organization, drafts included: the caller checks who acts."""
        return await repo.require_message(
            ctx.session, ctx.organization_id, ident, self.spec.singular
        )

    async def list_page(self, ctx: Context, query: ListQuery) -> Page | None:
        """A channel's messages when nothing but the channel narrows the list (the read
        every client makes): the total from the seq counter
        (:func:`repository.count_channel_messages`: a list of a 1,000,000-message channel
        costs no more than one of ten messages) with the page, in one statement built once
        (:func:`repository.message_page`). Other filters take the generic path.

        A channel an individual token cannot see (none such, or not one of its own) is 404,
        as the channel itself is: an empty list would say that it exists. (A key naming
        ``individual-id`` sees an empty list, as it always has.)"""
        values = query.values
        if values.keys() - RENDER_ONLY != {"channel-id"}:
            return None
        org, viewer, session = ctx.organization_id, ctx.acting_individual_id, ctx.session
        channel_id: uuid.UUID = values["channel-id"]
        # The only sort is seq (newest first by default), each field at most once.
        ((_, descending),) = query.sort or self.spec.default_sort
        page = await repo.message_page(
            session,
            org,
            channel_id,
            viewer,
            descending=descending,
            limit=query.limit,
            offset=query.offset,
            phrases=bool(values.get("include-phrases")),
        )
        if page.total is None and ctx.principal.is_individual:
            raise _channel_not_found()
        return Page(list(page.rows), page.total or 0)

    async def count(self, ctx: Context, stmt: Select[Any], values: Mapping[str, Any]) -> int:
        """The total of a list narrowed by more than its channel (:meth:`list_page` answers
        the others), with the same 404 for a channel an individual token cannot see."""
        org, viewer = ctx.organization_id, ctx.acting_individual_id
        channel_id: uuid.UUID = values["channel-id"]
        if (
            ctx.principal.is_individual
            and viewer is not None
            and not await repo.channel_visible_to(ctx.session, org, channel_id, viewer)
        ):
            raise _channel_not_found()
        return await super().count(ctx, stmt, values)

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[Any]:
        """Post (or save a draft) in Core statements: one SELECT of what the post needs (the
        author, the channel, its subscribers), then :func:`posting.post_messages`; the
        response is built from what the request holds (:class:`Fresh`), never read back."""
        assert isinstance(attrs, MessageCreate)
        pointer = "/data/attributes/individual-id"
        author_id = require_actor(ctx, attrs.individual_id, pointer)
        org, session = ctx.organization_id, ctx.session
        facts = await repo.post_facts(session, org, attrs.channel_id, author_id)
        if facts is None:
            raise unknown_individual(author_id, pointer=pointer, parameter=None)
        first, audience = facts
        if first.channel_id is None:
            raise repo.no_such_channel(attrs.channel_id, "/data/attributes/channel-id")
        if author_id not in audience:
            raise not_a_subscriber(ctx, author_id, "messaging channel")
        if not attrs.draft:
            refuse_archived_post(first.archived)
            if not attrs.message.strip():
                raise invalid_attribute("message", "must not be empty")
        post = posting.NewPost(
            channel_id=attrs.channel_id,
            author_id=author_id,
            text=attrs.message,
            draft=attrs.draft,
            auto_ack=attrs.auto_ack is not False,
            destination=(
                {"include-destinations": list(dict.fromkeys(attrs.include_destinations))}
                if attrs.include_destinations
                else {}
            ),
            audience=audience,
        )
        author_info = posting.Author(author_id, first.locale, first.user_id)
        actor = posting.AuditActor.of(ctx.principal, ctx.request_id, attrs.model_fields_set)
        (message,) = await posting.post_messages(
            session, org, [post], actor=actor, authors={author_id: author_info}
        )
        ctx.acting_individual_id = author_id  # the response shows the author's view
        author = render.PostedAuthor(
            first.first_name,
            first.last_name,
            first.preferred_name,
            first.account_type,
            first.user_name,
        )
        # post_messages recorded it, as every post is recorded
        return Changed(Fresh(message.id, render.render_posted(ctx, message, author)))

    async def update(
        self, ctx: Context, obj: MessagingMessage, attrs: WriteAttributes
    ) -> Changed[MessagingMessage]:
        assert isinstance(attrs, MessageUpdate)
        given = attrs.given()
        pointer = "/data/attributes/individual-id"
        actor = resolve_actor(ctx, given.get("individual_id"), required=False, pointer=pointer)
        changes = set(given) - {"individual_id"}
        moderation = (
            actor is None
            and ctx.principal.can(Permission.MANAGE)
            and changes == {"removed"}
            and given["removed"] is True
        )
        if actor is None and not moderation:
            require_actor(ctx, None, pointer)  # raises the 400
        if obj.draft and actor != obj.individual_id:
            raise not_found(self.spec.singular)  # a draft exists only for its author
        if not moderation and actor != obj.individual_id:
            raise forbidden("only its author may change a message")
        if actor is not None:
            ctx.acting_individual_id = actor
        if obj.removed:
            if changes - {"removed"} or given.get("removed") is False:
                raise conflict("a removed message cannot be changed", "removed")
            return Changed(obj)  # removing again: nothing changes
        if given.get("draft") is True and not obj.draft:
            raise conflict("a posted message cannot become a draft again", "posted")
        publishing = obj.draft and given.get("draft") is False
        verb: str | None = None
        org, session = ctx.organization_id, ctx.session
        if "message" in given and given["message"] != obj.message:
            if (publishing or not obj.draft) and not given["message"].strip():
                raise invalid_attribute("message", "must not be empty")
            obj.message = given["message"]
            # The new text's sentiment and phrases come from a job after the commit.
            obj.sentiment, obj.phrases, obj.analyzed = None, {}, False
            await enqueue_analysis(session, org, [obj.id])
            verb = "updated"
        if given.get("removed") is True:
            obj.removed = True
            verb = "removed"
        elif publishing:
            channel = await repo.load_channel(
                session, org, obj.channel_id, "/data/attributes/draft"
            )
            refuse_archived_post(channel.archived)
            if not obj.message.strip():
                raise invalid_attribute("message", "must not be empty")
            await posting.take_seqs(session, org, [obj])
            verb = "posted"
        if verb is None:
            return Changed(obj)  # nothing changed: no audit row, no event
        obj.last_modified_at = now_ms()
        if not obj.draft:
            await repo.touch_channel_if_last(session, org, obj)
        audience = (
            [obj.individual_id]
            if obj.draft and obj.individual_id
            else await repo.subscriber_ids(session, org, obj.channel_id)
        )
        return Changed(obj, [message_change(obj, verb, audience, attrs.model_fields_set)])

    def list_query(self, ctx: Context) -> Select[Any]:
        """The list's page holds Core rows of the message columns, not loaded objects."""
        return repo.visible_message_rows(ctx.organization_id, ctx.acting_individual_id)

    async def present(self, ctx: Context, rows: Sequence[Any]) -> list[dict[str, Any]]:
        if len(rows) == 1 and isinstance(rows[0], Fresh):
            return [rows[0].attributes]
        return await render.render_messages(ctx, rows)


messages = MessageService()


def _channel_not_found() -> ApiError:
    return ApiError(
        404,
        [
            ErrorItem(
                "channel-id names no messaging channel the caller may see",
                "not-found",
                parameter="channel-id",
            )
        ],
    )


# --- acting on one message -------------------------------------------------------------------


async def load_message_as(
    ctx: Context, message: MessagingMessage, actor_given: uuid.UUID | None
) -> tuple[MessagingMessage, uuid.UUID]:
    """The individual acting on ``message`` (loaded by the action route: 404 for another
    organization's, or one the caller may not see), who must subscribe to its channel."""
    actor = require_actor(ctx, actor_given, "/individual-id")
    if not ctx.principal.is_individual:
        await require_individual(ctx, actor, pointer="/individual-id")
        if message.draft and message.individual_id != actor:
            raise not_found(messages.spec.singular)
        await require_subscriber(ctx, message.channel_id, actor, "messaging message")
    ctx.acting_individual_id = actor
    return message, actor


async def do_ack(
    ctx: Context, target: MessagingMessage, body: AckBody
) -> Changed[MessagingMessage]:
    """Moves the reader's read horizon to this message: it and everything before it are
    read. It never moves back unless ``allow-past`` is true.

    Never backwards unless ``allow-past``. With the organization's ``group-provider-ack``, a
    provider's ack moves every provider subscriber's horizon forward too (their
    ``ack-user-time`` stays empty: they did not read it themselves).
    """
    message, reader = await load_message_as(ctx, target, body.individual_id)
    if message.draft or message.seq is None:
        raise conflict("a draft cannot be acknowledged", "draft")
    org, session = ctx.organization_id, ctx.session
    now = now_ms()
    providers: list[uuid.UUID] = []
    if await get_preference(session, org, "group-provider-ack"):
        reader_row = await require_individual(ctx, reader, pointer="/individual-id")
        if reader_row.account_type == "provider":
            providers = await repo.provider_subscribers(session, org, message.channel_id)
    if providers:
        # Every row this ack may move, locked in one order: concurrent group acks never
        # deadlock on each other's rows.
        await repo.lock_subscribers(session, org, message.channel_id, {*providers, reader})
    moved = await repo.move_horizons(
        session,
        org,
        message,
        [reader],
        allow_past=body.allow_past,
        user_time=body.ack_user_time or now,
        now=now,
    )
    others = [ident for ident in providers if ident != reader]
    if others:
        moved += await repo.move_horizons(
            session, org, message, others, allow_past=False, user_time=None, now=now
        )
    if not moved:
        return Changed(message)
    audience = await repo.subscriber_ids(session, org, message.channel_id)
    data = {"individual-id": str(reader), "seq": message.seq}
    return Changed(message, [message_change(message, "acked", audience, ["ack-seq"], data)])


async def do_get_receipts(ctx: Context, message: MessagingMessage, _body: object) -> dict[str, Any]:
    """The channel's subscribers other than the author: ``read`` if their horizon reached the
    message (with when), else ``unread``."""
    if message.draft:
        raise conflict("a draft has not been delivered: it has no receipts", "draft")
    channel = message.channel_id
    subs = (await repo.horizons(ctx.session, ctx.organization_id, [channel]))[channel]
    people = await repo.names_with_logins(
        ctx.session, ctx.organization_id, [s.individual_id for s in subs]
    )
    read, unread = render.split_receipts(message, subs, people)
    return {"read": read, "unread": unread}


# --- list filters ----------------------------------------------------------------------------


def acknowledged_filter(stmt: Select[Any], value: bool, ctx: Context) -> Select[Any]:
    """Read or unread relative to the caller's horizon in each message's channel."""
    viewer = ctx.acting_individual_id
    if viewer is None:
        raise ApiError(
            400,
            [
                ErrorItem(
                    "acknowledged needs individual-id: whose reading to compare with",
                    "missing-individual",
                    parameter="acknowledged",
                )
            ],
            {},
            True,
        )
    horizon = repo.horizon_of(ctx.organization_id, viewer)
    posted = and_(MessagingMessage.draft == false(), MessagingMessage.seq.is_not(None))
    if value:
        return stmt.where(posted, MessagingMessage.seq <= horizon)
    return stmt.where(posted, MessagingMessage.seq > horizon)


def text_filter(stmt: Select[Any], value: str, _ctx: Context) -> Select[Any]:
    """Substring of the text, any case; a removed message's text is never searched."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return stmt.where(
        MessagingMessage.removed == false(),
        func.lower(MessagingMessage.message).like(f"%{escaped.lower()}%", escape="\\"),
    )


def accept_only(stmt: Select[Any], _value: Any, _ctx: Context) -> Select[Any]:
    """A parameter that shapes the rendering, not the rows (validated by the list parser)."""
    return stmt
