"""Reading and acknowledging notifications (the API side).

- An API key sees the organization's notifications (``individual-id`` narrows to one
  individual); an individual token sees only its own, and naming another individual is 403.
- The list hides inactive (withdrawn) notifications unless ``include[inactive]=true``;
  ``acknowledged=true|false`` and ``filter[category]`` narrow it.
- ``ack`` marks the notification acknowledged (201 with it); acknowledging it again changes
  nothing. Its escalation ladder stops: the steps still queued are cancelled. ``ack-previous``
  also acknowledges every earlier unacknowledged notification of the same individual.
- ``user-notification-counts``: notifications per user and day (UTC), newest day first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import forbidden
from courier.core.time import format_timestamp, now_ms
from courier.domains.user_notifications import repository as repo
from courier.domains.user_notifications.schemas import AckBody
from courier.domains.user_notifications.service import ESCALATE_JOB, TYPE
from courier.jsonapi.changes import Change, Changed, change
from courier.jsonapi.context import Context
from courier.jsonapi.resource import CrudService
from courier.models.user_notification import UserNotification

COUNTS_NAMESPACE = uuid.UUID("5b0c7a52-3f0e-4c53-9d55-7b3c1c6f2a10")


def individual_filter(stmt: Select[Any], value: uuid.UUID, ctx: Context) -> Select[Any]:
    if ctx.principal.is_individual and value != ctx.principal.individual_id:
        raise forbidden("an individual token reads its own notifications only (individual-id)")
    return stmt.where(UserNotification.individual_id == value)


def inactive_filter(stmt: Select[Any], value: bool, ctx: Context) -> Select[Any]:
    return stmt if value else stmt.where(UserNotification.active.is_(True))


async def _cancel_ladder(session: AsyncSession, row: UserNotification) -> None:
    """Stop the ladder: its queued steps are cancelled (jobs and the visible steps)."""
    if not row.escalation or row.escalation.get("state") in ("done", "stopped"):
        return
    steps = [dict(step) for step in row.escalation.get("steps", [])]
    keys = []
    for index, step in enumerate(steps):
        if step.get("state") == "scheduled":
            step["state"] = "cancelled"
            keys.append(f"{ESCALATE_JOB}:{row.id}:{index}")
    row.escalation = {**row.escalation, "state": "stopped", "steps": steps}
    if keys:
        await repo.cancel_queued_jobs(session, row.organization_id, keys, now_ms())


def _acked(row: UserNotification, now: Any, organization_id: uuid.UUID) -> Change:
    row.acknowledged = True
    row.acknowledged_at = now
    row.last_modified_at = now
    return change(
        TYPE,
        row.id,
        "acknowledged",
        fields=["acknowledged", "acknowledged-at"],
        audience=(row.individual_id,),
        organization_id=organization_id,
    )


class UserNotificationService(CrudService[UserNotification]):
    def individuals_of(self, obj: UserNotification) -> Iterable[uuid.UUID]:
        return (obj.individual_id,)

    async def present(self, ctx: Context, rows: Sequence[UserNotification]) -> list[dict[str, Any]]:
        user_ids = list({row.user_id for row in rows if row.user_id is not None})
        names = await repo.user_names(ctx.session, ctx.organization_id, user_ids)
        out = []
        for row in rows:
            first, last = names.get(row.user_id, (None, None)) if row.user_id else (None, None)
            escalation = row.escalation
            out.append(
                {
                    "acknowledged": row.acknowledged,
                    "acknowledged-at": (
                        format_timestamp(row.acknowledged_at) if row.acknowledged_at else None
                    ),
                    "active": row.active,
                    "category": row.category,
                    "channels": list(row.channels or []),
                    "created-at": format_timestamp(row.created_at),
                    "data": dict(row.data or {}),
                    "escalation": ({"level": 0, **escalation} if escalation is not None else None),
                    "individual-id": str(row.individual_id),
                    "organization-id": str(row.organization_id),
                    "source": row.source,
                    "template-id": str(row.template_id) if row.template_id else None,
                    "user-first-name": first,
                    "user-id": str(row.user_id) if row.user_id else None,
                    "user-last-name": last,
                }
            )
        return out

    async def do_ack(
        self, ctx: Context, row: UserNotification, body: AckBody | None
    ) -> Changed[UserNotification]:
        """Acknowledge the notification (201 with it): its escalation ladder stops. With
        ``ack-previous``, every earlier unacknowledged notification of the same individual is
        acknowledged too. Acknowledging again changes nothing. An individual token acknowledges
        its own notifications."""
        now = now_ms()
        changes: list[Change] = []
        if not row.acknowledged:
            changes.append(_acked(row, now, ctx.organization_id))
            await _cancel_ladder(ctx.session, row)
        if body is not None and body.ack_previous:
            earlier_ones = await repo.unacknowledged_before(ctx.session, ctx.organization_id, row)
            for earlier in earlier_ones:
                changes.append(_acked(earlier, now, ctx.organization_id))
                await _cancel_ladder(ctx.session, earlier)
        return Changed(row, changes)

    async def do_counts(self, ctx: Context, body: None) -> Select[Any]:
        """Notifications per user and day (UTC), newest day first; ``filter[cmp-created-at]``
        bounds the window. An individual token counts its own."""
        if ctx.session.get_bind().dialect.name == "postgresql":
            day = func.to_char(func.timezone("UTC", UserNotification.created_at), "YYYY-MM-DD")
        else:
            day = func.strftime("%Y-%m-%d", UserNotification.created_at)
        stmt = self.query(ctx).with_only_columns(
            UserNotification.user_id.label("user_id"),
            day.label("day"),
            func.count().label("count"),
        )
        return stmt.group_by(UserNotification.user_id, day)


def count_id(row: Any) -> uuid.UUID:
    return uuid.uuid5(COUNTS_NAMESPACE, f"{row.user_id}:{row.day}")


async def present_counts(ctx: Context, rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "count": int(row.count),
            "daily-for-date": str(row.day),
            "user-id": str(row.user_id) if row.user_id else None,
        }
        for row in rows
    ]


service = UserNotificationService()
