"""The rules of bulk messages: one message from a provider to many people, each receiving it
in their direct channel with the sender.

Life of a bulk message (docs/MESSAGING_EXTENDED.md):

- ``draft`` (``draft: true``): kept, editable (``message``, ``message-js``), attachments may be
  added; nothing is sent.
- ``queued``: created with ``draft: false`` or PATCHed so. The request only enqueues the plan
  job, so it answers at once.
- ``posting``: the plan job expanded the recipients (``individual-ids`` plus the members of
  ``individual-group-ids`` at that moment, without duplicates and without the sender), chose
  each one's text by their locale, wrote one ``bulk_message_recipients`` row each and enqueued
  one job per chunk of recipients.
- ``posted``: every chunk is done; ``posted-time`` set.

A chunk job posts its pending recipients' messages and marks their rows ``posted`` (or
``skipped``) in one transaction: a worker killed mid-chunk leaves nothing of that chunk, and the
chunk is taken up again; a chunk that committed is never posted twice (its rows are no longer
pending and its job is done). Nobody receives a bulk message twice.

Services never commit. The jobs call the ``plan``/``post_chunk`` functions in their session.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, bindparam, case, false, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.errors import (
    ApiError,
    ErrorItem,
    conflict,
    invalid_attribute,
    unprocessable,
)
from courier.core.tenancy import scoped
from courier.core.time import now_ms, utcnow
from courier.domains.messaging.access import require_group, require_individual
from courier.domains.messaging.channels import NewChannel, create_channels
from courier.domains.messaging.locales import choose_text_key, reader_locales
from courier.domains.messaging.posting import AuditActor, NewPost, post_messages
from courier.domains.messaging.schemas import CHANNEL_TYPE
from courier.domains.messaging_bulk.schemas import (
    BULK_TYPE,
    BulkMessageCreate,
    BulkMessageUpdate,
)
from courier.events import publish
from courier.jobs import enqueue
from courier.jsonapi.changes import Actor, change, write_changes
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroupMember
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from courier.models.messaging_attachment import AttachmentStatus, MessagingAttachment
from courier.models.messaging_bulk import (
    BulkMessageRecipient,
    BulkStatus,
    MessagingBulkAttachment,
    MessagingBulkMessage,
    RecipientStatus,
)

log = logging.getLogger("courier.messaging_bulk")

PLAN_JOB = "messaging-bulk-messages.plan"
CHUNK_JOB = "messaging-bulk-messages.post-chunk"
SOURCE = "bulk-message"  # the ``source`` of every message a bulk message posts
CHUNK = 500  # ids per IN (...)

UNCHANGED = "messaging_bulk.unchanged"  # ctx.extras key: ids a PATCH left as they were
NO_DIRECT_CHANNEL = "no-direct-channel"
SENDER_REMOVED = "sender-removed"
NO_TEXT = "no-text"


# --- reading -----------------------------------------------------------------------------------


async def load_bulk(
    session: AsyncSession,
    organization_id: uuid.UUID,
    ident: uuid.UUID,
    *,
    for_update: bool = False,
) -> MessagingBulkMessage | None:
    stmt = scoped(select(MessagingBulkMessage), MessagingBulkMessage, organization_id).where(
        MessagingBulkMessage.id == ident
    )
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    found: MessagingBulkMessage | None = (
        await session.execute(stmt.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    return found


def text_for(bulk: MessagingBulkMessage, key: str | None) -> str:
    """The text a recipient gets: the ``message-js`` entry chosen for them, else ``message``."""
    if key is not None:
        chosen = (bulk.message_js or {}).get(key)
        if isinstance(chosen, str) and chosen.strip():
            return chosen
    return bulk.message


def fallback_key(bulk: MessagingBulkMessage) -> str | None:
    """For a recipient no translation fits: ``message``, else English, else the first entry."""
    if bulk.message.strip():
        return None
    texts = {k: v for k, v in (bulk.message_js or {}).items() if v.strip()}
    return choose_text_key(texts, "en") or (min(texts) if texts else None)


def has_text(message: str, message_js: dict[str, str]) -> bool:
    return bool(message.strip()) or any(v.strip() for v in message_js.values())


# --- the resource ------------------------------------------------------------------------------


SKIP_DETAILS = {
    NO_DIRECT_CHANNEL: "the recipient has no direct channel with the sender; send with "
    "auto-create-channel: true to create one",
    NO_TEXT: "neither message nor a message-js entry gives a text for the recipient's language",
    SENDER_REMOVED: "the sender's data was purged before the message reached the recipient",
}


async def skipped_recipients(
    session: AsyncSession, organization_id: uuid.UUID, bulk_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Each bulk message's skipped recipients and why, in recipient order (one query)."""
    found: dict[uuid.UUID, list[dict[str, Any]]] = {ident: [] for ident in bulk_ids}
    if not bulk_ids:
        return found
    columns = cast(
        "Select[Any]",
        select(
            BulkMessageRecipient.bulk_message_id,
            BulkMessageRecipient.recipient_id,
            BulkMessageRecipient.skip_reason,
        ),
    )
    rows = await session.execute(
        scoped(columns, BulkMessageRecipient, organization_id)
        .where(
            BulkMessageRecipient.bulk_message_id.in_(list(bulk_ids)),
            BulkMessageRecipient.status == RecipientStatus.SKIPPED.value,
        )
        .order_by(BulkMessageRecipient.bulk_message_id, BulkMessageRecipient.recipient_id)
    )
    for bulk_id, recipient, reason in rows:
        found[bulk_id].append(
            {
                "individual-id": str(recipient),
                "reason": reason,
                "detail": SKIP_DETAILS.get(reason, reason),
            }
        )
    return found


