"""Channels and messages as the calling individual sees them, rendered a page at a time.

Every function here takes a whole page of rows and asks the repository for what it needs
(subscribers, people, groups, last messages, bookmarks, reactions ...) with a fixed number of
queries for the page, never one per row; the SQL lives in :mod:`.repository`, this module only
shapes documents.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from courier.core.errors import invalid_parameter
from courier.core.time import format_timestamp
from courier.domains.messaging import repository as repo
from courier.domains.messaging import sms
from courier.domains.messaging.schemas import ChannelRead
from courier.domains.messaging_attachments.service import attachments_for_messages
from courier.domains.org_preferences.service import PreferenceName, get_preferences
from courier.jsonapi.context import Context
from courier.jsonapi.query import parse_bool
from courier.jsonapi.render import VERIFY, check_fixed_point


def flag(ctx: Context, name: str, default: bool = False) -> bool:
    """A boolean query parameter of the request (400 naming it when it is not one)."""
    raw = ctx.request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_bool(raw)
    except ValueError as exc:
        raise invalid_parameter(name, str(exc)) from exc


# --- people ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """An individual with the user account whose primary individual it is, if any."""

    individual: Any  # an Individual, or a Core row of its columns (repository.IndividualRow)
    user: Any  # its User (or a Core row of its columns), None without one

    @property
    def id(self) -> uuid.UUID:
        ident: uuid.UUID = self.individual.id
        return ident

    @property
    def full_name(self) -> str:
        return f"{self.individual.first_name} {self.individual.last_name}".strip()

    @property
    def verified(self) -> bool:
        return self.user is not None and (self.user.email_verified or self.user.phone_verified)

    def contact(self) -> dict[str, Any]:
        """Contact facts: the user's where there is one, else the individual's (unverified)."""
        user, individual = self.user, self.individual
        return {
            "auto_sign_up": user.auto_sign_up if user else False,
            "birth_date": individual.birth_date,
            "communication_preferences": dict(user.communication_preferences) if user else {},
            "email": (user.email if user and user.email else individual.email),
            "email_verified": bool(user and user.email and user.email_verified),
            "phone_number": (user.phone if user and user.phone else individual.phone),
            "phone_number_unsubscribed": bool(user and user.phone and user.phone_unsubscribed),
            "phone_number_verified": bool(user and user.phone and user.phone_verified),
        }


WITHHELD_CONTACT: dict[str, Any] = {
    "auto_sign_up": None,
    "birth_date": None,
    "communication_preferences": None,
    "email": None,
    "email_verified": None,
    "phone_number": None,
    "phone_number_unsubscribed": None,
    "phone_number_verified": None,
}


async def load_people(ctx: Context, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Person]:
    """Individuals with their users (``users.primary_individual_id``)."""
    found = await repo.people_with_users(ctx.session, ctx.organization_id, ids)
    return {ident: Person(individual, user) for ident, (individual, user) in found.items()}


# --- channels --------------------------------------------------------------------------------


def _subscriber_facts(person: Person, own: bool) -> dict[str, Any]:
    """A channel's subscriber past its ``admin`` and ``pinned`` (the subscription's), JSON-ready
    (ChannelSubscriber's names and order): the person's, the same in every channel."""
    individual = person.individual
    out: dict[str, Any] = {
        "id": str(individual.id),
        "first-name": individual.first_name,
        "last-name": individual.last_name,
        "preferred-name": individual.preferred_name,
        "account-type": individual.account_type,
    }
    if not own:
        out.update(_WITHHELD_JSON)
        return out
    for name, value in person.contact().items():
        out[_CONTACT_KEYS[name]] = value
    birth = out["birth-date"]
    if birth is not None:
        out["birth-date"] = birth.isoformat()
    return out


_CONTACT_KEYS = {name: name.replace("_", "-") for name in WITHHELD_CONTACT}
_WITHHELD_JSON = {_CONTACT_KEYS[name]: value for name, value in WITHHELD_CONTACT.items()}


def _uuid(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def render_group(
    group: Any,
    member_ids: list[uuid.UUID],
    leader_ids: list[uuid.UUID],
    people: dict[uuid.UUID, Person],
    redact: bool,
) -> dict[str, Any]:
    individuals = []
    for ident in member_ids:
        person = people.get(ident)
        if person is None:
            continue
        individual = person.individual
        individuals.append(
            {
                "birth_date": None if redact else individual.birth_date,
                "first_name": individual.first_name,
                "id": individual.id,
                "last_name": individual.last_name,
                "name": person.full_name,
                "owner": {"id": group.organization_id, "type": "organization"},
                "preferred_name": individual.preferred_name,
                "verified": person.verified,
            }
        )
    leaders = [
        {
            "first_name": people[i].individual.first_name,
            "id": i,
            "last_name": people[i].individual.last_name,
        }
        for i in leader_ids
        if i in people
    ]
    return {
        "individual_ids": member_ids,
        "individuals": individuals,
        "individuals_count": len(member_ids),
        "leader_ids": leader_ids,
        "leaders": leaders,
        "name": group.name,
        "organization_id": group.organization_id,
    }


async def render_channels(ctx: Context, channels: Sequence[Any]) -> list[dict[str, Any]]:
    """Attributes of each channel (loaded channels, or Core rows of their columns) for the
    caller (``ctx.acting_individual_id``). A list's page (:func:`repository.channel_page`)
    may bring its times formatted."""
    use_group_name = flag(ctx, "use-group-name", True)
    flag(ctx, "include-individual-group")  # deprecated by the seed: the group is always embedded
    if not channels:
        return []
    org, session = ctx.organization_id, ctx.session
    viewer = ctx.acting_individual_id
    redact = ctx.principal.is_individual
    ids = [channel.id for channel in channels]

    subscribers = await repo.subscriber_rows(session, org, ids, viewer)
    group_ids = list(
        dict.fromkeys(c.individual_group_id for c in channels if c.individual_group_id)
    )
    groups, members, leaders = await repo.groups_with_people(session, org, group_ids)
    person_ids: list[uuid.UUID] = [s.individual_id for subs in subscribers.values() for s in subs]
    person_ids += [c.owner_id for c in channels if c.owner_id]
    person_ids += [i for group_members in members.values() for i in group_members]
    people = await load_people(ctx, person_ids)
    participants = {
        c.id: sms.pick_participant(
            (people[s.individual_id].individual, people[s.individual_id].user)
            for s in subscribers.get(c.id, [])
            if s.individual_id in people
        )
        for c in channels
    }
    sms_states = await sms.channel_states(session, org, channels, participants)

    last_ids = [c.last_message_id for c in channels if c.last_message_id]
    last_messages = await repo.message_summaries(session, org, last_ids)
    # The caller's bookmark: the viewer's; an API key acting for nobody sees the organization's.
    bookmarks = (
        await repo.latest_bookmarks(session, org, viewer, ids)
        if viewer is not None or not ctx.principal.is_individual
        else {}
    )

    # Both in one statement, though a page whose channels all have names shows no title.
    preferences = await get_preferences(session, org, _CHANNEL_PREFERENCES)
    provider_ack = preferences["group-provider-ack"]
    default_title = preferences["default-channel-title"]

    # JSON-ready values in ChannelRead's names and order, built once: ChannelRead stays the
    # documented contract (tests check each document is its fixed point), not built per row.
    # A person's subscriber facts and a group are built once for the page, however many of
    # its channels show them.
    shown: dict[tuple[uuid.UUID, bool], dict[str, Any]] = {}
    group_json: dict[uuid.UUID, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for channel in channels:
        subs = subscribers.get(channel.id, [])
        mine = None
        listed = []
        for sub in subs:
            ident = sub.individual_id
            if ident == viewer and mine is None:
                mine = sub
            person = people.get(ident)
            if person is None:
                continue
            own = not redact or ident == viewer
            facts = shown.get((ident, own))
            if facts is None:
                facts = shown[ident, own] = _subscriber_facts(person, own)
            listed.append({"admin": sub.admin, "pinned": sub.pinned, **facts})
        unread = max(0, channel.last_seq - mine.ack_seq) if mine is not None else 0
        group_id = channel.individual_group_id
        group = groups.get(group_id) if group_id else None
        if use_group_name and group is not None:
            name = group.name
        else:
            name = channel.name or default_title or ""
        owner = people.get(channel.owner_id) if channel.owner_id else None
        last = last_messages.get(channel.last_message_id) if channel.last_message_id else None
        bookmark = bookmarks.get(channel.id)
        sms_state = sms_states[channel.id]
        rendered_group = None
        if group is not None:
            rendered_group = group_json.get(group.id)
            if rendered_group is None:
                rendered_group = group_json[group.id] = _group_json(
                    group, members[group.id], leaders[group.id], people, redact
                )
        text_number = sms_state.number
        attributes = {
            "archived": channel.archived,
            "bookmark": (
                {"id": str(bookmark.id), "message-id": str(bookmark.message_id)}
                if bookmark
                else None
            ),
            "caller-has-new-message": unread > 0,
            "caller-new-message-count": unread,
            "caller-preferences": (
                {"notify": mine.notify, "pinned": mine.pinned, "values": mine.preferences}
                if mine is not None
                else None
            ),
            "can-enable-sms": sms_state.can_enable,
            "created-at": _time(channel.created_at),
            "created-by": _uuid(channel.created_by),
            "event-settings": {
                "enabled": bool((channel.event_settings or {}).get("enabled", True))
            },
            "floating": channel.floating,
            "group-provider-ack": provider_ack,
            "individual-group": rendered_group,
            "individual-group-id": _uuid(group_id),
            "label": channel.label,
            "last-message": (
                {
                    "id": str(last.id),
                    "message": "" if last.removed else last.message,
                    "posted-time": _time(last.posted_time),
                    "removed": last.removed,
                }
                if last is not None
                else None
            ),
            "last-modified-time": _time(channel.last_modified_at),
            "name": name,
            "observation-id": _uuid(channel.observation_id),
            "org-id": str(channel.organization_id),
            "owner-first-name": owner.individual.first_name if owner else None,
            "owner-id": _uuid(channel.owner_id),
            "owner-last-name": owner.individual.last_name if owner else None,
            "subscribers": listed,
            "subscription-type": channel.subscription_type,
            "text-number": {"id": str(text_number.id)} if text_number else None,
            "text-number-id": _uuid(channel.text_number_id),
            "with-sms": channel.with_sms and sms_state.can_enable,
            "sms-initial-message": channel.sms_initial_message,
            "sms-initial-message-js": dict(channel.sms_initial_message_js or {}),
            "sms-phi-safe": channel.sms_phi_safe,
        }
        if VERIFY:
            check_fixed_point(ChannelRead, attributes)
        out.append(attributes)
    return out


_CHANNEL_PREFERENCES: tuple[PreferenceName, ...] = ("group-provider-ack", "default-channel-title")


def _group_json(
    group: Any,
    member_ids: list[uuid.UUID],
    leader_ids: list[uuid.UUID],
    people: dict[uuid.UUID, Person],
    redact: bool,
) -> dict[str, Any]:
    """A channel's group as JSON, in ChannelGroup's names and order: :func:`render_group`'s
    values as ``ChannelGroup`` renders them (kebab-case names, ids and dates as text; tests
    check the fixed point), without building the model."""
    json: dict[str, Any] = _as_json(render_group(group, member_ids, leader_ids, people, redact))
    return json


def _as_json(value: Any) -> Any:
    """Python values as JSON: dicts with kebab-case names, ids and dates as text."""
    if isinstance(value, dict):
        return {name.replace("_", "-"): _as_json(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- messages --------------------------------------------------------------------------------
#
# A message's attributes are built here as the JSON they are sent as (kebab-case keys, ids and
# times as strings), with exactly the keys and formats of ``MessageRead`` (the documented
# contract, which the tests validate responses against): no model is built per message. A
# message may be a loaded object, a Core row of its columns or a :class:`posting.NewMessage`.


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _time(value: datetime | str | None) -> str | None:
    """A time as the API shows it; a list's page may bring it formatted already (the
    database's text of the same format: :func:`repository.message_page`)."""
    if value is None or isinstance(value, str):
        return value
    return format_timestamp(value)


def receipt(sub: Any, person: Any) -> dict[str, Any]:
    """One reader of a message: a subscriber's horizon row and their names (or None)."""
    return {
        "ack-time": _time(sub.ack_time),
        "ack-user-time": _time(sub.ack_user_time),
        "individual-first-name": person.first_name if person else None,
        "individual-id": str(sub.individual_id),
        "individual-last-name": person.last_name if person else None,
    }


def split_receipts(
    message: Any, subs: Iterable[Any], people: Mapping[uuid.UUID, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(read, unread) among the channel's subscribers other than the author, by horizon.
    ``subs``: horizon rows (``individual_id``, ``ack_seq``, ``ack_time``, ``ack_user_time``);
    ``people``: names by id (``first_name``, ``last_name``)."""
    read: list[dict[str, Any]] = []
    unread: list[dict[str, Any]] = []
    if message.seq is None:
        return read, unread
    for sub in subs:
        if sub.individual_id == message.individual_id:
            continue
        target = read if sub.ack_seq >= message.seq else unread
        target.append(receipt(sub, people.get(sub.individual_id)))
    return read, unread


def _attachment(described: dict[str, Any]) -> dict[str, Any]:
    """A message's attachment: the fields of ``Attachment`` of what the attachments domain
    describes (which says more: its time, message and status)."""
    return {
        "content-size": described["content-size"],
        "content-type": described["content-type"],
        "filename": described["filename"],
        "id": described["id"],
        "removed": described["removed"],
        "thumbnail": described["thumbnail"],
        "url": described["url"],
    }


def message_attributes(
    message: Any,
    *,
    author: Any,
    ack: bool,
    reactions: list[dict[str, Any]],
    attachments: list[dict[str, Any]],
    read: list[dict[str, Any]],
    include_phrases: bool,
) -> dict[str, Any]:
    """The attributes of ``message`` (``MessageRead``'s, as JSON). ``author``: their names,
    account type and login name (``first_name``, ``last_name``, ``preferred_name``,
    ``account_type``, ``username``), or None."""
    removed = message.removed
    return {
        "ack": ack,
        "analyzed": message.analyzed,
        "attachments": attachments,
        "channel-id": str(message.channel_id),
        "destination": dict(message.destination or {}),
        "draft": message.draft,
        "first-name": author.first_name if author else None,
        "individual-id": _id(message.individual_id),
        "last-modified-time": _time(message.last_modified_at),
        "last-name": author.last_name if author else None,
        "message": "" if removed else message.message,
        "phrases": dict(message.phrases or {}) if include_phrases and not removed else {},
        "posted-time": _time(message.posted_time),
        "preferred-name": author.preferred_name if author else None,
        "reactions": reactions,
        "read-receipts": read,
        "removed": removed,
        "sentiment": None if removed else message.sentiment,
        "seq": message.seq,
        "source": message.source,
        "user-id": _id(message.user_id),
        "user-name": author.username if author else None,
        "user-type": author.account_type if author else None,
    }


@dataclass(frozen=True)
class PostedAuthor:
    """What a post knows of its author (from :func:`repository.post_facts`)."""

    first_name: str
    last_name: str
    preferred_name: str | None
    account_type: str
    username: str | None


def render_posted(ctx: Context, message: Any, author: PostedAuthor) -> dict[str, Any]:
    """The attributes of a message just posted (or saved as a draft) by ``author``, for its
    author, from what the post holds: a new message has no reactions, no attachments and no
    other reader yet (no query)."""
    include_phrases = flag(ctx, "include-phrases")
    flag(ctx, "include-read-receipts")
    flag(ctx, "thumbnail")
    return message_attributes(
        message,
        author=author,
        ack=message.author_read,
        reactions=[],
        attachments=[],
        read=[],
        include_phrases=include_phrases,
    )


_NOT_CARRIED = object()


async def render_messages(ctx: Context, messages: Sequence[Any]) -> list[dict[str, Any]]:
    """Attributes of each message (loaded objects or Core rows) for the caller
    (``ctx.acting_individual_id``): at most four queries for a page (reactions, the caller's
    horizon or every reader's, people, attachments), whatever its size; a list's page
    (:func:`repository.message_page`) carries the caller's horizon."""
    include_phrases = flag(ctx, "include-phrases")
    include_receipts = flag(ctx, "include-read-receipts")
    thumbnails = flag(ctx, "thumbnail")
    if not messages:
        return []
    org, session = ctx.organization_id, ctx.session
    viewer = ctx.acting_individual_id
    ids = [m.id for m in messages]
    channel_ids = list(dict.fromkeys(m.channel_id for m in messages))

    reactions = await repo.message_reactions(session, org, ids)
    subs: dict[uuid.UUID, list[Any]] = {}
    horizon: dict[uuid.UUID, int | None] = {}
    carried: Any = getattr(messages[0], "viewer_horizon", _NOT_CARRIED)
    if include_receipts:
        subs = await repo.horizons(session, org, channel_ids)
    elif viewer is not None and carried is not _NOT_CARRIED:
        # A list's page (repository.message_page: one channel) carries the viewer's horizon.
        horizon = {messages[0].channel_id: carried}
    elif viewer is not None:
        subs = await repo.horizons(session, org, channel_ids, viewer)

    person_ids = [m.individual_id for m in messages if m.individual_id]
    person_ids += [r.individual_id for rs in reactions.values() for r in rs]
    if include_receipts:
        person_ids += [s.individual_id for ss in subs.values() for s in ss]
    people = await repo.names_with_logins(session, org, person_ids)
    attachments = await attachments_for_messages(
        session,
        org,
        [m.id for m in messages if not m.removed],
        settings=ctx.settings,
        base_url=str(ctx.request.base_url),
        thumbnails=thumbnails,
    )
    for channel_id, rows in subs.items():
        horizon[channel_id] = next((s.ack_seq for s in rows if s.individual_id == viewer), None)

    out: list[dict[str, Any]] = []
    for message in messages:
        seq = message.seq
        mine = horizon.get(message.channel_id)
        out.append(
            message_attributes(
                message,
                author=people.get(message.individual_id) if message.individual_id else None,
                ack=mine is not None and seq is not None and mine >= seq,
                reactions=[
                    {
                        "first-name": p.first_name if p else None,
                        "individual-id": str(r.individual_id),
                        "last-name": p.last_name if p else None,
                        "reaction-type": r.reaction_type,
                        "user-name": p.username if p else None,
                    }
                    for r in reactions.get(message.id, ())
                    for p in [people.get(r.individual_id)]
                ],
                attachments=[_attachment(a) for a in attachments.get(message.id, ())],
                read=(
                    split_receipts(message, subs.get(message.channel_id, ()), people)[0]
                    if include_receipts
                    else []
                ),
                include_phrases=include_phrases,
            )
        )
    return out
