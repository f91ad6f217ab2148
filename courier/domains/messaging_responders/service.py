"""The rules of auto-responders (docs/MESSAGING_EXTENDED.md).

- Admin keys create, change, enable and disable responders; every key reads them; individual
  tokens cannot use them.
- A responder belongs to an individual group. When a **participant** posts in a channel of that
  group while the responder is enabled and its calendar active (at the message's posted time,
  in the calendar's zone), the posting transaction enqueues a reply job (dedupe key per
  responder and message); the HTTP request never waits for the reply.
- The job posts the responder's text (``args.message-js`` by the participant's locale, else
  ``args.message``) into the channel with ``source: "auto-responder"``, as ``args.individual-id``
  or else the group's first leader (oldest individual first) who subscribes to the channel; at
  most once per channel per quiet period (``auto_responder_quiet_seconds``), claimed with one
  atomic upsert of the (responder, channel) row, so two posts at once never both get a reply.
- Providers' posts never trigger a responder, nor do auto-responder posts.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import ApiError, ErrorItem, invalid_attribute, not_found, unprocessable
from courier.core.time import now_ms
from courier.domains.messaging import repository as messaging
from courier.domains.messaging.access import require_group
from courier.domains.messaging.locales import choose_text_key, reader_locales
from courier.domains.messaging.posting import (
    AuditActor,
    NewPost,
    Posted,
    on_posted,
    post_messages,
)
from courier.domains.messaging_responders import repository as repo
from courier.domains.messaging_responders.calendar import Schedule, is_active
from courier.domains.messaging_responders.schemas import (
    CalendarArgs,
    ResponderArgs,
    ResponderCreate,
    ResponderUpdate,
)
from courier.domains.organizations.repository import organization_timezone
from courier.domains.people.repository import require_individual
from courier.jobs import enqueue
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import SwitchableService, touch
from courier.models.messaging_responder import MessagingResponder

log = logging.getLogger("courier.messaging_responders")

REPLY_JOB = "messaging-responders.reply"
SOURCE = "auto-responder"


def schedule_of(responder: MessagingResponder) -> Schedule:
    return Schedule.of(
        responder.calendar_args, start_at=responder.start_at, end_at=responder.end_at
    )


def render_args(responder: MessagingResponder) -> dict[str, Any]:
    args = dict(responder.args or {})
    if responder.individual_id is not None:
        args["individual-id"] = str(responder.individual_id)
    return args


# --- the resource ------------------------------------------------------------------------------


class ResponderService(SwitchableService[MessagingResponder]):
    async def present(
        self, ctx: Context, rows: Sequence[MessagingResponder]
    ) -> list[dict[str, Any]]:
        read = self.spec.read_schema
        out = []
        for row in rows:
            attributes = {
                "args": render_args(row),
                "calendar_args": row.calendar_args,
                "created_at": row.created_at,
                "created_by": row.created_by,
                "enabled": row.enabled,
                "end_at": row.end_at,
                "individual_group_id": row.individual_group_id,
                "last_modified_at": row.last_modified_at,
                "last_modified_by": row.last_modified_by,
                "name": row.name,
                "organization_id": row.organization_id,
                "start_at": row.start_at,
                "type": row.type,
            }
            out.append(read.model_validate(attributes).model_dump(mode="json", by_alias=True))
        return out

    async def create(self, ctx: Context, attrs: WriteAttributes) -> MessagingResponder:
        assert isinstance(attrs, ResponderCreate)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        await require_group(ctx, attrs.individual_group_id, "/data/attributes/individual-group-id")
        check_window(attrs.start_at, attrs.end_at)
        args = await checked_args(ctx, attrs.args, attrs.individual_group_id)
        now = now_ms()
        responder = MessagingResponder(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            name=attrs.name,
            type=attrs.type,
            args=args,
            individual_id=attrs.args.individual_id,
            calendar_args=await checked_calendar(ctx, attrs.calendar_args),
            individual_group_id=attrs.individual_group_id,
            enabled=True,
            start_at=attrs.start_at,
            end_at=attrs.end_at,
            created_at=now,
            created_by=ctx.principal.key_id,
            last_modified_at=now,
            last_modified_by=ctx.principal.key_id,
        )
        ctx.session.add(responder)
        return responder

    async def update(
        self, ctx: Context, obj: MessagingResponder, attrs: WriteAttributes
    ) -> MessagingResponder:
        assert isinstance(attrs, ResponderUpdate)
        given = attrs.given()
        nullable = {"name", "start_at", "end_at"}
        nulls = [
            ErrorItem(
                f"{name.replace('_', '-')} must not be null",
                "null-attribute",
                pointer=f"/data/attributes/{name.replace('_', '-')}",
            )
            for name, value in sorted(given.items())
            if value is None and name not in nullable
        ]
        if nulls:
            raise ApiError(400, nulls, {}, True)
        group_id = given.get("individual_group_id", obj.individual_group_id)
        if "individual_group_id" in given:
            await require_group(ctx, group_id, "/data/attributes/individual-group-id")
        check_window(given.get("start_at", obj.start_at), given.get("end_at", obj.end_at))
        changed = False
        if "args" in given or "individual_group_id" in given:
            current = ResponderArgs.model_validate(render_args(obj))
            new_args: ResponderArgs = given.get("args", current)
            args = await checked_args(ctx, new_args, group_id)
            if args != obj.args or new_args.individual_id != obj.individual_id:
                obj.args = args
                obj.individual_id = new_args.individual_id
                changed = True
        if "calendar_args" in given:
            calendar = await checked_calendar(ctx, given["calendar_args"])
            if calendar != obj.calendar_args:
                obj.calendar_args = calendar
                changed = True
        for name in ("name", "start_at", "end_at", "individual_group_id", "type"):
            if name in given and getattr(obj, name) != given[name]:
                setattr(obj, name, given[name])
                changed = True
        if changed:
            touch(ctx, obj)
        return obj


responders = ResponderService()


def check_window(start_at: datetime | None, end_at: datetime | None) -> None:
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise invalid_attribute("end-at", "must be after start-at")


async def checked_args(ctx: Context, args: ResponderArgs, group_id: uuid.UUID) -> dict[str, Any]:
    """What is stored of ``args``: the texts (the author has a column of its own)."""
    if not args.message.strip() and not any(t.strip() for t in args.message_js.values()):
        raise ApiError(
            400,
            [
                ErrorItem(
                    "args.message must not be empty (or give args.message-js)",
                    "invalid-attribute",
                    pointer="/data/attributes/args/message",
                )
            ],
            {},
            True,
        )
    if args.individual_id is not None:
        await require_individual(
            ctx, args.individual_id, pointer="/data/attributes/args/individual-id"
        )
        if not await messaging.is_group_member(
            ctx.session, ctx.organization_id, group_id, args.individual_id
        ):
            raise unprocessable(
                "args.individual-id must be a member of the responder's group", "not-a-member"
            )
    return {"message": args.message, "message-js": dict(args.message_js)}


async def checked_calendar(ctx: Context, calendar: CalendarArgs) -> dict[str, Any]:
    """The calendar as stored, with the organization's zone when it names none."""
    timezone = calendar.timezone
    if timezone is None:
        timezone = await organization_timezone(ctx.session, ctx.organization_id) or "UTC"
    return {
        "rules": [rule.model_dump(by_alias=True) for rule in calendar.rules],
        "timezone": timezone,
    }


