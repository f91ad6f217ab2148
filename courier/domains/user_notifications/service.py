"""User notifications: the one entry point every sender of notifications calls
(multicasts, announcers, escalation ladders), and the rules of reading and acknowledging them.

:func:`notify_many` renders a template per recipient and, in the caller's transaction
(never committing, never calling a provider):

- writes one ``user_notifications`` row per target (a ``dedupe_key`` seen before returns the
  earlier notification and sends nothing);
- creates one push delivery per active device of the individual that allows notifications
  (each its own delivery in ``courier.providers.delivery``), and one job per call that sends
  them all (``send_deliveries``: each at most once, the provider called a few at a time);
- enqueues one dispatch job per call for the SMS (accepted consent, the user's phone, the
  user's ``notifications`` preferences) and the emails (the user's address and preferences);
- schedules each step of an escalation ladder as a job at its time
  (``courier.domains.user_notifications.escalation``).

Statements per call do not grow with the number of targets except through the database's
own batching of inserts: a handful of SELECTs (dedupe keys, individuals, users, devices,
consents, badge totals) and one multi-row INSERT per table.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.time import now_ms
from courier.domains.templates.render import PUSH_CHANNELS, DataError, Renderer, RenderError
from courier.domains.templates.service import recipients_of
from courier.domains.user_notifications import repository as repo
from courier.jobs import enqueue
from courier.jsonapi.changes import SYSTEM, change, write_changes
from courier.models.individual import Individual
from courier.models.push_device import UserDevice
from courier.models.template import Template
from courier.models.user import User
from courier.models.user_notification import UserNotification
from courier.providers import delivery as deliveries
from courier.providers.push.kind import PUSH

TYPE = "user-notifications"
DISPATCH_JOB = "user-notifications.dispatch"
PUSH_JOB = "user-notifications.push"
ESCALATE_JOB = "user-notifications.escalate"
MAX_SOURCE = 255
MAX_DEDUPE_KEY = 255
MAX_CATEGORY = 32
LADDER_CHANNELS = ("push", "sms", "voice", "email", "care-team")
MAX_LADDER_STEPS = 10
MAX_LADDER_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class NotificationTarget:
    individual_id: uuid.UUID
    user_id: uuid.UUID | None = None  # the login account addressed (None: the individual's own)


@dataclass(frozen=True)
class Notified:
    notification_id: uuid.UUID
    channels: tuple[str, ...]  # e.g. ("apn", "sms"): what it was sent to (may be empty: app only)
    created: bool  # False: an earlier call with the same dedupe key made it


@dataclass(frozen=True)
class NotSent:
    reason: str  # "missing-data: ...", "no-such-individual", "no-such-user", "render-failed: ..."


class InvalidEscalationError(ValueError):
    """An escalation ladder that cannot be scheduled (the message says which step and why)."""


# --- the ladder's shape -----------------------------------------------------------------------


def check_escalation(steps: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The ladder as stored: each step ``{"channel", "after-seconds"}`` (``after-minutes``
    accepted), ``care-team`` steps with the ``individual-id`` (and optional ``user-id``) to
    alert. Times count from the notification's creation and must not go down.
    :class:`InvalidEscalationError` naming the step otherwise."""
    if steps is None:
        return []
    if not isinstance(steps, Sequence) or isinstance(steps, str | bytes):
        raise InvalidEscalationError("escalation must be a list of steps")
    if len(steps) > MAX_LADDER_STEPS:
        raise InvalidEscalationError(f"escalation has at most {MAX_LADDER_STEPS} steps")
    checked: list[dict[str, Any]] = []
    previous = 0.0
    for index, step in enumerate(steps):
        where = f"escalation[{index}]"
        if not isinstance(step, Mapping):
            raise InvalidEscalationError(f"{where} must be an object")
        unknown = set(step) - {
            "channel",
            "after-seconds",
            "after-minutes",
            "individual-id",
            "user-id",
        }
        if unknown:
            raise InvalidEscalationError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
        channel = step.get("channel")
        if channel not in LADDER_CHANNELS:
            raise InvalidEscalationError(
                f"{where}.channel must be one of {', '.join(LADDER_CHANNELS)}"
            )
        seconds: Any
        if "after-seconds" in step:
            seconds = step["after-seconds"]
        elif "after-minutes" in step:
            minutes = step["after-minutes"]
            seconds = minutes * 60 if _is_number(minutes) else minutes
        else:
            raise InvalidEscalationError(f"{where} needs after-minutes (or after-seconds)")
        if not _is_number(seconds) or not 0 <= seconds <= MAX_LADDER_SECONDS:
            raise InvalidEscalationError(
                f"{where}: the delay must be a number from 0 to {MAX_LADDER_SECONDS} seconds"
            )
        if seconds < previous:
            raise InvalidEscalationError(f"{where} comes before the step above it")
        previous = float(seconds)
        stored: dict[str, Any] = {
            "channel": channel,
            "after-seconds": float(seconds),
            "state": "scheduled",
            "due-at": None,
            "done-at": None,
            "result": None,
        }
        if channel == "care-team":
            for key in ("individual-id", "user-id"):
                value = step.get(key)
                if value is None:
                    continue
                try:
                    stored[key] = str(uuid.UUID(str(value)))
                except ValueError as exc:
                    raise InvalidEscalationError(f"{where}.{key} must be a UUID") from exc
            if "individual-id" not in stored:
                raise InvalidEscalationError(f"{where}: a care-team step names the individual-id")
        elif "individual-id" in step or "user-id" in step:
            raise InvalidEscalationError(f"{where}: only a care-team step names someone")
        checked.append(stored)
    return checked


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