class BulkMessageService(CrudService[MessagingBulkMessage]):
    async def present(
        self, ctx: Context, rows: Sequence[MessagingBulkMessage]
    ) -> list[dict[str, Any]]:
        shown = await super().present(ctx, rows)
        posted = [row.id for row in rows if row.skipped_count]
        skipped = await skipped_recipients(ctx.session, ctx.organization_id, posted)
        for row, attributes in zip(rows, shown, strict=True):
            attributes["skipped"] = skipped.get(row.id, [])
        return shown

    def individuals_of(self, obj: MessagingBulkMessage) -> Sequence[uuid.UUID]:
        return (obj.sender_individual_id,) if obj.sender_individual_id else ()

    async def create(self, ctx: Context, attrs: WriteAttributes) -> MessagingBulkMessage:
        assert isinstance(attrs, BulkMessageCreate)
        sender_id = attrs.sender_individual_id or ctx.acting_individual_id
        if sender_id is None:
            raise invalid_attribute(
                "sender-individual-id",
                "is required (or individual-id of the call): the provider who sends it",
                "missing-individual",
            )
        sender = await require_individual(ctx, sender_id, "/data/attributes/sender-individual-id")
        if sender.account_type != "provider":
            raise unprocessable(
                "the sender of a bulk message must be a provider of the organization",
                "sender-not-provider",
            )
        if attrs.sender_individual_group_id is not None:
            pointer = "/data/attributes/sender-individual-group-id"
            await require_group(ctx, attrs.sender_individual_group_id, pointer)
            member = await ctx.session.execute(
                scoped(
                    select(IndividualGroupMember.individual_id),
                    IndividualGroupMember,
                    ctx.organization_id,
                ).where(
                    IndividualGroupMember.group_id == attrs.sender_individual_group_id,
                    IndividualGroupMember.individual_id == sender_id,
                )
            )
            if member.scalar_one_or_none() is None:
                raise unprocessable(
                    "the sender does not belong to sender-individual-group-id", "not-a-member"
                )
        if not attrs.individual_ids and not attrs.individual_group_ids:
            raise invalid_attribute(
                "individual-ids", "or individual-group-ids is required: who receives it"
            )
        await _require_individuals(ctx, attrs.individual_ids)
        for group_id in attrs.individual_group_ids:
            await require_group(ctx, group_id, "/data/attributes/individual-group-ids")
        if not attrs.draft and not has_text(attrs.message, attrs.message_js):
            raise invalid_attribute("message", "must not be empty (or give message-js)")
        now = now_ms()
        bulk = MessagingBulkMessage(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            sender_individual_id=sender_id,
            sender_individual_group_id=attrs.sender_individual_group_id,
            created_by=ctx.acting_individual_id or sender_id,
            actor_type=ctx.principal.kind.value,
            actor_id=ctx.principal.actor_id,
            message=attrs.message,
            message_js=dict(attrs.message_js),
            individual_ids=[str(i) for i in attrs.individual_ids],
            individual_group_ids=[str(i) for i in attrs.individual_group_ids],
            auto_create_channel=attrs.auto_create_channel is True,
            auto_ack=attrs.auto_ack is not False,
            draft=True,
            status=BulkStatus.DRAFT.value,
            created_at=now,
            last_modified_at=now,
        )
        ctx.session.add(bulk)
        if not attrs.draft:
            await submit(ctx.session, bulk)
        return bulk

    async def update(
        self, ctx: Context, obj: MessagingBulkMessage, attrs: WriteAttributes
    ) -> MessagingBulkMessage:
        assert isinstance(attrs, BulkMessageUpdate)
        given = attrs.given()
        nulls = [
            ErrorItem(
                f"{name.replace('_', '-')} must not be null",
                "null-attribute",
                pointer=f"/data/attributes/{name.replace('_', '-')}",
            )
            for name, value in sorted(given.items())
            if value is None
        ]
        if nulls:
            raise ApiError(400, nulls, {}, True)
        if not obj.draft:
            if given.get("draft") is True:
                raise conflict("a bulk message that was sent cannot become a draft", "posted")
            if ("message" in given and given["message"] != obj.message) or (
                "message_js" in given and given["message_js"] != obj.message_js
            ):
                raise conflict("a bulk message that was sent cannot be edited", "posted")
            ctx.extras.setdefault(UNCHANGED, set()).add(obj.id)  # sending again: nothing
            return obj
        changed = False
        if "message" in given and given["message"] != obj.message:
            obj.message = given["message"]
            changed = True
        if "message_js" in given and given["message_js"] != obj.message_js:
            obj.message_js = dict(given["message_js"])
            changed = True
        if given.get("draft") is False:
            if not has_text(obj.message, obj.message_js):
                raise invalid_attribute("message", "must not be empty (or give message-js)")
            await _refuse_pending_uploads(ctx, obj)
            await submit(ctx.session, obj)
            changed = True
        if changed:
            obj.last_modified_at = now_ms()
        else:
            ctx.extras.setdefault(UNCHANGED, set()).add(obj.id)
        return obj

    def audit(
        self, ctx: Context, action: str, obj: MessagingBulkMessage, fields: Sequence[str] = ()
    ) -> None:
        """A PATCH that changes nothing is neither audited nor announced."""
        if action == "updated" and obj.id in ctx.extras.get(UNCHANGED, set()):
            return
        super().audit(ctx, action, obj, fields)


