"""The rules of announcers: what a rule may say, and which events start its evaluation.

- Admin keys create and modify announcers; every key reads them. ``event`` is a name of the
  catalogue (:mod:`courier.domains.announcers.triggers`), ``type`` is ``notification``.
- ``args`` is checked against the event when saved (and again when either changes): the
  template exists in the organization and its required data is given with the right types;
  every recipient kind and filter key is one the event offers; named individuals, users, the
  filter's group and channel exist in the organization; the rule reaches someone. A document
  that is well-formed but says something impossible is 422, each problem pointing at its
  attribute (``/data/attributes/args/...``); a malformed one is 400.
- The template is stored by id: renaming it later does not break the rule.
- Every publishing transaction asks :func:`enqueue_evaluation` whether an active announcer of
  the organization listens for one of its events; if one does, an ``announcers.evaluate`` job
  for the transaction's events commits with them (:mod:`courier.domains.announcers.jobs`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import ApiError, ErrorItem
from courier.core.notified import watch, watch_statements
from courier.core.time import now_ms
from courier.domains.announcers import repository as repo
from courier.domains.announcers.schemas import AnnouncerArgs, AnnouncerCreate, AnnouncerUpdate
from courier.domains.announcers.triggers import (
    CHANNEL_FILTER,
    GROUP_FILTER,
    TRIGGERS,
    triggers_of,
)
from courier.domains.templates.render import check_data
from courier.events import Consumer, Published, on_publishing
from courier.events.interest import INTEREST_CHANNEL, organization_entry
from courier.jobs import enqueue
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.announcer import Announcer
from courier.models.individual_group import IndividualGroup

EVALUATE_KIND = "announcers.evaluate"
ARGS = "/data/attributes/args"


def _problem(pointer: str, detail: str, code: str) -> ErrorItem:
    return ErrorItem(detail, code, pointer=f"{ARGS}/{pointer}" if pointer else ARGS)


async def check_args(ctx: Context, event: str, args: AnnouncerArgs) -> dict[str, Any]:
    """The args as stored (template by id, filter without empty keys); 422 listing each thing
    they say that cannot be done for ``event`` in this organization."""
    session, org = ctx.session, ctx.organization_id
    trigger = TRIGGERS[event]
    problems: list[ErrorItem] = []
    template = await repo.find_template(session, org, args.template_id)
    if template is None:
        problems.append(
            _problem(
                "template-id",
                f"args.template-id names no template of this organization: {args.template_id}",
                "unknown-template",
            )
        )
    else:
        for line in check_data(template.required_data, args.data):
            problems.append(
                _problem("data", f"args.data does not fit the template: {line}", "invalid-data")
            )
    for kind in args.recipients:
        if kind not in trigger.recipients:
            problems.append(
                _problem(
                    "recipients",
                    f"args.recipients: {event} offers "
                    + ", ".join(sorted(trigger.recipients))
                    + f", not {kind}",
                    "recipient-not-offered",
                )
            )
    if not (args.recipients or args.individual_ids or args.user_ids):
        problems.append(
            _problem(
                "recipients",
                "args names no recipient: give recipients, individual-ids or user-ids",
                "no-recipients",
            )
        )
    missing = set(args.individual_ids) - await repo.existing_individuals(
        session, org, args.individual_ids
    )
    for ident in args.individual_ids:
        if ident in missing:
            problems.append(
                _problem(
                    "individual-ids",
                    f"args.individual-ids names no individual of this organization: {ident}",
                    "unknown-individual",
                )
            )
    users = await repo.primary_individuals(session, org, args.user_ids)
    for ident in args.user_ids:
        if ident not in users:
            problems.append(
                _problem(
                    "user-ids",
                    f"args.user-ids names no user of this organization: {ident}",
                    "unknown-user",
                )
            )
    given_filter = args.filter.model_dump(by_alias=True, exclude_none=True, mode="json")
    for key in given_filter:
        if key not in trigger.filters:
            offered = ", ".join(sorted(trigger.filters)) or "no filter"
            problems.append(
                _problem(
                    f"filter/{key}",
                    f"args.filter: {event} offers {offered}, not {key}",
                    "filter-not-offered",
                )
            )
    group_id = args.filter.individual_group_id
    if (
        group_id is not None
        and GROUP_FILTER in trigger.filters
        and not await repo.existing(session, org, IndividualGroup, [group_id])
    ):
        problems.append(
            _problem(
                f"filter/{GROUP_FILTER}",
                f"args.filter.individual-group-id names no individual group of this "
                f"organization: {group_id}",
                "unknown-individual-group",
            )
        )
    channel_id = args.filter.channel_id
    if (
        channel_id is not None
        and CHANNEL_FILTER in trigger.filters
        and not await repo.existing_channels(session, org, [channel_id])
    ):
        problems.append(
            _problem(
                f"filter/{CHANNEL_FILTER}",
                f"args.filter.channel-id names no channel of this organization: {channel_id}",
                "unknown-channel",
            )
        )
    if problems:
        raise ApiError(422, problems, {}, True)
    assert template is not None
    stored = args.model_dump(by_alias=True, mode="json")
    stored["template-id"] = str(template.id)
    stored["filter"] = given_filter
    return stored


class AnnouncerService(CrudService[Announcer]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[Announcer]:
        assert isinstance(attrs, AnnouncerCreate)
        now = now_ms()
        announcer = Announcer(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            name=attrs.name,
            event=attrs.event,
            type=attrs.type,
            args=await check_args(ctx, attrs.event, attrs.args),
            active=attrs.active,
            listening_since=now,
            created_at=now,
            created_by=ctx.principal.key_id,
            last_modified_at=now,
            last_modified_by=ctx.principal.key_id,
        )
        ctx.session.add(announcer)
        return self.changed(ctx, "created", announcer, attrs.model_fields_set)

    async def update(
        self, ctx: Context, obj: Announcer, attrs: WriteAttributes
    ) -> Changed[Announcer]:
        assert isinstance(attrs, AnnouncerUpdate)
        given = attrs.given()
        if not given:
            return Changed(obj)
        now = now_ms()
        if given.get("event", obj.event) != obj.event or (given.get("active") and not obj.active):
            obj.listening_since = now  # what happened before is not replayed
        if "event" in given or "args" in given:
            event = given.get("event", obj.event)
            args = attrs.args or AnnouncerArgs.model_validate(obj.args)
            try:
                obj.args = await check_args(ctx, event, args)
            except ApiError as exc:
                if attrs.args is None:  # the stored args no longer fit the new event
                    exc.items = [
                        replace(item, detail=f"{item.detail} (the stored args, for {event})")
                        for item in exc.items
                    ]
                raise
            obj.event = event
        for name in ("name", "type", "active"):
            if name in given:
                setattr(obj, name, given[name])
        obj.last_modified_at = now
        obj.last_modified_by = ctx.principal.key_id
        return self.changed(ctx, "updated", obj, attrs.model_fields_set)


announcers = AnnouncerService()


def _names(events: Sequence[Published]) -> set[str]:
    """The catalogue's events that ``events`` are."""
    return {trigger.name for e in events for trigger in triggers_of(e.type)}


