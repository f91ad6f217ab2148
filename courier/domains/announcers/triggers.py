"""The announcer event catalogue: which domain events each announcer ``event`` stands for, what
an occurrence is about (its facts), and which recipients and filters it offers.

An announcer names an entry (``individual-shared``), never a raw event type: the entry says
which events count (a draft message is not a posted one) and reads the facts its recipients
and filters need, a batch of events at a time. A domain that gains an event worth announcing
(appointments, later) adds an entry with :func:`register_trigger`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.announcers import repository as repo
from courier.models.event import Event

SUBJECT = "subject"
GROUP_MEMBERS = "group-members"
GROUP_LEADERS = "group-leaders"
CHANNEL_SUBSCRIBERS = "channel-subscribers"
RECIPIENT_KINDS = (SUBJECT, GROUP_MEMBERS, GROUP_LEADERS, CHANNEL_SUBSCRIBERS)
GROUP_FILTER = "individual-group-id"
CHANNEL_FILTER = "channel-id"


@dataclass(frozen=True)
class Subject:
    """An individual the event is about, and the user account concerned (if the event names
    one: a new user is notified as that user)."""

    individual_id: uuid.UUID
    user_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Facts:
    """What one occurrence is about: its subjects, its group and channel (for recipients and
    filters)."""

    subjects: tuple[Subject, ...] = ()
    group_id: uuid.UUID | None = None
    channel_id: uuid.UUID | None = None


# (session, organization, events of the trigger's types) -> facts by event id; an event left
# out does not count (e.g. a draft).
FactsLoader = Callable[
    [AsyncSession, uuid.UUID, Sequence[Event]], Awaitable[dict[uuid.UUID, Facts]]
]


@dataclass(frozen=True)
class Trigger:
    name: str
    description: str
    event_types: frozenset[str]
    facts: FactsLoader
    recipients: frozenset[str] = frozenset({SUBJECT})
    filters: frozenset[str] = field(default_factory=frozenset)


TRIGGERS: dict[str, Trigger] = {}


def register_trigger(trigger: Trigger) -> Trigger:
    if trigger.name in TRIGGERS:
        raise ValueError(f"announcer event {trigger.name} registered twice")
    TRIGGERS[trigger.name] = trigger
    return trigger


def triggers_of(event_type: str) -> list[Trigger]:
    return [t for t in TRIGGERS.values() if event_type in t.event_types]


def _ident(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- the catalogue -----------------------------------------------------------------------------


async def _individual_created(
    session: AsyncSession, organization_id: uuid.UUID, events: Sequence[Event]
) -> dict[uuid.UUID, Facts]:
    return {
        e.id: Facts(subjects=(Subject(e.resource_id),)) for e in events if e.resource_id is not None
    }


async def _individual_shared(
    session: AsyncSession, organization_id: uuid.UUID, events: Sequence[Event]
) -> dict[uuid.UUID, Facts]:
    facts: dict[uuid.UUID, Facts] = {}
    for e in events:
        added = [
            ident
            for raw in e.data.get("added-individual-ids") or []
            if (ident := _ident(raw)) is not None
        ]
        if added and e.resource_id is not None:
            facts[e.id] = Facts(
                subjects=tuple(Subject(ident) for ident in added), group_id=e.resource_id
            )
    return facts


async def _message_posted(
    session: AsyncSession, organization_id: uuid.UUID, events: Sequence[Event]
) -> dict[uuid.UUID, Facts]:
    ids = [e.resource_id for e in events if e.resource_id is not None]
    if not ids:
        return {}
    found = await repo.posted_messages_with_groups(session, organization_id, ids)
    facts: dict[uuid.UUID, Facts] = {}
    for e in events:
        row = found.get(e.resource_id) if e.resource_id is not None else None
        if row is None:
            continue  # a draft, a removed or deleted message: nothing was posted
        subjects = (Subject(row.individual_id),) if row.individual_id is not None else ()
        facts[e.id] = Facts(
            subjects=subjects, group_id=row.individual_group_id, channel_id=row.channel_id
        )
    return facts


async def _user_created(
    session: AsyncSession, organization_id: uuid.UUID, events: Sequence[Event]
) -> dict[uuid.UUID, Facts]:
    ids = [e.resource_id for e in events if e.resource_id is not None]
    if not ids:
        return {}
    primary = await repo.primary_individuals(session, organization_id, ids)
    facts: dict[uuid.UUID, Facts] = {}
    for e in events:
        user_id = e.resource_id
        individual_id = primary.get(user_id) if user_id is not None else None
        # A user without a primary individual has no one to notify as the subject.
        subjects = (Subject(individual_id, user_id),) if individual_id is not None else ()
        facts[e.id] = Facts(subjects=subjects)
    return facts


register_trigger(
    Trigger(
        "individual-created",
        "An individual was created (individuals.created); the subject is the new individual",
        frozenset({"individuals.created"}),
        _individual_created,
    )
)
register_trigger(
    Trigger(
        "individual-shared",
        "Individuals were shared with a care team: added as members of an individual group, "
        "when it is created or changed (individual-groups.created|updated naming "
        "added-individual-ids); the subjects are the individuals added, the group is that group",
        frozenset({"individual-groups.created", "individual-groups.updated"}),
        _individual_shared,
        recipients=frozenset({SUBJECT, GROUP_MEMBERS, GROUP_LEADERS}),
        filters=frozenset({GROUP_FILTER}),
    )
)
register_trigger(
    Trigger(
        "message-posted",
        "A message was posted in a channel (messaging-messages.created, or .posted for a "
        "draft published; drafts and removed messages do not count); the subject is its "
        "author, the group is the channel's individual group",
        frozenset({"messaging-messages.created", "messaging-messages.posted"}),
        _message_posted,
        recipients=frozenset({SUBJECT, GROUP_MEMBERS, GROUP_LEADERS, CHANNEL_SUBSCRIBERS}),
        filters=frozenset({GROUP_FILTER, CHANNEL_FILTER}),
    )
)
register_trigger(
    Trigger(
        "user-created",
        "A user account was created (users.created); the subject is the user, notified through "
        "its primary individual",
        frozenset({"users.created"}),
        _user_created,
    )
)

EVENT_NAMES = tuple(TRIGGERS)