async def _require_individuals(ctx: Context, ids: Sequence[uuid.UUID]) -> None:
    found: set[uuid.UUID] = set()
    stmt = scoped(select(Individual.id), Individual, ctx.organization_id)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found.update((await ctx.session.execute(stmt.where(Individual.id.in_(chunk)))).scalars())
    unknown = [ident for ident in ids if ident not in found]
    if unknown:
        raise ApiError(
            404,
            [
                ErrorItem(
                    f"individual-ids names no individual of this organization: {unknown[0]}"
                    + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""),
                    "not-found",
                    pointer="/data/attributes/individual-ids",
                )
            ],
        )


async def _refuse_pending_uploads(ctx: Context, bulk: MessagingBulkMessage) -> None:
    """An attachment still uploading would be left out: send once it is processed (or its
    upload window has closed)."""
    stmt = scoped(
        select(func.count()).where(
            MessagingBulkAttachment.bulk_message_id == bulk.id,
            MessagingBulkAttachment.status == AttachmentStatus.PENDING.value,
            MessagingBulkAttachment.upload_expires_at > utcnow(),
        ),
        MessagingBulkAttachment,
        ctx.organization_id,
    )
    if (await ctx.session.execute(stmt)).scalar_one():
        raise conflict(
            "an attachment of this bulk message is still uploading: process it "
            "(POST .../process-upload/) before sending",
            "attachment-pending",
        )


