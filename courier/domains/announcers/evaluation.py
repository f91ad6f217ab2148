"""Evaluating announcers over a range of events, each (announcer, event) at most once.

An ``announcers.evaluate`` job (enqueued in the transaction that published the events, like a
webhook fan-out) covers a range of event sequence numbers of one organization. For each event
of the range that an active announcer listens for:

1. the event's facts are read (a batch per catalogue entry: which message, which group ...);
   an event that does not count (a draft) or does not match the rule's filter is skipped;
2. the recipients are resolved (subjects, group members or leaders, channel subscribers,
   named individuals and users), each individual once;
3. the pair (announcer, event) is claimed in ``announcer_firings`` (insert or nothing), and
   only a new claim sends: ``send`` writes the notifications into the same session.

The job's session commits the claims and the notifications together, so a job that fails or
dies leaves neither and runs again; a job that committed never sends again, and neither does a
second job whose range covers the same events (ranges of concurrent transactions may overlap on
PostgreSQL). The notifications' dedupe keys (``announcer:<id>:<event id>:<individual id>``) are
a second guard.

An announcer acts only on events that occurred while it was active and listening for their
kind (``listening_since``: its creation, its last activation, its last change of event).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.announcers import repository as repo
from courier.domains.announcers.triggers import (
    CHANNEL_FILTER,
    CHANNEL_SUBSCRIBERS,
    GROUP_FILTER,
    GROUP_LEADERS,
    GROUP_MEMBERS,
    SUBJECT,
    TRIGGERS,
    Facts,
    Subject,
    triggers_of,
)
from courier.models.announcer import Announcer
from courier.models.event import Event
from courier.models.template import Template


@dataclass(frozen=True)
class Sent:
    notified: int
    not_sent: int


# (announcer, its template, the event, the recipients) -> what was sent; writes only to the
# session it was given.
Send = Callable[[Announcer, Template, Event, Sequence[Subject]], Awaitable[Sent]]


@dataclass
class Summary:
    events: int = 0
    fired: int = 0
    repeated: int = 0  # pairs already acted on (a rerun, an overlapping range)
    filtered: int = 0
    notified: int = 0
    not_sent: int = 0

    def as_result(self) -> dict[str, int]:
        return {
            "events": self.events,
            "fired": self.fired,
            "repeated": self.repeated,
            "filtered": self.filtered,
            "notified": self.notified,
            "not_sent": self.not_sent,
        }


def dedupe_key(announcer_id: uuid.UUID, event_id: uuid.UUID, individual_id: uuid.UUID) -> str:
    return f"announcer:{announcer_id}:{event_id}:{individual_id}"


def _matches(announcer: Announcer, facts: Facts) -> bool:
    wanted: dict[str, str] = announcer.args.get("filter") or {}
    group = wanted.get(GROUP_FILTER)
    if group is not None and (facts.group_id is None or str(facts.group_id) != group):
        return False
    channel = wanted.get(CHANNEL_FILTER)
    return channel is None or (facts.channel_id is not None and str(facts.channel_id) == channel)


class _Audience:
    """Members, leaders, subscribers, users and individuals, read once per job."""

    def __init__(self, session: AsyncSession, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id
        self.members: dict[uuid.UUID, list[uuid.UUID]] = {}
        self.leaders: dict[uuid.UUID, list[uuid.UUID]] = {}
        self.subscribers: dict[uuid.UUID, list[uuid.UUID]] = {}
        self.users: dict[uuid.UUID, uuid.UUID | None] = {}
        self.individuals: set[uuid.UUID] = set()

    async def load(self, announcers: Sequence[Announcer], facts: Sequence[Facts]) -> None:
        kinds: set[str] = set()
        named_individuals: set[uuid.UUID] = set()
        named_users: set[uuid.UUID] = set()
        for announcer in announcers:
            kinds.update(announcer.args.get("recipients") or [])
            named_individuals.update(uuid.UUID(i) for i in announcer.args.get("individual-ids", []))
            named_users.update(uuid.UUID(i) for i in announcer.args.get("user-ids", []))
        groups = sorted({f.group_id for f in facts if f.group_id is not None}, key=str)
        channels = sorted({f.channel_id for f in facts if f.channel_id is not None}, key=str)
        session, org = self.session, self.organization_id
        if GROUP_MEMBERS in kinds and groups:
            self.members = await repo.group_individuals(session, org, groups, leaders=False)
        if GROUP_LEADERS in kinds and groups:
            self.leaders = await repo.group_individuals(session, org, groups, leaders=True)
        if CHANNEL_SUBSCRIBERS in kinds and channels:
            self.subscribers = await repo.channel_subscribers(session, org, channels)
        if named_users:
            self.users = await repo.primary_individuals(session, org, sorted(named_users, key=str))
        # Named individuals are checked again: one purged since the rule was saved is gone.
        if named_individuals:
            self.individuals = await repo.existing_individuals(
                session, org, sorted(named_individuals, key=str)
            )

    def recipients(self, announcer: Announcer, facts: Facts) -> list[Subject]:
        """Each individual once, in the order the rule names its recipients."""
        chosen: dict[uuid.UUID, Subject] = {}
        subjects = {s.individual_id for s in facts.subjects}

        def add(subject: Subject) -> None:
            chosen.setdefault(subject.individual_id, subject)

        def others(ids: Sequence[uuid.UUID]) -> None:
            for ident in ids:
                if ident not in subjects:
                    add(Subject(ident))

        for kind in announcer.args.get("recipients") or []:
            if kind == SUBJECT:
                for subject in facts.subjects:
                    add(subject)
            elif kind == GROUP_MEMBERS and facts.group_id is not None:
                others(self.members.get(facts.group_id, []))
            elif kind == GROUP_LEADERS and facts.group_id is not None:
                others(self.leaders.get(facts.group_id, []))
            elif kind == CHANNEL_SUBSCRIBERS and facts.channel_id is not None:
                others(self.subscribers.get(facts.channel_id, []))
        for raw in announcer.args.get("individual-ids") or []:
            ident = uuid.UUID(raw)
            if ident in self.individuals:
                add(Subject(ident))
        for raw in announcer.args.get("user-ids") or []:
            user_id = uuid.UUID(raw)
            primary = self.users.get(user_id)
            if primary is not None:
                add(Subject(primary, user_id))
        return list(chosen.values())


async def evaluate(
    session: AsyncSession,
    organization_id: uuid.UUID,
    from_seq: int,
    to_seq: int,
    send: Send,
) -> Summary:
    """Act on the organization's events ``from_seq``..``to_seq`` (see the module's docstring)."""
    summary = Summary()
    types = {t for trigger in TRIGGERS.values() for t in trigger.event_types}
    events = await repo.events_between(session, organization_id, from_seq, to_seq, types)
    summary.events = len(events)
    if not events:
        return summary
    by_trigger: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        for trigger in triggers_of(event.type):
            by_trigger[trigger.name].append(event)
    announcers = await repo.active_announcers(session, organization_id, by_trigger)
    if not announcers:
        return summary
    listening = {a.event for a in announcers}
    facts: dict[str, dict[uuid.UUID, Facts]] = {}
    for name, batch in by_trigger.items():
        if name in listening:
            facts[name] = await TRIGGERS[name].facts(session, organization_id, batch)
    audience = _Audience(session, organization_id)
    await audience.load(announcers, [f for found in facts.values() for f in found.values()])
    templates = await repo.templates_by_id(
        session, organization_id, [uuid.UUID(a.args["template-id"]) for a in announcers]
    )
    for event in events:
        for announcer in announcers:
            found = facts.get(announcer.event, {}).get(event.id)
            if found is None or event.occurred_at < announcer.listening_since:
                continue
            if not _matches(announcer, found):
                summary.filtered += 1
                continue
            recipients = audience.recipients(announcer, found)
            claimed = await repo.claim_firing(
                session, organization_id, announcer.id, event, len(recipients)
            )
            if not claimed:
                summary.repeated += 1
                continue
            summary.fired += 1
            template = templates.get(uuid.UUID(announcer.args["template-id"]))
            if template is None:  # pragma: no cover - templates are never deleted today
                sent = Sent(0, len(recipients))
            elif recipients:
                sent = await send(announcer, template, event, recipients)
            else:
                sent = Sent(0, 0)
            summary.notified += sent.notified
            summary.not_sent += sent.not_sent
            await repo.record_outcome(
                session,
                organization_id,
                announcer.id,
                event.id,
                notified=sent.notified,
                not_sent=sent.not_sent,
            )
    return summary
