"""The rules of bulk messages: one message from a provider to many people, each receiving it
in their direct channel with the sender.

Life of a bulk message (docs/MESSAGING_EXTENDED.md):

- ``draft`` (``draft: true``): kept, editable (``message``, ``message-js``), attachments may be
  added; nothing is sent.
- ``queued``: created with ``draft: false`` or PATCHed so. The request only starts its fan-out
  (:data:`.fanout.BULK_MESSAGES`), so it answers at once.
- ``posting``: the fan-out planned the recipients (:mod:`.planning`) and posts them chunk by
  chunk (:mod:`.posting`); each recipient gets exactly one message.
- ``posted``: every chunk is done; ``posted-time`` set.

This module holds the rules of the resource (who may send what, drafts, sending); the SQL is
in :mod:`.repository`. Bulk attachments are a kind of upload (:mod:`.uploads`, run by
:mod:`courier.uploads`; presented by :mod:`.attachments`). Services never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import (
    ApiError,
    ErrorItem,
    conflict,
    invalid_attribute,
    unprocessable,
)
from courier.core.time import now_ms
from courier.domains.messaging import repository as messaging
from courier.domains.messaging.access import require_group
from courier.domains.messaging_bulk import repository as repo
from courier.domains.messaging_bulk.fanout import BULK_MESSAGES
from courier.domains.messaging_bulk.planning import has_text
from courier.domains.messaging_bulk.posting import SKIP_DETAILS
from courier.domains.messaging_bulk.schemas import (
    BulkMessageCreate,
    BulkMessageRead,
    BulkMessageUpdate,
)
from courier.domains.people.repository import require_individual, require_individuals
from courier.jobs.fanout import fanouts_of, start
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.messaging_bulk import BulkStatus, MessagingBulkMessage

# The attributes a bulk message's fan-out keeps: its counts.
COUNTS = ("recipient_count", "posted_count", "skipped_count")


class BulkMessageService(CrudService[MessagingBulkMessage]):
    async def present(
        self, ctx: Context, rows: Sequence[MessagingBulkMessage]
    ) -> list[dict[str, Any]]:
        """Each bulk message with its fan-out's counts and whom it skipped, and why (two
        queries for the page)."""
        org = ctx.organization_id
        fanouts = await fanouts_of(ctx.session, BULK_MESSAGES, org, [row.id for row in rows])
        with_skips = {bulk: f.id for bulk, f in fanouts.items() if f.skipped_count}
        skipped = await repo.skipped_recipients(ctx.session, org, with_skips)
        shown = []
        for row in rows:
            fanout = fanouts.get(row.id)
            values = {
                name: getattr(row, name)
                for name in BulkMessageRead.model_fields
                if name not in COUNTS and name != "skipped"
            }
            values["recipient_count"] = fanout.target_count if fanout else 0
            values["posted_count"] = fanout.delivered_count if fanout else 0
            values["skipped_count"] = fanout.skipped_count if fanout else 0
            values["skipped"] = [
                {"individual_id": who, "reason": why, "detail": SKIP_DETAILS.get(why, why)}
                for who, why in skipped.get(row.id, [])
            ]
            read = BulkMessageRead.model_validate(values)
            shown.append(read.model_dump(mode="json", by_alias=True))
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
        sender = await require_individual(
            ctx, sender_id, pointer="/data/attributes/sender-individual-id"
        )
        if sender.account_type != "provider":
            raise unprocessable(
                "the sender of a bulk message must be a provider of the organization",
                "sender-not-provider",
            )
        if attrs.sender_individual_group_id is not None:
            team = attrs.sender_individual_group_id
            await require_group(ctx, team, "/data/attributes/sender-individual-group-id")
            if not await messaging.is_group_member(
                ctx.session, ctx.organization_id, team, sender_id
            ):
                raise unprocessable(
                    "the sender does not belong to sender-individual-group-id", "not-a-member"
                )
        if not attrs.individual_ids and not attrs.individual_group_ids:
            raise invalid_attribute(
                "individual-ids", "or individual-group-ids is required: who receives it"
            )
        await require_individuals(
            ctx, attrs.individual_ids, "/data/attributes/individual-ids", count_more=True
        )
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
    ) -> Changed[MessagingBulkMessage]:
        """Edit a draft, or send it. Once sent, ``draft: false`` again changes nothing (no
        audit row, no event); anything else is refused (409)."""
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
            return Changed(obj)  # sending again: nothing
        fields: list[str] = []
        if "message" in given and given["message"] != obj.message:
            obj.message = given["message"]
            fields.append("message")
        if "message_js" in given and given["message_js"] != obj.message_js:
            obj.message_js = dict(given["message_js"])
            fields.append("message_js")
        if given.get("draft") is False:
            if not has_text(obj.message, obj.message_js):
                raise invalid_attribute("message", "must not be empty (or give message-js)")
            await _refuse_pending_uploads(ctx, obj)
            await submit(ctx.session, obj)
            fields += ["draft", "status"]
        if not fields:
            return Changed(obj)
        obj.last_modified_at = now_ms()
        return self.changed(ctx, "updated", obj, fields)


async def _refuse_pending_uploads(ctx: Context, bulk: MessagingBulkMessage) -> None:
    """An attachment still uploading would be left out: send once it is processed (or its
    upload window has closed)."""
    if await repo.count_open_uploads(ctx.session, ctx.organization_id, bulk.id):
        raise conflict(
            "an attachment of this bulk message is still uploading: process it "
            "(POST .../process-upload/) before sending",
            "attachment-pending",
        )


async def submit(session: AsyncSession, bulk: MessagingBulkMessage) -> None:
    """Stop being a draft: its fan-out plans the recipients and posts to them."""
    bulk.draft = False
    bulk.status = BulkStatus.QUEUED.value
    bulk.submitted_at = now_ms()
    await start(session, BULK_MESSAGES, organization_id=bulk.organization_id, subject_id=bulk.id)