async def submit(session: AsyncSession, bulk: MessagingBulkMessage) -> None:
    """Stop being a draft: the plan job expands the recipients and starts the fan-out."""
    bulk.draft = False
    bulk.status = BulkStatus.QUEUED.value
    bulk.submitted_at = now_ms()
    await enqueue(
        session,
        PLAN_JOB,
        {"bulk_message_id": bulk.id},
        organization_id=bulk.organization_id,
        dedupe_key=f"{PLAN_JOB}:{bulk.id}",
    )


def include_posted_filter(stmt: Select[Any], include: bool, _ctx: Context) -> Select[Any]:
    """By default only what is still to come (drafts, queued, posting)."""
    if include:
        return stmt
    return stmt.where(MessagingBulkMessage.posted_time.is_(None))


# --- planning (the plan job) -------------------------------------------------------------------


async def expand_recipients(session: AsyncSession, bulk: MessagingBulkMessage) -> list[uuid.UUID]:
    """The listed individuals that still exist and the groups' members now, without
    duplicates and without the sender, in id order."""
    org = bulk.organization_id
    wanted: set[uuid.UUID] = set()
    listed = [uuid.UUID(i) for i in bulk.individual_ids]
    for start in range(0, len(listed), CHUNK):
        stmt = scoped(select(Individual.id), Individual, org).where(
            Individual.id.in_(listed[start : start + CHUNK])
        )
        wanted.update((await session.execute(stmt)).scalars())
    groups = [uuid.UUID(i) for i in bulk.individual_group_ids]
    if groups:
        stmt = scoped(
            select(IndividualGroupMember.individual_id), IndividualGroupMember, org
        ).where(IndividualGroupMember.group_id.in_(groups))
        wanted.update((await session.execute(stmt)).scalars())
    if bulk.sender_individual_id is not None:
        wanted.discard(bulk.sender_individual_id)
    return sorted(wanted)


async def plan(session: AsyncSession, settings: Settings, bulk: MessagingBulkMessage) -> int:
    """Write the recipients (one row each, in chunks) and enqueue one job per chunk.
    Returns the number of recipients. In the plan job's transaction: all or nothing."""
    org = bulk.organization_id
    recipients = await expand_recipients(session, bulk)
    locales = await reader_locales(session, org, recipients)
    texts = {k: v for k, v in (bulk.message_js or {}).items() if v.strip()}
    default = fallback_key(bulk)
    size = settings.bulk_message_chunk_size
    rows = [
        {
            "organization_id": org,
            "bulk_message_id": bulk.id,
            "recipient_id": ident,
            "chunk": index // size,
            "text_key": choose_text_key(texts, locales.get(ident)) or default,
            "status": RecipientStatus.PENDING.value,
        }
        for index, ident in enumerate(recipients)
    ]
    connection = await session.connection()
    table: Any = BulkMessageRecipient.__table__
    for start in range(0, len(rows), 1000):
        # A Core insert names its organization in every row (not a query the guard scopes).
        await connection.execute(insert(table), rows[start : start + 1000])
    chunks = math.ceil(len(rows) / size)
    now = now_ms()
    bulk.recipient_count = len(rows)
    bulk.chunk_count = chunks
    bulk.last_modified_at = now
    if chunks == 0:
        bulk.status = BulkStatus.POSTED.value
        bulk.posted_time = now
        _announce(session, bulk, "posted")
        return 0
    bulk.status = BulkStatus.POSTING.value
    for chunk in range(chunks):
        await enqueue(
            session,
            CHUNK_JOB,
            {"bulk_message_id": bulk.id, "chunk": chunk},
            organization_id=org,
            dedupe_key=f"{CHUNK_JOB}:{bulk.id}:{chunk}",
        )
    _announce(session, bulk, "updated")
    return len(rows)


def _announce(session: AsyncSession, bulk: MessagingBulkMessage, verb: str) -> None:
    publish(
        session,
        organization_id=bulk.organization_id,
        resource_type=BULK_TYPE,
        verb=verb,
        resource_id=bulk.id,
        individual_ids=[bulk.sender_individual_id] if bulk.sender_individual_id else [],
        data={"id": str(bulk.id), "status": bulk.status},
    )


# --- direct channels ---------------------------------------------------------------------------