# --- triggering (in the posting transaction) ---------------------------------------------------


@on_posted
async def enqueue_replies(
    session: AsyncSession, organization_id: uuid.UUID, posted: Sequence[Posted]
) -> None:
    """A participant's post in a group's channel while one of its responders is active: a
    reply job (deduplicated per responder and message). Cheap when nothing applies: no query
    for channels without a group or for auto-responder posts, one when a group has none."""
    candidates = [
        p
        for p in posted
        if p.individual_group_id is not None
        and p.message.individual_id is not None
        and p.message.source != SOURCE
    ]
    if not candidates:
        return
    groups = {p.individual_group_id for p in candidates}
    found = await repo.enabled_responders(session, organization_id, groups)
    if not found:
        return
    authors = {p.message.individual_id for p in candidates}
    participants = await repo.participants(session, organization_id, authors)
    for item in candidates:
        message = item.message
        if message.individual_id not in participants or message.posted_time is None:
            continue
        for responder in found:
            if responder.individual_group_id != item.individual_group_id:
                continue
            if not is_active(schedule_of(responder), message.posted_time):
                continue
            await enqueue(
                session,
                REPLY_JOB,
                {
                    "responder_id": responder.id,
                    "message_id": message.id,
                    "channel_id": message.channel_id,
                },
                organization_id=organization_id,
                dedupe_key=f"{REPLY_JOB}:{responder.id}:{message.id}",
            )


# --- replying (the reply job) ------------------------------------------------------------------


async def reply(
    session: AsyncSession,
    organization_id: uuid.UUID,
    responder_id: uuid.UUID,
    message_id: uuid.UUID,
    *,
    quiet_seconds: float,
) -> dict[str, Any]:
    """Post the responder's reply to ``message`` if it still applies. Never commits."""
    responder = await repo.responder(session, organization_id, responder_id)
    if responder is None or not responder.enabled:
        return {"replied": False, "reason": "responder-disabled"}
    trigger = await repo.message(session, organization_id, message_id)
    if trigger is None or trigger.posted_time is None or trigger.individual_id is None:
        return {"replied": False, "reason": "message-gone"}
    channel = await repo.channel(session, organization_id, trigger.channel_id)
    if (
        channel is None
        or channel.archived
        or channel.individual_group_id != responder.individual_group_id
    ):
        return {"replied": False, "reason": "channel-changed"}
    if not is_active(schedule_of(responder), trigger.posted_time):
        return {"replied": False, "reason": "inactive"}
    author = await repo.reply_author(session, responder, channel.id)
    if author is None:
        log.warning(
            "auto-responder has nobody to reply as in this channel",
            extra={"responder_id": str(responder.id), "channel_id": str(channel.id)},
        )
        return {"replied": False, "reason": "no-author"}
    if not await repo.claim_quiet_period(session, responder, channel.id, trigger, quiet_seconds):
        return {"replied": False, "reason": "quiet-period"}
    texts = {k: v for k, v in (responder.args.get("message-js") or {}).items() if v.strip()}
    locale = (await reader_locales(session, organization_id, [trigger.individual_id])).get(
        trigger.individual_id
    )
    key = choose_text_key(texts, locale)
    text = texts[key] if key else str(responder.args.get("message") or "")
    if not text.strip():
        text = texts[choose_text_key(texts, "en") or min(texts)]
    actor = AuditActor("system", f"messaging-responders:{responder.id}", None, ("message",))
    (posted,) = await post_messages(
        session,
        organization_id,
        [NewPost(channel_id=channel.id, author_id=author, text=text, source=SOURCE)],
        actor=actor,
    )
    row = await repo.reply_slot(session, organization_id, responder.id, channel.id)
    row.reply_message_id = posted.id
    return {"replied": True, "message-id": str(posted.id)}
