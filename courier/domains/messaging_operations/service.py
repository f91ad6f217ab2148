"""Messaging operations: accepted at once (201), carried out by a job, shown with their logs.

``move-group`` moves channels from one individual group to another:

- the args are checked when the operation is created: both groups of the organization (404
  naming the arg) and different (400); listed ``channel-ids`` of the organization (404) and in
  the source group, or already in the target group (400), each naming its index;
- the job fixes the list of channels when it first runs (the listed ones, or every channel of
  the source group at that moment) and moves them one by one, each in one transaction with the
  record of its step: a channel is never half-moved, and a job that dies resumes with the
  channels it had not finished;
- moving a channel sets its ``individual-group-id`` to the target group, unsubscribes the
  source group's members who are not members of the target group, and subscribes the target
  group's members who were not subscribed (its leaders as channel admins). Everyone else stays
  as they were, read horizons included: individuals added to the channel by hand, and members
  of both groups;
- a channel already in the target group is logged ``already-in-target``; one that has left
  the source group meanwhile, or no longer exists, ``skipped``: running an operation again is
  harmless;
- should the target group disappear before the job is done, the operation fails (``failed``,
  with the reason in its logs); the channels moved before stay moved.

Each moved channel publishes ``messaging-channels.updated`` (and ``.subscribed`` /
``.unsubscribed`` for the individuals concerned) with an audit row in the name of the key that
started the operation; every status change publishes ``messaging-operations.updated``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import ApiError, ErrorItem, invalid_attribute, invalid_parameter, not_found
from courier.core.handlers import validation_items
from courier.core.time import format_timestamp, now_ms
from courier.domains.messaging import repository as messaging
from courier.domains.messaging_operations import repository as repo
from courier.domains.messaging_operations.schemas import (
    MOVE_GROUP,
    OPERATION_TYPE,
    MoveGroupArgs,
    OperationCreate,
    OperationRead,
)
from courier.events import publish
from courier.jobs import enqueue, jobs_by_id
from courier.jsonapi.changes import Actor, change, write_changes
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.query import parse_bool
from courier.jsonapi.resource import CrudService
from courier.models.job import JobState
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from courier.models.messaging_operation import MessagingOperation

OPERATION_JOB = "messaging-operations.run"
CHANNEL_TYPE = "messaging-channels"
FINISHED = frozenset({"completed", "failed"})
ARGS = "/data/attributes/args"


# --- creating ----------------------------------------------------------------------------


def parse_move_group(raw: dict[str, Any]) -> MoveGroupArgs:
    try:
        args = MoveGroupArgs.model_validate(raw)
    except ValidationError as exc:
        errors = [
            {**error, "loc": ("body", "data", "attributes", "args", *error.get("loc", ()))}
            for error in exc.errors()
        ]
        raise ApiError(400, validation_items(errors), {}, True) from exc
    if args.from_individual_group_id == args.to_individual_group_id:
        raise ApiError(
            400,
            [
                ErrorItem(
                    "to-individual-group-id must differ from from-individual-group-id",
                    "same-group",
                    pointer=f"{ARGS}/to-individual-group-id",
                )
            ],
            {},
            True,
        )
    return args


async def _check_move_group(ctx: Context, args: MoveGroupArgs) -> None:
    org = ctx.organization_id
    missing = [
        ErrorItem(
            f"{name} names no individual group of this organization: {ident}",
            "not-found",
            pointer=f"{ARGS}/{name}",
        )
        for name, ident in (
            ("from-individual-group-id", args.from_individual_group_id),
            ("to-individual-group-id", args.to_individual_group_id),
        )
        if not await repo.group_exists(ctx.session, org, ident)
    ]
    if missing:
        raise ApiError(404, missing, {}, True)
    if args.channel_ids is None:
        return
    groups = await repo.channel_groups(ctx.session, org, args.channel_ids)
    unknown: list[ErrorItem] = []
    outside: list[ErrorItem] = []
    for index, ident in enumerate(args.channel_ids):
        pointer = f"{ARGS}/channel-ids/{index}"
        if ident not in groups:
            unknown.append(
                ErrorItem(
                    f"channel-ids names no channel of this organization: {ident}",
                    "not-found",
                    pointer=pointer,
                )
            )
        elif groups[ident] not in (args.from_individual_group_id, args.to_individual_group_id):
            outside.append(
                ErrorItem(
                    f"channel-ids: channel {ident} is not in the source group "
                    "(from-individual-group-id)",
                    "not-in-source-group",
                    pointer=pointer,
                )
            )
    if unknown:
        raise ApiError(404, unknown, {}, True)
    if outside:
        raise ApiError(400, outside, {}, True)


def include_args(ctx: Context) -> bool:
    """Args are shown with ``include-args=true``, and to the POST that gave them."""
    if ctx.request.method == "POST":
        return True
    raw = ctx.request.query_params.get("include-args")
    if raw is None:
        return False
    try:
        return parse_bool(raw)
    except ValueError as exc:
        raise invalid_parameter("include-args", str(exc)) from exc


class OperationService(CrudService[MessagingOperation]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> MessagingOperation:
        assert isinstance(attrs, OperationCreate)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        if attrs.type != MOVE_GROUP:  # pragma: no cover - the schema allows move-group only
            raise invalid_attribute("type", f"must be {MOVE_GROUP}")
        args = parse_move_group(attrs.args)
        await _check_move_group(ctx, args)
        now = now_ms()
        operation = MessagingOperation(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            type=attrs.type,
            args=args.stored(),
            status="queued",
            logs={"steps": []},
            channel_ids=None,
            created_at=now,
            created_by=ctx.principal.key_id,
            last_modified_at=now,
        )
        ctx.session.add(operation)
        await ctx.session.flush()
        job = await enqueue(
            ctx.session,
            OPERATION_JOB,
            {"operation_id": operation.id},
            organization_id=ctx.organization_id,
        )
        operation.job_id = job.id
        return operation

    async def present(
        self, ctx: Context, rows: Sequence[MessagingOperation]
    ) -> list[dict[str, Any]]:
        with_args = include_args(ctx)
        job_ids = [r.job_id for r in rows if r.job_id is not None and r.status not in FINISHED]
        jobs = await jobs_by_id(ctx.session, ctx.organization_id, job_ids)
        out = []
        for row in rows:
            status, logs = row.status, dict(row.logs or {})
            job = jobs.get(row.job_id) if row.job_id is not None else None
            gave_up = job is not None and job.state in (JobState.FAILED, JobState.CANCELLED)
            if status not in FINISHED and job is not None and gave_up:
                # The job gave up without recording it (e.g. its worker died each time).
                status = "failed"
                logs.setdefault("error", f"the operation's job {job.id} is {job.state}")
            out.append(
                OperationRead.model_validate(
                    {
                        "args": row.args if with_args else None,
                        "created_at": row.created_at,
                        "created_by": row.created_by,
                        "last_modified_at": row.last_modified_at,
                        "logs": logs,
                        "organization_id": row.organization_id,
                        "status": status,
                        "type": row.type,
                    }
                ).model_dump(mode="json", by_alias=True)
            )
        return out


operations = OperationService()


# --- running (called by the job, in its session) -----------------------------------------


class MoveFailedError(Exception):
    """The operation cannot go on (raised before anything of the channel changed)."""


def set_status(session: AsyncSession, operation: MessagingOperation, status: str) -> None:
    operation.status = status
    operation.last_modified_at = now_ms()
    publish(
        session,
        organization_id=operation.organization_id,
        resource_type=OPERATION_TYPE,
        verb="updated",
        resource_id=operation.id,
        data={"id": str(operation.id), "status": status},
    )


def _append(operation: MessagingOperation, entry: dict[str, Any]) -> None:
    logs = dict(operation.logs or {})
    logs["steps"] = [*logs.get("steps", []), entry]
    operation.logs = logs  # a new object: JSON columns track assignment


def fail(
    session: AsyncSession,
    operation: MessagingOperation,
    detail: str,
    channel_id: uuid.UUID | None = None,
) -> None:
    entry: dict[str, Any] = {"at": format_timestamp(now_ms())}
    if channel_id is not None:
        entry["channel-id"] = str(channel_id)
    entry.update(result="failed", error=detail)
    _append(operation, entry)
    operation.logs = {**operation.logs, "error": detail}
    set_status(session, operation, "failed")


def _group_ids(operation: MessagingOperation) -> tuple[uuid.UUID, uuid.UUID]:
    args = operation.args
    return (
        uuid.UUID(str(args["from-individual-group-id"])),
        uuid.UUID(str(args["to-individual-group-id"])),
    )


async def plan_channels(session: AsyncSession, operation: MessagingOperation) -> list[str]:
    """The channels to move: those listed, or every channel of the source group now."""
    listed = operation.args.get("channel-ids")
    if listed is not None:
        return [str(ident) for ident in listed]
    source, _target = _group_ids(operation)
    channels = await repo.group_channels(session, operation.organization_id, source)
    return [str(ident) for ident in channels]


async def check_target(session: AsyncSession, operation: MessagingOperation) -> None:
    _source, target = _group_ids(operation)
    if not await repo.group_exists(session, operation.organization_id, target):
        raise MoveFailedError(
            "to-individual-group-id no longer names an individual group of this organization"
        )


async def move_channel(
    session: AsyncSession, operation: MessagingOperation, channel_id: uuid.UUID
) -> dict[str, Any]:
    """Move one channel (see the module docstring) and log it; returns its log entry.

    Everything it changes lands in the caller's transaction. :class:`MoveFailedError` is raised
    before anything changes.
    """
    org = operation.organization_id
    source, target = _group_ids(operation)
    await check_target(session, operation)
    channel = await repo.lock_channel(session, org, channel_id)
    now = now_ms()
    entry: dict[str, Any] = {"at": format_timestamp(now), "channel-id": str(channel_id)}
    if channel is None:
        entry.update(result="skipped", reason="the channel no longer exists")
    elif channel.individual_group_id == target:
        entry.update(result="already-in-target")
    elif channel.individual_group_id != source:
        entry.update(result="skipped", reason="the channel is no longer in the source group")
    else:
        added, removed = await _move(session, operation, channel, source, target, now)
        entry.update(result="moved", subscribed=len(added), unsubscribed=len(removed))
    _append(operation, entry)
    operation.last_modified_at = now
    return entry


async def _move(
    session: AsyncSession,
    operation: MessagingOperation,
    channel: MessagingChannel,
    source: uuid.UUID,
    target: uuid.UUID,
    now: datetime,
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    org = operation.organization_id
    old_members, _old_leaders = await messaging.group_members(session, org, source)
    new_members, new_leaders = await messaging.group_members(session, org, target)
    before = await repo.lock_subscriber_ids(session, org, channel.id)
    current = set(before)
    staying = set(new_members)
    leaving = set(old_members) - staying
    removed = sorted(ident for ident in before if ident in leaving)
    added = [ident for ident in new_members if ident not in current]
    for chunk in messaging.chunks(removed):
        await messaging.delete_subscribers(session, org, channel.id, chunk)
    for ident in added:
        session.add(
            MessagingSubscriber(
                organization_id=org,
                channel_id=channel.id,
                individual_id=ident,
                admin=ident in new_leaders,
                pinned=False,
                notify="all",
                preferences={},
                ack_seq=0,  # newcomers find the history unread, as on subscribe
                ack_provider_count=0,
                subscribed_at=now,
            )
        )
    channel.individual_group_id = target
    channel.last_modified_at = now
    await session.flush()  # any conflict surfaces here, before anything is announced
    await messaging.shift_subscriber_counts(session, org, {channel.id: len(added)})
    after = [ident for ident in before if ident not in set(removed)] + added
    fields = ["individual-group-id", "subscribers"] if added or removed else ["individual-group-id"]
    common = {"id": str(channel.id), "operation-id": str(operation.id)}
    write_changes(
        session,
        [
            change(
                CHANNEL_TYPE,
                channel.id,
                "updated",
                fields=fields,
                audience=[*before, *added],
                organization_id=org,
                data={**common, "fields": fields, "individual-group-id": str(target)},
            )
        ],
        actor=Actor("api-key", str(operation.created_by or "operation")),
        request_id=None,
        organization_id=org,
    )
    if added:
        publish(
            session,
            organization_id=org,
            resource_type=CHANNEL_TYPE,
            verb="subscribed",
            resource_id=channel.id,
            individual_ids=after,
            data={**common, "individual-ids": [str(ident) for ident in added]},
        )
    if removed:
        # Those removed hear of it too: their apps drop the channel.
        publish(
            session,
            organization_id=org,
            resource_type=CHANNEL_TYPE,
            verb="unsubscribed",
            resource_id=channel.id,
            individual_ids=before,
            data={**common, "individual-ids": [str(ident) for ident in removed]},
        )
    return added, removed