async def find_direct_channels(
    session: AsyncSession,
    organization_id: uuid.UUID,
    sender_id: uuid.UUID,
    recipient_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, uuid.UUID]:
    """recipient -> their direct channel with the sender: subscribers exactly the two of them,
    no group, not archived (several: the most recently active).

    Three plain index lookups per 500 recipients, driven by the recipients' own subscriptions
    (a handful each), never by the sender's, which grow with every channel a fan-out creates;
    no join a planner with stale statistics could turn into a scan per row."""
    org = organization_id
    pairs = cast(
        "Select[Any]", select(MessagingSubscriber.channel_id, MessagingSubscriber.individual_id)
    )
    sizes = cast(
        "Select[Any]",
        select(
            MessagingSubscriber.channel_id,
            func.count(),
            func.sum(case((MessagingSubscriber.individual_id == sender_id, 1), else_=0)),
        ),
    )
    channels = cast(
        "Select[Any]",
        select(MessagingChannel.id, MessagingChannel.last_message_at, MessagingChannel.created_at),
    )
    found: dict[uuid.UUID, tuple[datetime, uuid.UUID]] = {}
    for start in range(0, len(recipient_ids), CHUNK):
        chunk = recipient_ids[start : start + CHUNK]
        subscribed = list(
            await session.execute(
                scoped(pairs, MessagingSubscriber, org).where(
                    MessagingSubscriber.individual_id.in_(chunk)
                )
            )
        )
        candidates = list(dict.fromkeys(channel for channel, _person in subscribed))
        direct: set[uuid.UUID] = set()
        active: dict[uuid.UUID, datetime] = {}
        for part in range(0, len(candidates), CHUNK):
            ids = candidates[part : part + CHUNK]
            counted = await session.execute(
                scoped(sizes, MessagingSubscriber, org)
                .where(MessagingSubscriber.channel_id.in_(ids))
                .group_by(MessagingSubscriber.channel_id)
            )
            two = [channel for channel, size, mine in counted if size == 2 and mine == 1]
            if not two:
                continue
            rows = await session.execute(
                scoped(channels, MessagingChannel, org).where(
                    MessagingChannel.id.in_(two),
                    MessagingChannel.individual_group_id.is_(None),
                    MessagingChannel.archived == false(),
                )
            )
            for channel, last_message_at, created_at in rows:
                direct.add(channel)
                active[channel] = _aware(last_message_at or created_at)
        for channel, person in subscribed:
            if channel not in direct or person == sender_id:
                continue
            best = found.get(person)
            if best is None or (active[channel], channel) > best:
                found[person] = (active[channel], channel)
    return {recipient: channel for recipient, (_at, channel) in found.items()}


def _aware(value: Any) -> datetime:
    if isinstance(value, str):  # an expression's value bypasses the column type on SQLite
        value = datetime.fromisoformat(value)
    moment: datetime = value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def pair_lock_key(organization_id: uuid.UUID, a: uuid.UUID, b: uuid.UUID) -> int:
    low, high = sorted((str(a), str(b)))
    digest = hashlib.sha256(f"courier:direct:{organization_id}:{low}:{high}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_pairs(
    session: AsyncSession,
    organization_id: uuid.UUID,
    sender_id: uuid.UUID,
    recipient_ids: Iterable[uuid.UUID],
) -> None:
    """PostgreSQL: hold a transaction lock per (sender, recipient) pair, in key order, so two
    fan-outs never both create the same direct channel. (SQLite's write lock already
    serialises the whole transaction.)"""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({pair_lock_key(organization_id, sender_id, r) for r in recipient_ids})
    if keys:
        await session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS ordered"
            ),
            {"keys": keys},
        )


_RECIPIENTS: Any = BulkMessageRecipient.__table__


