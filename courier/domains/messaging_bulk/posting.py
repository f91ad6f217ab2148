"""Posting a bulk message: one chunk of recipients at a time, each in their direct channel.

The fan-out's deliver hook finds (or, with ``auto-create-channel``, creates) each recipient's
direct channel with the sender, posts the recipient's text there (the one way messages are
posted, :func:`courier.domains.messaging.posting.post_messages`) and references the bulk
attachments from it; a recipient it cannot reach is skipped with the reason. The fan-out marks
each recipient in the same transaction (:mod:`courier.jobs.fanout`): nobody receives a bulk
message twice. Its settle hook marks the bulk message ``posted``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.time import now_ms
from courier.domains.messaging.channels import NewChannel, create_channels
from courier.domains.messaging.posting import AuditActor, NewMessage, NewPost, post_messages
from courier.domains.messaging.schemas import CHANNEL_TYPE
from courier.domains.messaging_bulk import repository as repo
from courier.domains.messaging_bulk.planning import TEXT_KEY, announce_status, text_for
from courier.jobs import PermanentJobError
from courier.jobs.fanout import Delivered, FanoutRun, Outcome, Skipped, Target
from courier.jsonapi.changes import Actor, change, write_changes
from courier.models.messaging_attachment import AttachmentStatus
from courier.models.messaging_bulk import BulkStatus, MessagingBulkMessage

SOURCE = "bulk-message"  # the ``source`` of every message a bulk message posts

NO_DIRECT_CHANNEL = "no-direct-channel"
NO_TEXT = "no-text"
SENDER_REMOVED = "sender-removed"
SKIP_DETAILS = {
    NO_DIRECT_CHANNEL: "the recipient has no direct channel with the sender; send with "
    "auto-create-channel: true to create one",
    NO_TEXT: "neither message nor a message-js entry gives a text for the recipient's language",
    SENDER_REMOVED: "the sender's data was purged before the message reached the recipient",
}


async def post_to_recipients(run: FanoutRun, targets: Sequence[Target]) -> dict[uuid.UUID, Outcome]:
    """Post the chunk's messages; each recipient ``Delivered`` (channel and message) or
    ``Skipped`` (why)."""
    session, org = run.session, run.organization_id
    bulk = await repo.load_bulk(session, org, run.subject_id)
    if bulk is None:
        raise PermanentJobError("the bulk message no longer exists")
    sender = bulk.sender_individual_id
    if sender is None:
        return {target.id: Skipped(SENDER_REMOVED) for target in targets}
    actor = AuditActor(bulk.actor_type, bulk.actor_id, None, ("channel_id", "message"))
    ids = [target.id for target in targets]
    direct = await repo.find_direct_channels(session, org, sender, ids)
    missing = [ident for ident in ids if ident not in direct]
    if missing and bulk.auto_create_channel:
        await repo.lock_pairs(session, org, sender, missing)
        direct.update(await repo.find_direct_channels(session, org, sender, missing))
        missing = [ident for ident in ids if ident not in direct]
        direct.update(await create_direct_channels(session, org, sender, missing, actor))
    outcomes: dict[uuid.UUID, Outcome] = {}
    posts: list[NewPost] = []
    reached: list[uuid.UUID] = []
    for target in targets:
        body = text_for(bulk, (target.data or {}).get(TEXT_KEY))
        if target.id not in direct:
            outcomes[target.id] = Skipped(NO_DIRECT_CHANNEL)
        elif not body.strip():
            outcomes[target.id] = Skipped(NO_TEXT)
        else:
            posts.append(
                NewPost(
                    channel_id=direct[target.id],
                    author_id=sender,
                    text=body,
                    source=SOURCE,
                    bulk_message_id=bulk.id,
                    auto_ack=bulk.auto_ack,
                    audience=[sender, target.id],
                )
            )
            reached.append(target.id)
    messages = await post_messages(session, org, posts, actor=actor)
    await attach_copies(session, bulk, messages, now_ms())
    for recipient, message in zip(reached, messages, strict=True):
        outcomes[recipient] = Delivered(
            {"channel-id": str(message.channel_id), "message-id": str(message.id)}
        )
    return outcomes


async def mark_posted(run: FanoutRun) -> None:
    """Every recipient was handled: the bulk message is ``posted``."""
    bulk = await repo.load_bulk(run.session, run.organization_id, run.subject_id)
    if bulk is None:
        return
    now = now_ms()
    bulk.status = BulkStatus.POSTED.value
    bulk.posted_time = now
    bulk.last_modified_at = now
    announce_status(run.session, bulk, "posted")


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


async def attach_copies(
    session: AsyncSession,
    bulk: MessagingBulkMessage,
    messages: Sequence[NewMessage],
    now: datetime,
) -> int:
    """Every ready bulk attachment becomes a messaging attachment of every posted message.

    The copies reference the bulk attachment's stored objects (storage_key, thumbnail_key):
    nothing is copied in storage, and deleting a copy's files (a purge) removes only objects
    under its own key prefix, never the shared ones (docs/MESSAGING_EXTENDED.md)."""
    if not messages:
        return 0
    files = await repo.ready_attachments(session, bulk.organization_id, bulk.id)
    if not files:
        return 0
    rows: list[dict[str, Any]] = [
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
    await repo.insert_attachment_copies(session, rows)
    return len(rows)
