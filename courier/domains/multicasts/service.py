"""The rules of multicasts: a template sent as a notification to many people (docs/MULTICASTS.md).

Life of a multicast:

- ``queued``: accepted (``POST /v1/multicasts/``, ``/v1/user-multicasts/``,
  ``individuals/{id}/multicast``, ``users/{id}/multicast``). The request checks the template and
  its data and what the filter names, stores the multicast and starts its fan-out
  (:data:`.fanout.MULTICASTS`), so it answers at once.
- ``sending``: the plan job found the recipients; chunk jobs notify them, each exactly once.
- ``completed``: every recipient notified or skipped; or ``cancelled`` (``/cancel/``): the
  recipients not reached yet are skipped. ``/resume/`` re-queues the fan-out's jobs that used
  all their attempts (an outage); a completed or cancelled multicast cannot be resumed (409).

The ``task-id`` the one-shot routes answer is the multicast's id: its status and counts are
``GET /v1/multicasts/{id}/``, each recipient's outcome ``GET /v1/multicasts/{id}/get-recipients/``.
Services never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Select

from courier.core.errors import ApiError, ErrorItem, conflict, not_found
from courier.core.time import now_ms
from courier.domains.messaging import repository as messaging
from courier.domains.messaging.access import require_group
from courier.domains.messaging.render import flag, load_people, render_group
from courier.domains.multicasts import repository as repo
from courier.domains.multicasts.fanout import MULTICASTS, PLAN_JOB, USER_ID
from courier.domains.multicasts.schemas import (
    ALL_INDIVIDUALS,
    ALL_PARTICIPANTS,
    ALL_PROVIDERS,
    GROUP,
    INDIVIDUALS,
    MULTICAST_TYPE,
    USERS,
    EmptyValue,
    GroupValue,
    IndividualMulticastBody,
    IndividualsValue,
    MulticastCreate,
    RecipientRead,
    TaskRead,
    UserMulticastBody,
    UserMulticastCreate,
    UserMulticastRead,
    UsersValue,
)
from courier.domains.people.repository import require_individual, require_individuals
from courier.domains.templates.render import check_data
from courier.domains.templates.repository import find_template
from courier.domains.templates.service import individual_of_user
from courier.jobs.fanout import cancel, fanouts_of, start
from courier.jobs.outbox import requeue
from courier.jsonapi.actions import EmptyBody
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.fanout import Fanout, FanoutTarget
from courier.models.individual import Individual
from courier.models.job import Job
from courier.models.multicast import Multicast, MulticastStatus
from courier.models.user import User

FILTER_VALUES: dict[str, type[BaseModel]] = {
    ALL_PARTICIPANTS: EmptyValue,
    ALL_PROVIDERS: EmptyValue,
    ALL_INDIVIDUALS: EmptyValue,
    GROUP: GroupValue,
    INDIVIDUALS: IndividualsValue,
    USERS: UsersValue,
}
FINISHED = (MulticastStatus.COMPLETED.value, MulticastStatus.CANCELLED.value)


def _filter_value_error(exc: ValidationError, base: str) -> ApiError:
    items = []
    for error in exc.errors():
        where = "/".join(str(part) for part in error["loc"])
        pointer = f"{base}/{where}" if where else base
        shown = pointer.removeprefix("/data/attributes/").replace("/", ".")
        items.append(ErrorItem(f"{shown}: {error['msg']}", "invalid-filter-value", pointer=pointer))
    return ApiError(400, items, {}, True)


def _data_error(problems: list[str], pointer: str) -> ApiError:
    return ApiError(
        422,
        [
            ErrorItem(f"template data: {problem}", "invalid-template-data", pointer=pointer)
            for problem in problems
        ],
    )


def _stored_ids(ids: Sequence[uuid.UUID] | None) -> list[str]:
    return [str(ident) for ident in ids or []]


class MulticastService(CrudService[Multicast]):
    # --- sending -------------------------------------------------------------------------

    async def _send(
        self,
        ctx: Context,
        *,
        origin: str,
        filter_type: str,
        filter_value: dict[str, Any],
        template_ref: str,
        data: dict[str, Any],
        data_pointer: str,
        template_pointer: str,
        individual_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
    ) -> Multicast:
        """Check the template and its data, store the multicast and start its fan-out."""
        try:
            template = await find_template(ctx.session, ctx.organization_id, template_ref)
        except ApiError as exc:  # the template-id of this body, wherever it sits
            exc.items = [replace(item, pointer=template_pointer) for item in exc.items]
            raise
        problems = check_data(template.required_data, data)
        if problems:
            raise _data_error(problems, data_pointer)
        now = now_ms()
        group = filter_value.get("individual-group-id") if filter_type == GROUP else None
        multicast = Multicast(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            origin=origin,
            filter_type=filter_type,
            filter_value=filter_value,
            template_ref=template_ref,
            template_id=template.id,
            data=data,
            individual_group_id=uuid.UUID(group) if group else None,
            individual_ids=list(filter_value.get("individual-ids") or []),
            individual_group_ids=list(filter_value.get("individual-group-ids") or []),
            user_ids=list(filter_value.get("user-ids") or []),
            individual_id=individual_id,
            user_id=user_id,
            status=MulticastStatus.QUEUED.value,
            created_at=now,
            created_by=ctx.principal.key_id,
            last_modified_at=now,
        )
        ctx.session.add(multicast)
        await ctx.session.flush()
        await start(
            ctx.session, MULTICASTS, organization_id=ctx.organization_id, subject_id=multicast.id
        )
        return multicast

    async def _checked_filter(self, ctx: Context, attrs: MulticastCreate) -> dict[str, Any]:
        """The filter-value as stored, after checking that what it names exists (404)."""
        base = "/data/attributes/filter-value"
        raw = attrs.filter_value or {}
        try:
            value = FILTER_VALUES[attrs.filter_type].model_validate(raw)
        except ValidationError as exc:
            raise _filter_value_error(exc, base) from exc
        if isinstance(value, GroupValue):
            await require_group(ctx, value.individual_group_id, f"{base}/individual-group-id")
            return {"individual-group-id": str(value.individual_group_id)}
        if isinstance(value, IndividualsValue):
            return await self._checked_individuals(
                ctx, value.individual_ids, value.individual_group_ids, base
            )
        if isinstance(value, UsersValue):
            found = await repo.existing_users(ctx.session, ctx.organization_id, value.user_ids)
            unknown = [ident for ident in value.user_ids if ident not in found]
            if unknown:
                raise ApiError(
                    404,
                    [
                        ErrorItem(
                            f"filter-value.user-ids names no user of this organization: "
                            f"{unknown[0]}"
                            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""),
                            "not-found",
                            pointer=f"{base}/user-ids",
                        )
                    ],
                )
            return {"user-ids": _stored_ids(value.user_ids)}
        return {}

    async def _checked_individuals(
        self,
        ctx: Context,
        individual_ids: Sequence[uuid.UUID] | None,
        group_ids: Sequence[uuid.UUID] | None,
        base: str,
    ) -> dict[str, Any]:
        if not individual_ids and not group_ids:
            raise ApiError(
                400,
                [
                    ErrorItem(
                        "name individual-ids or individual-group-ids (or both)",
                        "no-recipients",
                        pointer=base,
                    )
                ],
                {},
                True,
            )
        await require_individuals(ctx, individual_ids or [], f"{base}/individual-ids")
        for group in group_ids or []:
            await require_group(ctx, group, f"{base}/individual-group-ids")
        value: dict[str, Any] = {}
        if individual_ids:
            value["individual-ids"] = _stored_ids(individual_ids)
        if group_ids:
            value["individual-group-ids"] = _stored_ids(group_ids)
        return value

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[Multicast]:
        """Send a template to the people a filter names (201, ``queued``)."""
        assert isinstance(attrs, MulticastCreate)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        value = await self._checked_filter(ctx, attrs)
        multicast = await self._send(
            ctx,
            origin=MULTICAST_TYPE,
            filter_type=attrs.filter_type,
            filter_value=value,
            template_ref=attrs.template_id,
            data=attrs.data,
            data_pointer="/data/attributes/data",
            template_pointer="/data/attributes/template-id",
        )
        return self.changed(ctx, "created", multicast, sorted(attrs.model_fields_set))

    def _task(self, ctx: Context, multicast: Multicast) -> Changed[Any]:
        task = TaskRead(
            message_data={
                "multicast-id": str(multicast.id),
                "template-id": str(multicast.template_id),
                "status": multicast.status,
            },
            task_id=multicast.id,
        )
        return Changed(task, [self.change(ctx, "created", multicast, ["template-id", "data"])])

    async def do_individual_multicast(
        self, ctx: Context, individual: Individual, body: IndividualMulticastBody
    ) -> Changed[Any]:
        """Multicast a template to one individual (201; ``task-id``: the multicast's id)."""
        if body.organization_id is not None and body.organization_id != ctx.organization_id:
            raise not_found("organization")
        multicast = await self._send(
            ctx,
            origin="individual",
            filter_type=INDIVIDUALS,
            filter_value={"individual-ids": [str(individual.id)]},
            template_ref=body.template_id,
            data=body.template_data,
            data_pointer="/template-data",
            template_pointer="/template-id",
            individual_id=individual.id,
        )
        return self._task(ctx, multicast)

    async def do_user_multicast(
        self, ctx: Context, user: User, body: UserMulticastBody
    ) -> Changed[Any]:
        """Multicast a template to one user (201; ``task-id``: the multicast's id).

        The notification is for ``individual-id``: the user's primary individual (the
        default) or one the user manages (another: 422); a user with neither: 422."""
        if body.organization_id is not None and body.organization_id != ctx.organization_id:
            raise not_found("organization")
        individual = await individual_of_user(ctx, user, body.individual_id)
        if individual is None:
            raise ApiError(
                422,
                [
                    ErrorItem(
                        "the user has no primary individual to notify: name individual-id",
                        "user-without-individual",
                        pointer="/individual-id",
                    )
                ],
            )
        multicast = await self._send(
            ctx,
            origin="user",
            filter_type=USERS,
            filter_value={"user-ids": [str(user.id)]},
            template_ref=body.template_id,
            data=body.data,
            data_pointer="/data",
            template_pointer="/template-id",
            individual_id=individual.id,
            user_id=user.id,
        )
        return self._task(ctx, multicast)

    # --- cancel and resume ---------------------------------------------------------------

    async def load_unlocked(
        self, ctx: Context, ident: uuid.UUID, *, for_update: bool = False
    ) -> Multicast:
        """The multicast, not locked: a cancel takes the fan-out's locks first (targets, then
        the fan-out), then the multicast's, in the order a chunk that settles takes them."""
        return await self.load(ctx, ident)

    async def do_cancel(
        self, ctx: Context, multicast: Multicast, body: EmptyBody | None
    ) -> Changed[Multicast]:
        """Stop a multicast (201): recipients not reached yet are skipped (reason
        ``cancelled``); a chunk being notified at this moment finishes first. A completed or
        cancelled multicast: 409."""
        self._require_unfinished(multicast, "cancelled")
        fanout = await cancel(
            ctx.session, MULTICASTS, organization_id=ctx.organization_id, subject_id=multicast.id
        )
        # Re-read under its lock: a chunk that settled it, or another cancel, came first.
        locked = await repo.load_multicast(
            ctx.session, ctx.organization_id, multicast.id, lock=True
        )
        assert locked is not None
        self._require_unfinished(locked, "cancelled")
        if fanout is not None and fanout.state == "settled":
            raise conflict(
                "the multicast completed before it could be cancelled", "multicast-completed"
            )
        now = now_ms()
        locked.status = MulticastStatus.CANCELLED.value
        locked.cancelled_at = now
        locked.last_modified_at = now
        return self.changed(ctx, "cancelled", locked, ["status", "cancelled-at"])

    @staticmethod
    def _require_unfinished(multicast: Multicast, verb: str) -> None:
        if multicast.status in FINISHED:
            raise conflict(
                f"a {multicast.status} multicast cannot be {verb}",
                f"multicast-{multicast.status}",
            )

    async def do_resume(
        self, ctx: Context, multicast: Multicast, body: EmptyBody | None
    ) -> Changed[Multicast]:
        """Take up a multicast whose jobs gave up (201): its plan or chunk jobs that used all
        their attempts (an outage) get a fresh set, due now; what was notified stays notified.
        A completed or cancelled multicast, or one with no job given up: 409."""
        self._require_unfinished(multicast, "resumed")
        failed = await self._failed_jobs(ctx, multicast)
        if not failed:
            raise conflict(
                "the multicast is still being sent: none of its jobs gave up",
                "multicast-not-stalled",
            )
        for job in failed:
            requeue(ctx.session, job)
        multicast.last_modified_at = now_ms()
        return self.changed(ctx, "resumed", multicast, ["status"])

    async def _failed_jobs(self, ctx: Context, multicast: Multicast) -> list[Job]:
        return await repo.failed_jobs(
            ctx.session,
            ctx.organization_id,
            [PLAN_JOB, MULTICASTS.chunk_kind],
            (f"{PLAN_JOB}:{multicast.id}", f"{MULTICASTS.chunk_kind}:{multicast.id}:%"),
        )

    # --- reading -------------------------------------------------------------------------

    async def present(self, ctx: Context, rows: Sequence[Multicast]) -> list[dict[str, Any]]:
        """Each multicast with its fan-out's counts; include-individual-ids adds who it was
        planned for, include-individual-group the group with its members (a few queries per
        page, none per row)."""
        org = ctx.organization_id
        with_ids = flag(ctx, "include-individual-ids")
        with_group = flag(ctx, "include-individual-group")
        fanouts = await fanouts_of(ctx.session, MULTICASTS, org, [row.id for row in rows])
        planned = (
            await repo.planned_ids(ctx.session, org, [f.id for f in fanouts.values()])
            if with_ids
            else {}
        )
        people, users = await repo.names(
            ctx.session,
            org,
            [row.individual_id for row in rows if row.individual_id],
            [row.user_id for row in rows if row.user_id],
        )
        groups_shown: dict[uuid.UUID, Any] = {}
        if with_group:
            group_ids = list({row.individual_group_id for row in rows if row.individual_group_id})
            groups, members, leaders = await messaging.groups_with_people(
                ctx.session, org, group_ids
            )
            everyone = [i for ids in members.values() for i in ids]
            loaded = await load_people(ctx, everyone)
            redact = ctx.principal.is_individual
            groups_shown = {
                ident: render_group(group, members[ident], leaders[ident], loaded, redact)
                for ident, group in groups.items()
            }
        shown = []
        for row in rows:
            fanout = fanouts.get(row.id)
            named = people.get(row.individual_id) if row.individual_id else None
            counts = _counts(fanout)
            values = {
                "created_at": row.created_at,
                "created_by": row.created_by,
                "data": row.data,
                "template_args": row.data,
                "template_id": row.template_ref,
                "filter_type": row.filter_type,
                "filter_value": row.filter_value,
                "individual_group_id": row.individual_group_id,
                "individual_group": (
                    groups_shown.get(row.individual_group_id) if row.individual_group_id else None
                ),
                "individual_ids": (
                    planned.get(fanout.id)
                    if with_ids and fanout is not None and fanout.planned_at is not None
                    else None
                ),
                "individual_id": row.individual_id,
                "first_name": named[0] if named else None,
                "last_name": named[1] if named else None,
                "user_name": users.get(row.user_id) if row.user_id else None,
                "status": row.status,
                "completed_at": row.completed_at,
                "cancelled_at": row.cancelled_at,
                "organization_id": row.organization_id,
                **counts,
            }
            shown.append(
                self.spec.read_schema.model_validate(values).model_dump(mode="json", by_alias=True)
            )
        return shown

    async def do_get_recipients(
        self, ctx: Context, multicast: Multicast, body: None
    ) -> Select[Any]:
        """Each recipient of a multicast with its outcome, in id order: ``delivered`` with the
        notification it received and where it went, ``skipped`` with the reason (e.g.
        ``cancelled``), or ``pending`` (not reached yet). Empty until the recipients are
        planned."""
        fanout = (
            await fanouts_of(ctx.session, MULTICASTS, ctx.organization_id, [multicast.id])
        ).get(multicast.id)
        return repo.recipients_statement(
            ctx.organization_id, fanout.id if fanout is not None else None
        )

    async def present_recipients(
        self, ctx: Context, rows: Sequence[FanoutTarget]
    ) -> list[dict[str, Any]]:
        shown = []
        for row in rows:
            outcome = row.outcome or {}
            data = row.data or {}
            values = {
                "individual_id": row.target_id,
                "user_id": data.get(USER_ID),
                "state": row.state,
                "reason": row.reason,
                "notification_id": outcome.get("notification-id"),
                "channels": list(outcome.get("channels") or []),
                "done_at": row.done_at,
            }
            shown.append(
                RecipientRead.model_validate(values).model_dump(mode="json", by_alias=True)
            )
        return shown

    def individuals_of(self, obj: Multicast) -> list[uuid.UUID]:
        return [obj.individual_id] if obj.individual_id else []


def _counts(fanout: Fanout | None) -> dict[str, int]:
    if fanout is None:
        return {"recipient_count": 0, "notified_count": 0, "skipped_count": 0, "pending_count": 0}
    done = fanout.delivered_count + fanout.skipped_count
    return {
        "recipient_count": fanout.target_count,
        "notified_count": fanout.delivered_count,
        "skipped_count": fanout.skipped_count,
        "pending_count": max(fanout.target_count - done, 0),
    }


multicasts = MulticastService()


class UserMulticastService(CrudService[Multicast]):
    """``user-multicasts``: the multicasts one individual received, and sending one to
    individuals and groups (a multicast like any other: its events are ``multicasts.*``)."""

    async def do_create_user_multicast(
        self, ctx: Context, body: UserMulticastCreate
    ) -> Changed[Any]:
        """Multicast a template to individuals and the members of individual groups (201).

        Answers ``task-id``: the multicast's id (``GET /v1/multicasts/{task-id}/`` for its
        status and counts, ``/get-recipients/`` for each recipient's outcome)."""
        if body.organization_id is not None and body.organization_id != ctx.organization_id:
            raise not_found("organization")
        value = await multicasts._checked_individuals(
            ctx, body.individual_ids, body.individual_group_ids, ""
        )
        multicast = await multicasts._send(
            ctx,
            origin="user-multicasts",
            filter_type=INDIVIDUALS,
            filter_value=value,
            template_ref=body.template_id,
            data=body.template_data,
            data_pointer="/template-data",
            template_pointer="/template-id",
        )
        return multicasts._task(ctx, multicast)

    async def do_list_user_multicasts(self, ctx: Context, body: None) -> Select[Any]:
        """The multicasts an individual was a recipient of, newest first (``individual-id``,
        required with an API key; an individual token reads its own)."""
        individual_id = ctx.acting_individual_id
        if individual_id is None:
            raise ApiError(
                400,
                [
                    ErrorItem(
                        "individual-id is required with an API key",
                        "invalid-parameter",
                        parameter="individual-id",
                    )
                ],
                {},
                True,
            )
        await require_individual(ctx, individual_id, parameter="individual-id")
        return repo.received_statement(ctx.organization_id, individual_id)

    async def present_user_multicasts(
        self, ctx: Context, rows: Sequence[Multicast]
    ) -> list[dict[str, Any]]:
        individual_id = ctx.acting_individual_id
        assert individual_id is not None
        targets = await repo.targets_for(
            ctx.session, ctx.organization_id, individual_id, [row.id for row in rows]
        )
        shown = []
        for row in rows:
            target = targets.get(row.id)
            outcome = (target.outcome if target is not None else None) or {}
            values = {
                "created_at": row.created_at,
                "individual_id": individual_id,
                "organization_id": row.organization_id,
                "template_data": row.data,
                "template_id": row.template_ref,
                "state": target.state if target is not None else "pending",
                "notification_id": outcome.get("notification-id"),
            }
            shown.append(
                UserMulticastRead.model_validate(values).model_dump(mode="json", by_alias=True)
            )
        return shown


user_multicast_service = UserMulticastService()