# --- notify ------------------------------------------------------------------------------------


def wants(user: User | None, channel: str) -> bool:
    """The user's ``notifications`` preferences: an empty list means the default (push and
    web push only); SMS, email and calls only when the user asked for them."""
    chosen = list(user.notifications or []) if user is not None else []
    if channel in ("push", "web") and not chosen:
        return True
    return channel in chosen


def _device_channel(device: UserDevice) -> str:
    return "web" if device.type == "web" else "push"


def stored_data(rendered: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The read shape's ``data``: each push channel's title/body/category/data, the SMS
    ``bodies``, the email's subject/text/html, and ``app`` (what the app shows)."""
    data: dict[str, Any] = {}
    for channel in PUSH_CHANNELS:
        if channel in rendered:
            body = rendered[channel]
            data[channel] = {
                "title": body.get("title"),
                "body": body.get("body"),
                "category": body.get("category"),
                "data": dict(body.get("data") or {}),
            }
    if "sms" in rendered and rendered["sms"].get("body"):
        data["sms"] = {"bodies": [rendered["sms"]["body"]]}
    if "email" in rendered:
        email = rendered["email"]
        data["email"] = {
            "subject": email.get("subject"),
            "text": email.get("text"),
            "html": email.get("html"),
        }
    if "app" in rendered:
        app = rendered["app"]
        data["app"] = {
            "title": app.get("title"),
            "body": app.get("body"),
            "category": app.get("category"),
            "data": dict(app.get("data") or {}),
        }
    return data


def push_rendering(data: Mapping[str, Any], platform: str) -> Mapping[str, Any] | None:
    """What a device of ``platform`` shows: its own platform's rendering, else another push
    platform's (a template written for one platform still reaches the others)."""
    if platform in data:
        found: Mapping[str, Any] = data[platform]
        return found
    for channel in PUSH_CHANNELS:
        if channel in data:
            other: Mapping[str, Any] = data[channel]
            return other
    return None


async def notify_many(
    session: AsyncSession,
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    template: Template,
    data: Mapping[str, Any],
    targets: Sequence[NotificationTarget],
    source: str,
    dedupe_keys: Sequence[str] | None = None,
    category: str | None = None,
    escalation: Sequence[Mapping[str, Any]] | None = None,
) -> dict[uuid.UUID, Notified | NotSent]:
    """Notify each target (see the module's docstring); keyed by ``individual_id`` (a target
    named twice is notified once). Writes only to ``session``; never commits."""
    if template.organization_id != organization_id:
        raise ValueError("the template belongs to another organization")
    if not 1 <= len(source) <= MAX_SOURCE:
        raise ValueError(f"source is 1 to {MAX_SOURCE} characters")
    if dedupe_keys is not None and len(dedupe_keys) != len(targets):
        raise ValueError("one dedupe key per target")
    ladder = check_escalation(escalation)
    chosen_category = category or template.category or None
    if chosen_category is not None:
        chosen_category = chosen_category[:MAX_CATEGORY]
    results: dict[uuid.UUID, Notified | NotSent] = {}
    wanted: list[tuple[NotificationTarget, str | None]] = []
    seen: set[uuid.UUID] = set()
    for index, target in enumerate(targets):
        if target.individual_id in seen:
            continue
        seen.add(target.individual_id)
        key = dedupe_keys[index] if dedupe_keys is not None else None
        if key is not None and not 1 <= len(key) <= MAX_DEDUPE_KEY:
            raise ValueError(f"a dedupe key is 1 to {MAX_DEDUPE_KEY} characters")
        wanted.append((target, key))
    if not wanted:
        return results

    earlier = await repo.earlier_notifications(
        session, organization_id, [k for _, k in wanted if k is not None]
    )
    fresh: list[tuple[NotificationTarget, str | None]] = []
    for target, key in wanted:
        found = earlier.get(key) if key is not None else None
        if found is not None:
            results[target.individual_id] = Notified(found.id, tuple(found.channels), False)
        else:
            fresh.append((target, key))
    if not fresh:
        return results

    individual_ids = [target.individual_id for target, _ in fresh]
    # Column rows, not ORM objects (they answer the attributes read below).
    individuals = await repo.recipient_individuals(session, organization_id, individual_ids)
    named_users = [t.user_id for t, _ in fresh if t.user_id is not None]
    users = await repo.recipient_users(session, organization_id, named_users)
    own = await repo.recipient_own_users(
        session, organization_id, [t.individual_id for t, _ in fresh if t.user_id is None]
    )
    present = [ident for ident in individual_ids if ident in individuals]
    devices = await repo.recipient_devices(session, organization_id, present)
    badges = await repo.badge_totals(session, organization_id, present)
    everyone = {**{u.id: u for u in own.values()}, **users}
    consented = await repo.sms_consented(session, organization_id, list(everyone.values()))
    shared = await recipients_of(session, organization_id)
    renderer = Renderer(template, data)  # once per call: what no recipient changes, once

    now = now_ms()
    batch_id = uuid.uuid4()
    rows: list[dict[str, Any]] = []
    pushes: list[tuple[uuid.UUID, uuid.UUID, str]] = []  # (delivery, notification, device)
    needs_dispatch = False
    for target, key in fresh:
        individual = individuals.get(target.individual_id)
        if individual is None:
            results[target.individual_id] = NotSent("no-such-individual")
            continue
        user: Any
        if target.user_id is not None:
            user = users.get(target.user_id)
            if user is None:
                results[target.individual_id] = NotSent("no-such-user")
                continue
        else:
            user = own.get(individual.id)
        locale = (user.locale if user is not None else None) or individual.locale
        try:
            rendered = renderer.render(locale, shared.recipient(user, individual))
        except DataError as exc:
            results[target.individual_id] = NotSent("missing-data: " + "; ".join(exc.problems))
            continue
        except RenderError as exc:
            results[target.individual_id] = NotSent(f"render-failed: {exc}"[:500])
            continue
        stored = stored_data(rendered)
        channels: list[str] = []
        pushed = [
            device
            for device in devices.get(individual.id, [])
            if wants(user, _device_channel(device)) and push_rendering(stored, device.type)
        ]
        for device in pushed:
            if device.type not in channels:
                channels.append(device.type)
        if user is not None and "sms" in stored and wants(user, "sms") and user.id in consented:
            channels.append("sms")
        if user is not None and "email" in stored and user.email and wants(user, "email"):
            channels.append("email")
        # Plain rows, written by one multi-row INSERT per table below (no ORM objects:
        # a multicast's chunk is hundreds of them).
        notification: dict[str, Any] = {
            "id": uuid.uuid4(),
            "organization_id": organization_id,
            "individual_id": individual.id,
            "user_id": user.id if user is not None else None,
            "template_id": template.id,
            "category": chosen_category,
            "source": source,
            "dedupe_key": key,
            "batch_id": batch_id,
            "locale": locale,
            "sensitive": template.sensitive,
            "badge": badges.get(individual.id, 0) + 1,
            "data": stored,
            "channels": channels,
            "acknowledged": False,
            "acknowledged_at": None,
            "active": True,
            "escalation": _ladder_state(ladder, now) if ladder else None,
            "dispatched_at": None,
            "created_at": now,
            "last_modified_at": now,
        }
        rows.append(notification)
        # Each push its own delivery; one job sends the call's pushes together.
        pushes.extend((uuid.uuid4(), notification["id"], str(device.id)) for device in pushed)
        if "sms" in channels or "email" in channels:
            needs_dispatch = True
        results[target.individual_id] = Notified(notification["id"], tuple(channels), True)
    if not rows:
        return results
    await repo.insert_notifications(session, rows)
    await deliveries.create_deliveries(
        session,
        settings,
        organization_id=organization_id,
        kind=PUSH,
        resource_type=TYPE,
        items=pushes,
    )
    if pushes:
        await enqueue(
            session,
            PUSH_JOB,
            {"batch_id": batch_id},
            organization_id=organization_id,
            priority=1,  # a person waits for a push; texts and emails follow
            dedupe_key=f"{PUSH_JOB}:{batch_id}",
            new_key=True,
        )
    if needs_dispatch:
        await enqueue(
            session,
            DISPATCH_JOB,
            {"batch_id": batch_id},
            organization_id=organization_id,
            dedupe_key=f"{DISPATCH_JOB}:{batch_id}",
            new_key=True,
        )
    for row in rows:
        ladder_state = row["escalation"]
        for index, step in enumerate(ladder_state["steps"] if ladder_state else []):
            await enqueue(
                session,
                ESCALATE_JOB,
                {"notification_id": row["id"], "step": index},
                organization_id=organization_id,
                run_at=row["created_at"] + timedelta(seconds=step["after-seconds"]),
                dedupe_key=f"{ESCALATE_JOB}:{row['id']}:{index}",
                new_key=True,
            )
    write_changes(
        session,
        [
            change(
                TYPE,
                row["id"],
                "created",
                fields=["channels"],
                audience=(row["individual_id"],),
                organization_id=organization_id,
                data={"channels": list(row["channels"]), "source": source},
            )
            for row in rows
        ],
        actor=SYSTEM,
        request_id=None,
    )
    return results


def _ladder_state(ladder: Sequence[Mapping[str, Any]], created: datetime) -> dict[str, Any]:
    steps = []
    for step in ladder:
        due = created + timedelta(seconds=step["after-seconds"])
        steps.append({**step, "due-at": due.isoformat()})
    return {"state": "waiting", "steps": steps}


async def notify(
    session: AsyncSession,
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    template: Template,
    data: Mapping[str, Any],
    target: NotificationTarget,
    source: str,
    dedupe_key: str | None = None,
    category: str | None = None,
    escalation: Sequence[Mapping[str, Any]] | None = None,
) -> Notified | NotSent:
    """:func:`notify_many` for one target."""
    results = await notify_many(
        session,
        settings,
        organization_id=organization_id,
        template=template,
        data=data,
        targets=[target],
        source=source,
        dedupe_keys=[dedupe_key] if dedupe_key is not None else None,
        category=category,
        escalation=escalation,
    )
    return results[target.individual_id]


async def notify_copy(
    session: AsyncSession,
    settings: Settings,
    *,
    source_row: UserNotification,
    individual_id: uuid.UUID,
    user_id: uuid.UUID | None,
    source: str,
    dedupe_key: str,
) -> uuid.UUID | None:
    """Another person's notification carrying what ``source_row`` showed, pushed to their
    devices (a ladder's care-team alert). None when the individual (or user) is not of the
    organization. The same ``dedupe_key`` again returns the earlier one."""
    organization_id = source_row.organization_id
    earlier = await repo.by_dedupe_keys(session, organization_id, [dedupe_key])
    if dedupe_key in earlier:
        return earlier[dedupe_key].id
    individual = (await repo.rows_by_id(session, organization_id, Individual, [individual_id])).get(
        individual_id
    )
    if individual is None:
        return None
    user: User | None
    if user_id is not None:
        user = (await repo.rows_by_id(session, organization_id, User, [user_id])).get(user_id)
        if user is None:
            return None
    else:
        user = (await repo.own_users(session, organization_id, [individual_id])).get(individual_id)
    data = {k: v for k, v in (source_row.data or {}).items() if k not in ("sms", "email")}
    devices = [
        device
        for device in (
            await repo.notifiable_devices(session, organization_id, [individual_id])
        ).get(individual_id, [])
        if wants(user, _device_channel(device)) and push_rendering(data, device.type)
    ]
    now = now_ms()
    badges = await repo.badge_totals(session, organization_id, [individual_id])
    row = UserNotification(
        id=uuid.uuid4(),
        organization_id=organization_id,
        individual_id=individual_id,
        user_id=user.id if user is not None else None,
        template_id=source_row.template_id,
        category=source_row.category,
        source=source[:MAX_SOURCE],
        dedupe_key=dedupe_key,
        batch_id=uuid.uuid4(),
        locale=source_row.locale,
        sensitive=source_row.sensitive,
        badge=badges.get(individual_id, 0) + 1,
        data=data,
        channels=list(dict.fromkeys(device.type for device in devices)),
        acknowledged=False,
        acknowledged_at=None,
        active=True,
        escalation=None,
        dispatched_at=now,
        created_at=now,
        last_modified_at=now,
    )
    session.add(row)
    for device in devices:
        await deliveries.create_delivery(
            session,
            settings,
            organization_id=organization_id,
            kind=PUSH,
            resource_type=TYPE,
            resource_id=row.id,
            recipient=str(device.id),
        )
    write_changes(
        session,
        [
            change(
                TYPE,
                row.id,
                "created",
                fields=["channels"],
                audience=(individual_id,),
                organization_id=organization_id,
                data={"channels": list(row.channels), "source": row.source},
            )
        ],
        actor=SYSTEM,
        request_id=None,
    )
    return row.id


# --- withdrawing ------------------------------------------------------------------------------


async def withdraw(session: AsyncSession, organization_id: uuid.UUID, source: str) -> int:
    """Make the notifications of ``source`` inactive (a cancelled multicast's, an announcer
    removed): they leave the default list (``include[inactive]`` shows them) and their
    ladders stop. Returns how many changed."""
    rows = await repo.active_of_source(session, organization_id, source)
    if not rows:
        return 0
    await repo.deactivate(session, organization_id, [row.id for row in rows], now_ms())
    write_changes(
        session,
        [
            change(
                TYPE,
                row.id,
                "withdrawn",
                fields=["active"],
                audience=(row.individual_id,),
                organization_id=organization_id,
            )
            for row in rows
        ],
        actor=SYSTEM,
        request_id=None,
    )
    return len(rows)


__all__ = [
    "DISPATCH_JOB",
    "ESCALATE_JOB",
    "PUSH_JOB",
    "InvalidEscalationError",
    "NotSent",
    "NotificationTarget",
    "Notified",
    "check_escalation",
    "notify",
    "notify_many",
    "withdraw",
]
