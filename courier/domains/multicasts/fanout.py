"""The fan-out of multicasts (:mod:`courier.jobs.fanout`).

- plan: who the multicast's filter reaches now (:func:`recipients`), in id order; each target
  is an individual, with the user addressed (``user-id``) where the filter named users. The
  multicast is ``sending`` from then on.
- deliver: one call of :func:`courier.domains.user_notifications.service.notify_many` for the
  whole chunk, with one dedupe key per recipient (``multicast:<id>:<individual>``). It writes
  the notifications and their delivery jobs (one push per device ...) to the chunk's session
  only, so a chunk whose worker dies commits nothing and is delivered again in full; a chunk
  that committed is never delivered again; and the dedupe keys make even a repeat harmless.
- settle: the multicast is ``completed``.

Jobs: ``multicasts.plan`` (one per multicast) and ``multicasts.chunk`` (one per
``COURIER_MULTICAST_CHUNK_SIZE`` recipients).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.time import now_ms
from courier.domains.multicasts import repository as repo
from courier.domains.multicasts.schemas import (
    ALL_INDIVIDUALS,
    ALL_PARTICIPANTS,
    ALL_PROVIDERS,
    GROUP,
    INDIVIDUALS,
    MULTICAST_TYPE,
    USERS,
)
from courier.domains.user_notifications.service import NotificationTarget, Notified, notify_many
from courier.jobs import PermanentJobError
from courier.jobs.fanout import (
    Delivered,
    FanoutRun,
    FanoutSpec,
    Outcome,
    Skipped,
    Target,
    register_fanout,
)
from courier.jsonapi.changes import SYSTEM, change, write_changes
from courier.models.multicast import Multicast, MulticastStatus

USER_ID = "user-id"  # a target's data: the user addressed
MAX_REASON = 64


def announce(session: AsyncSession, multicast: Multicast, verb: str) -> None:
    """Publish how far the multicast got (``sending``, ``completed``): progress of a job, so
    an event without an audit row."""
    write_changes(
        session,
        [
            change(
                MULTICAST_TYPE,
                multicast.id,
                verb,
                fields=["status"],
                audience=[multicast.individual_id] if multicast.individual_id else [],
                organization_id=multicast.organization_id,
                data={"status": multicast.status},
                audited=False,
            )
        ],
        actor=SYSTEM,
        request_id=None,
    )


async def recipients(session: AsyncSession, multicast: Multicast) -> list[Target]:
    """Who the multicast's filter reaches now, in id order (each individual once)."""
    org = multicast.organization_id
    value = multicast.filter_value or {}
    kind = multicast.filter_type
    users: dict[uuid.UUID, uuid.UUID] = {}  # individual -> the user addressed
    if kind in (ALL_PARTICIPANTS, ALL_PROVIDERS, ALL_INDIVIDUALS):
        account = {ALL_PARTICIPANTS: "participant", ALL_PROVIDERS: "provider"}.get(kind)
        wanted = set(await repo.everyone(session, org, account))
    elif kind == GROUP:
        wanted = await repo.members_of(session, org, [uuid.UUID(value["individual-group-id"])])
    elif kind == INDIVIDUALS:
        listed = [uuid.UUID(i) for i in value.get("individual-ids") or []]
        wanted = await repo.existing(session, org, listed)
        groups = [uuid.UUID(i) for i in value.get("individual-group-ids") or []]
        wanted |= await repo.members_of(session, org, groups)
    elif kind == USERS:
        named = [uuid.UUID(i) for i in value.get("user-ids") or []]
        primaries = await repo.primary_individuals(session, org, named)
        if multicast.individual_id is not None and multicast.user_id is not None:
            # users/{id}/multicast: the individual the request chose for the user
            primaries = {multicast.user_id: multicast.individual_id}
        for user, individual in primaries.items():
            users.setdefault(individual, user)
        wanted = await repo.existing(session, org, users)
    else:
        raise PermanentJobError(f"unknown filter-type {kind!r}")
    return [
        Target(ident, {USER_ID: str(users[ident])} if ident in users else None)
        for ident in sorted(wanted)
    ]


async def plan_recipients(run: FanoutRun) -> list[Target]:
    multicast = await repo.load_multicast(run.session, run.organization_id, run.subject_id)
    if multicast is None:
        raise PermanentJobError("the multicast no longer exists")
    targets = await recipients(run.session, multicast)
    if targets:
        multicast.status = MulticastStatus.SENDING.value
        multicast.last_modified_at = now_ms()
        announce(run.session, multicast, "updated")
    return targets


async def notify_recipients(
    run: FanoutRun, targets: Sequence[Target]
) -> Mapping[uuid.UUID, Outcome]:
    """One notification per recipient of the chunk (one ``notify_many`` call)."""
    session = run.session
    multicast = await repo.load_multicast(session, run.organization_id, run.subject_id)
    if multicast is None:
        raise PermanentJobError("the multicast no longer exists")
    template = await repo.template_of(session, multicast)
    if template is None:
        return {target.id: Skipped("template-deleted") for target in targets}
    addressed = [
        NotificationTarget(
            individual_id=target.id,
            user_id=(
                uuid.UUID(str(target.data[USER_ID]))
                if target.data and target.data.get(USER_ID)
                else None
            ),
        )
        for target in targets
    ]
    results = await notify_many(
        session,
        run.settings,
        organization_id=multicast.organization_id,
        template=template,
        data=multicast.data,
        targets=addressed,
        source=f"multicast:{multicast.id}",
        dedupe_keys=[f"multicast:{multicast.id}:{target.id}" for target in targets],
    )
    outcomes: dict[uuid.UUID, Outcome] = {}
    for target in targets:
        result = results.get(target.id)
        if isinstance(result, Notified):
            outcomes[target.id] = Delivered(
                {
                    "notification-id": str(result.notification_id),
                    "channels": list(result.channels),
                }
            )
        elif result is None:
            outcomes[target.id] = Skipped("no-outcome")
        else:
            outcomes[target.id] = Skipped(result.reason[:MAX_REASON] or "not-sent")
    return outcomes


async def mark_completed(run: FanoutRun) -> None:
    multicast = await repo.load_multicast(run.session, run.organization_id, run.subject_id)
    if multicast is None or multicast.status == MulticastStatus.CANCELLED.value:
        return
    now = now_ms()
    multicast.status = MulticastStatus.COMPLETED.value
    multicast.completed_at = now
    multicast.last_modified_at = now
    announce(run.session, multicast, "completed")


MULTICASTS = register_fanout(
    FanoutSpec(
        repo.FANOUT_KIND,
        plan=plan_recipients,
        deliver=notify_recipients,
        settle=mark_completed,
        chunk_size=lambda settings: settings.multicast_chunk_size,
    )
)
PLAN_JOB = MULTICASTS.plan_kind
CHUNK_JOB = MULTICASTS.chunk_kind