async def create_direct_channels(
    session: AsyncSession,
    organization_id: uuid.UUID,
    sender_id: uuid.UUID,
    recipient_ids: Sequence[uuid.UUID],
    actor: AuditActor,
) -> dict[uuid.UUID, uuid.UUID]:
    """A new channel per recipient, with the sender (its owner and admin) and the recipient,
    made the one way channels are made (:func:`channels.create_channels`), audit row and
    ``created`` event included. Returns recipient -> channel id."""
    new = {
        recipient: NewChannel(
            subscribers=[sender_id, recipient],
            admins=frozenset({sender_id}),
            owner_id=sender_id,
            created_by=sender_id,
        )
        for recipient in recipient_ids
    }
    created = await create_channels(session, organization_id, list(new.values()))
    write_changes(
        session,
        [
            change(
                CHANNEL_TYPE,
                channel.channel_id,
                "created",
                fields=["individual_ids"],
                audience=created[channel.channel_id],
                organization_id=organization_id,
            )
            for channel in new.values()
        ],
        actor=Actor(actor.actor_type, actor.actor_id),
        request_id=actor.request_id,
        organization_id=organization_id,
    )
    return {recipient: channel.channel_id for recipient, channel in new.items()}


# --- posting a chunk (the chunk jobs) ----------------------------------------------------------

_MARK_DONE = (
    update(_RECIPIENTS)
    .where(
        _RECIPIENTS.c.organization_id == bindparam("b_org"),  # tenancy-ok: per parameter set
        _RECIPIENTS.c.bulk_message_id == bindparam("b_bulk"),
        _RECIPIENTS.c.recipient_id == bindparam("b_recipient"),
        _RECIPIENTS.c.status == RecipientStatus.PENDING.value,
    )
    .values(
        status=bindparam("b_status"),
        skip_reason=bindparam("b_reason"),
        channel_id=bindparam("b_channel"),
        message_id=bindparam("b_message"),
        done_at=bindparam("b_done"),
    )
)


async def post_chunk(
    session: AsyncSession, bulk: MessagingBulkMessage, chunk: int
) -> dict[str, int]:
    """Post the chunk's pending recipients' messages, mark each row posted or skipped, and
    count the chunk done (the last one marks the bulk message posted). One transaction."""
    org = bulk.organization_id
    pending = cast(
        "Select[Any]", select(BulkMessageRecipient.recipient_id, BulkMessageRecipient.text_key)
    )
    rows: list[tuple[uuid.UUID, str | None]] = [
        (recipient, key)
        for recipient, key in await session.execute(
            scoped(pending, BulkMessageRecipient, org)
            .where(
                BulkMessageRecipient.bulk_message_id == bulk.id,
                BulkMessageRecipient.chunk == chunk,
                BulkMessageRecipient.status == RecipientStatus.PENDING.value,
            )
            .order_by(BulkMessageRecipient.recipient_id)
        )
    ]
    now = now_ms()
    skipped: dict[uuid.UUID, str] = {}
    delivered: dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]] = {}  # recipient: channel, message
    sender = bulk.sender_individual_id
    if rows and sender is None:
        skipped = {recipient: SENDER_REMOVED for recipient, _key in rows}
    elif rows:
        assert sender is not None
        actor = AuditActor(bulk.actor_type, bulk.actor_id, None, ("channel_id", "message"))
        ids = [recipient for recipient, _key in rows]
        direct = await find_direct_channels(session, org, sender, ids)
        missing = [ident for ident in ids if ident not in direct]
        if missing and bulk.auto_create_channel:
            await lock_pairs(session, org, sender, missing)
            direct.update(await find_direct_channels(session, org, sender, missing))
            missing = [ident for ident in ids if ident not in direct]
            direct.update(await create_direct_channels(session, org, sender, missing, actor))
        posts: list[NewPost] = []
        targets: list[uuid.UUID] = []
        for recipient, key in rows:
            body = text_for(bulk, key)
            if recipient not in direct:
                skipped[recipient] = NO_DIRECT_CHANNEL
            elif not body.strip():
                skipped[recipient] = NO_TEXT
            else:
                posts.append(
                    NewPost(
                        channel_id=direct[recipient],
                        author_id=sender,
                        text=body,
                        source=SOURCE,
                        bulk_message_id=bulk.id,
                        auto_ack=bulk.auto_ack,
                        audience=[sender, recipient],
                    )
                )
                targets.append(recipient)
        messages = await post_messages(session, org, posts, actor=actor)
        await attach_copies(session, bulk, messages, now)
        for recipient, message in zip(targets, messages, strict=True):
            delivered[recipient] = (message.channel_id, message.id)
    marks = [
        {
            "b_org": org,
            "b_bulk": bulk.id,
            "b_recipient": recipient,
            "b_status": RecipientStatus.POSTED.value
            if recipient in delivered
            else RecipientStatus.SKIPPED.value,
            "b_reason": skipped.get(recipient),
            "b_channel": delivered[recipient][0] if recipient in delivered else None,
            "b_message": delivered[recipient][1] if recipient in delivered else None,
            "b_done": now,
        }
        for recipient, _key in rows
    ]
    if marks:
        connection = await session.connection()
        await connection.execute(_MARK_DONE, marks)
    for recipient, reason in skipped.items():
        log.info(
            "bulk message recipient skipped",
            extra={
                "bulk_message_id": str(bulk.id),
                "recipient_id": str(recipient),
                "reason": reason,
            },
        )
    await finish_chunk(session, bulk, posted=len(delivered), skipped=len(skipped), now=now)
    return {"posted": len(delivered), "skipped": len(skipped)}