def listening(organization_id: uuid.UUID) -> Select[Any]:
    """The events of the catalogue the organization's active announcers listen for (one row
    per announcer): the announcers' interest (courier.events.Consumer), kept per process
    until an announcer is added, deleted, or changes the below."""
    return repo.listened_for(organization_id)


def in_catalogue(events: Sequence[Published]) -> bool:
    """Whether any of ``events`` is in the catalogue (most transactions' are not: no query)."""
    return bool(_names(events))


async def enqueue_evaluation(
    session: AsyncSession,
    organization_id: uuid.UUID,
    events: Sequence[Published],
    found: list[str],
) -> None:
    """In a publishing transaction: one ``announcers.evaluate`` job for its events when an
    active announcer listens for one of them (``found``: what each listens for)."""
    if not _names(events).intersection(found):
        return
    seqs = [e.seq for e in events]
    await enqueue(
        session,
        EVALUATE_KIND,
        {"from_seq": min(seqs), "to_seq": max(seqs)},
        organization_id=organization_id,
        priority=1,
    )


# Registered wherever announcers are loaded: the API (resource.py) and every worker (jobs.py)
# import this module, so events published by requests and by jobs alike are evaluated.
on_publishing(Consumer(listening, enqueue_evaluation, in_catalogue))
watch(INTEREST_CHANNEL, Announcer, ("active", "event"), organization_entry, new=True)
watch_statements(INTEREST_CHANNEL, ("announcers",), ("insert", "update", "delete"))