async def finish_chunk(
    session: AsyncSession,
    bulk: MessagingBulkMessage,
    *,
    posted: int,
    skipped: int,
    now: datetime,
) -> None:
    """Count the chunk in one UPDATE (concurrent chunks queue on the row, none is lost); the
    last one marks the bulk message posted."""
    last = MessagingBulkMessage.chunks_done + 1 >= MessagingBulkMessage.chunk_count
    stmt = (
        scoped(update(MessagingBulkMessage), MessagingBulkMessage, bulk.organization_id)
        .where(MessagingBulkMessage.id == bulk.id)
        .values(
            posted_count=MessagingBulkMessage.posted_count + posted,
            skipped_count=MessagingBulkMessage.skipped_count + skipped,
            chunks_done=MessagingBulkMessage.chunks_done + 1,
            status=case((last, BulkStatus.POSTED.value), else_=MessagingBulkMessage.status),
            posted_time=case((last, now), else_=MessagingBulkMessage.posted_time),
            last_modified_at=now,
        )
        .returning(MessagingBulkMessage.status)
        .execution_options(synchronize_session=False)
    )
    status = (await session.execute(stmt)).scalar_one()
    if status == BulkStatus.POSTED.value:
        refreshed = await load_bulk(session, bulk.organization_id, bulk.id)
        assert refreshed is not None
        _announce(session, refreshed, "posted")


async def attach_copies(
    session: AsyncSession,
    bulk: MessagingBulkMessage,
    messages: Sequence[Any],
    now: datetime,
) -> int:
    """Every ready bulk attachment becomes a messaging attachment of every posted message.

    The copies reference the bulk attachment's stored objects (storage_key, thumbnail_key):
    nothing is copied in storage, and deleting a copy's files (a purge) removes only objects
    under its own key prefix, never the shared ones (docs/MESSAGING_EXTENDED.md)."""
    if not messages:
        return 0
    stmt = scoped(
        select(MessagingBulkAttachment)
        .where(
            MessagingBulkAttachment.bulk_message_id == bulk.id,
            MessagingBulkAttachment.status == AttachmentStatus.READY.value,
        )
        .order_by(MessagingBulkAttachment.created_at, MessagingBulkAttachment.id),
        MessagingBulkAttachment,
        bulk.organization_id,
    )
    files = list((await session.execute(stmt)).scalars())
    if not files:
        return 0
    rows = [
        {
            "id": uuid.uuid4(),
            "organization_id": bulk.organization_id,
            "message_id": message.id,
            "individual_id": bulk.sender_individual_id,
            "created_by": bulk.actor_id,
            "filename": item.filename,
            "claimed_content_type": item.claimed_content_type,
            "content_type": item.content_type,
            "content_size": item.content_size,
            "status": AttachmentStatus.READY.value,
            "rejection": None,
            "removed": False,
            "removed_at": None,
            "upload_key": None,
            "upload_expires_at": item.upload_expires_at,
            "storage_key": item.storage_key,
            "thumbnail_key": item.thumbnail_key,
            "processed_at": now,
            "created_at": now,
            "last_modified_at": now,
        }
        for message in messages
        for item in files
    ]
    connection = await session.connection()
    table: Any = MessagingAttachment.__table__
    for start in range(0, len(rows), 1000):
        await connection.execute(insert(table), rows[start : start + 1000])
    return len(rows)
