"""The rules of secure messaging: channels, subscribers and their read horizons, messages.

Who may do what (a clinic's rules):

- An individual access token sees, and posts in, only the channels it subscribes to (others:
  404); it reads a draft only if it wrote it; it may not edit or remove another person's
  message (403) nor act as anyone else (403).
- ``staff`` and ``admin`` keys act on behalf of any individual of their organization; where a
  point of view is needed (posting, acking, reacting, preferences) they name ``individual-id``
  (400 when missing), and that individual must subscribe to the channel (422 otherwise). An
  admin key may also remove any message without naming anyone (moderation).
- ``readonly`` keys read. Creating, changing, archiving channels and managing their
  subscribers needs a ``staff`` or ``admin`` key.

Ordering and unread counts (see :mod:`courier.models.messaging`): posting takes the channel's
next ``seq`` with one ``UPDATE ... SET last_seq = last_seq + 1 ... RETURNING``, which holds the
channel's row lock on PostgreSQL until commit (SQLite serialises writers), so seqs are unique
and contiguous. A subscriber's horizon (``ack_seq``) only moves with a conditional UPDATE, so it
never goes backwards (unless ``allow-past``) however requests interleave. Lock order is always
channel row, then subscriber rows in individual-id order, so concurrent requests cannot
deadlock.

Every change writes an audit row and publishes ``<type>.<verb>`` for the channel's subscribers
(a draft's events go to its author only).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Select, and_, delete, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from courier.core.auth import Permission, Principal
from courier.core.errors import (
    ApiError,
    ErrorItem,
    bad_request,
    conflict,
    forbidden,
    invalid_attribute,
    not_found,
    unprocessable,
)
from courier.core.tenancy import in_organization, scoped
from courier.core.time import utcnow
from courier.domains.messaging import posting, render
from courier.domains.messaging.analysis import analyse_async
from courier.domains.messaging.schemas import (
    CHANNEL_TYPE,
    MESSAGE_TYPE,
    NOTIFY_LEVELS,
    PREFERENCES_MAX_BYTES,
    AckBody,
    ChannelCreate,
    EventSettings,
    MessageCreate,
    MessageUpdate,
    OptionalName,
    PatchOperation,
    PreferencesBody,
    ReactionBody,
    SmsBody,
    SubscriptionType,
)
from courier.domains.org_preferences.service import get_preference
from courier.jsonapi import changes
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.individual import Individual
from courier.models.individual_group import (
    IndividualGroup,
    IndividualGroupLeader,
    IndividualGroupMember,
)
from courier.models.messaging import (
    MessagingChannel,
    MessagingMessage,
    MessagingReaction,
    MessagingSubscriber,
)
from courier.models.user import User

AUDIENCE = "messaging.audience"  # ctx.extras key: resource id -> individuals an event concerns
VERB = "messaging.verb"  # ctx.extras key: resource id -> the verb the generic routes should use


# --- shared helpers --------------------------------------------------------------------------


def now_ms() -> datetime:
    """Now, to the millisecond: the precision the API shows, so what a client reads back
    compares exactly in ``filter[cmp-...]`` (``<=`` a shown time includes that row)."""
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def is_postgres(ctx: Context) -> bool:
    return ctx.session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]


def set_audience(ctx: Context, ident: uuid.UUID, individual_ids: Iterable[uuid.UUID]) -> None:
    ctx.extras.setdefault(AUDIENCE, {})[ident] = list(dict.fromkeys(individual_ids))


def record_change(
    ctx: Context,
    type_name: str,
    verb: str,
    ident: uuid.UUID,
    fields: Sequence[str] = (),
    data: dict[str, Any] | None = None,
) -> None:
    """The audit row (field names only) and the ``<type>.<verb>`` event for the channel's
    audience (``set_audience``), in this transaction."""
    changes.record_change(
        ctx,
        resource_type=type_name,
        verb=verb,
        resource_id=ident,
        fields=fields,
        individual_ids=ctx.extras.get(AUDIENCE, {}).get(ident, ()),
        data=data,
    )


def resolve_actor(
    ctx: Context, given: uuid.UUID | None, *, required: bool, pointer: str
) -> uuid.UUID | None:
    """The individual a call acts as: ``given`` (from the body), else ``individual-id`` of the
    query, else the token's own individual. An individual token may name only itself (403)."""
    principal = ctx.principal
    if given is not None:
        if principal.is_individual and given != principal.individual_id:
            raise forbidden("an individual token may act only as its own individual")
        if ctx.acting_individual_id is not None and ctx.acting_individual_id != given:
            raise bad_request(
                "individual-id differs between the query and the body",
                "conflicting-individual",
                pointer=pointer,
            )
        actor: uuid.UUID | None = given
    else:
        actor = ctx.acting_individual_id
    if actor is None:
        if required:
            raise ApiError(
                400,
                [
                    ErrorItem(
                        "individual-id is required with an API key: the individual on whose "
                        "behalf the call is made",
                        "missing-individual",
                        pointer=pointer,
                    )
                ],
                {},
                True,
            )
        return None
    return actor


async def require_individual(
    ctx: Context, ident: uuid.UUID, pointer: str | None = None, parameter: str | None = None
) -> Individual:
    """An individual of the caller's organization, else 404 naming where the id came from."""
    stmt = scoped(select(Individual), Individual, ctx.organization_id).where(Individual.id == ident)
    found = (await ctx.session.execute(stmt)).scalar_one_or_none()
    if found is None:
        name = (pointer or parameter or "individual-id").rsplit("/", 1)[-1]
        raise ApiError(
            404,
            [
                ErrorItem(
                    f"{name} names no individual of this organization: {ident}",
                    "not-found",
                    pointer=pointer,
                    parameter=parameter,
                )
            ],
        )
    individual: Individual = found
    return individual


async def require_individuals(ctx: Context, ids: Iterable[uuid.UUID], pointer: str) -> None:
    """Every id names an individual of the organization, else 404 pointing at the list."""
    wanted = list(dict.fromkeys(ids))
    found: set[uuid.UUID] = set()
    stmt = scoped(select(Individual.id), Individual, ctx.organization_id)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update((await ctx.session.execute(stmt.where(Individual.id.in_(chunk)))).scalars())
    for ident in wanted:
        if ident not in found:
            name = pointer.rsplit("/", 1)[-1]
            raise ApiError(
                404,
                [
                    ErrorItem(
                        f"{name} names no individual of this organization: {ident}",
                        "not-found",
                        pointer=pointer,
                    )
                ],
            )


async def subscriber_ids(ctx: Context, channel_id: uuid.UUID) -> list[uuid.UUID]:
    stmt = scoped(
        select(MessagingSubscriber.individual_id), MessagingSubscriber, ctx.organization_id
    ).where(MessagingSubscriber.channel_id == channel_id)
    return list((await ctx.session.execute(stmt)).scalars().all())


async def find_subscriber(
    ctx: Context, channel_id: uuid.UUID, individual_id: uuid.UUID
) -> MessagingSubscriber | None:
    stmt = scoped(select(MessagingSubscriber), MessagingSubscriber, ctx.organization_id).where(
        MessagingSubscriber.channel_id == channel_id,
        MessagingSubscriber.individual_id == individual_id,
    )
    sub: MessagingSubscriber | None = (await ctx.session.execute(stmt)).scalar_one_or_none()
    return sub


async def require_subscriber(
    ctx: Context, channel_id: uuid.UUID, individual_id: uuid.UUID, what: str
) -> MessagingSubscriber:
    """The individual's membership of the channel. Not a member: an individual token cannot
    see the channel at all (404); a key named someone outside it (422)."""
    sub = await find_subscriber(ctx, channel_id, individual_id)
    if sub is None:
        if ctx.principal.is_individual:
            raise not_found(what)
        raise unprocessable(
            f"individual {individual_id} does not subscribe to this channel", "not-a-subscriber"
        )
    return sub


def subscribed_channels(organization_id: uuid.UUID, individual_id: uuid.UUID) -> Select[Any]:
    return scoped(
        select(MessagingSubscriber.channel_id), MessagingSubscriber, organization_id
    ).where(MessagingSubscriber.individual_id == individual_id)


def _viewer_of(principal: Principal) -> uuid.UUID:
    assert principal.individual_id is not None and principal.organization_id is not None
    return principal.individual_id


def channel_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees the channels it subscribes to."""
    org = principal.require_organization()
    return stmt.where(MessagingChannel.id.in_(subscribed_channels(org, _viewer_of(principal))))


def message_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees the messages of its channels, and of drafts only its own."""
    org = principal.require_organization()
    viewer = _viewer_of(principal)
    return stmt.where(
        MessagingMessage.channel_id.in_(subscribed_channels(org, viewer)),
        or_(MessagingMessage.draft == false(), MessagingMessage.individual_id == viewer),
    )


async def user_of(ctx: Context, individual_id: uuid.UUID) -> uuid.UUID | None:
    stmt = (
        scoped(select(User.id), User, ctx.organization_id)
        .where(User.primary_individual_id == individual_id)
        .order_by(User.created_at, User.id)
        .limit(1)
    )
    user_id: uuid.UUID | None = (await ctx.session.execute(stmt)).scalar_one_or_none()
    return user_id


# --- channels --------------------------------------------------------------------------------


async def group_members(
    ctx: Context, group_id: uuid.UUID
) -> tuple[list[uuid.UUID], set[uuid.UUID]]:
    org = ctx.organization_id
    members = await ctx.session.execute(
        scoped(select(IndividualGroupMember.individual_id), IndividualGroupMember, org)
        .where(IndividualGroupMember.group_id == group_id)
        .order_by(IndividualGroupMember.individual_id)
    )
    leaders = await ctx.session.execute(
        scoped(select(IndividualGroupLeader.individual_id), IndividualGroupLeader, org).where(
            IndividualGroupLeader.group_id == group_id
        )
    )
    return list(members.scalars().all()), set(leaders.scalars().all())


async def require_group(ctx: Context, group_id: uuid.UUID, pointer: str) -> IndividualGroup:
    stmt = scoped(select(IndividualGroup), IndividualGroup, ctx.organization_id).where(
        IndividualGroup.id == group_id
    )
    group = (await ctx.session.execute(stmt)).scalar_one_or_none()
    if group is None:
        raise ApiError(
            404,
            [
                ErrorItem(
                    f"individual-group-id names no individual group of this organization: "
                    f"{group_id}",
                    "not-found",
                    pointer=pointer,
                )
            ],
        )
    found: IndividualGroup = group
    return found


async def add_subscribers(
    ctx: Context,
    channel: MessagingChannel,
    individual_ids: Sequence[uuid.UUID],
    admins: Iterable[uuid.UUID] = (),
) -> list[uuid.UUID]:
    """Subscribe those not yet subscribed (their history starts unread); returns them."""
    wanted = list(dict.fromkeys(individual_ids))
    admin_ids = set(admins)
    if not wanted:
        return []
    existing: set[uuid.UUID] = set()
    for start in range(0, len(wanted), 500):
        stmt = scoped(
            select(MessagingSubscriber.individual_id), MessagingSubscriber, ctx.organization_id
        ).where(
            MessagingSubscriber.channel_id == channel.id,
            MessagingSubscriber.individual_id.in_(wanted[start : start + 500]),
        )
        existing.update((await ctx.session.execute(stmt)).scalars().all())
    added = [ident for ident in wanted if ident not in existing]
    now = now_ms()
    for ident in added:
        ctx.session.add(
            MessagingSubscriber(
                organization_id=ctx.organization_id,
                channel_id=channel.id,
                individual_id=ident,
                admin=ident in admin_ids,
                pinned=False,
                notify="all",
                preferences={},
                ack_seq=0,
                subscribed_at=now,
            )
        )
    return added


def refuse_individual_token(ctx: Context) -> None:
    if ctx.principal.is_individual:
        raise forbidden("only a staff or admin key may manage channels")


# List parameters that shape each channel's rendering, not which channels are listed.
CHANNEL_RENDER_ONLY = frozenset({"use-group-name"})


class ChannelService(CrudService[MessagingChannel]):
    def query(self, ctx: Context) -> Select[Any]:
        """The organization's channels; with a caller (``individual-id`` or an individual
        token), only those the caller subscribes to."""
        stmt = scoped(select(MessagingChannel), MessagingChannel, ctx.organization_id)
        viewer = ctx.acting_individual_id
        if viewer is not None:
            stmt = stmt.where(
                MessagingChannel.id.in_(subscribed_channels(ctx.organization_id, viewer))
            )
        return stmt

    async def count(self, ctx: Context, stmt: Select[Any], values: Mapping[str, Any]) -> int:
        """The caller's channels, when nothing else narrows them, are its memberships: counted
        from its index range instead of joining every channel of the organization."""
        viewer = ctx.acting_individual_id
        if viewer is None or set(values) - CHANNEL_RENDER_ONLY:
            return await super().count(ctx, stmt, values)
        memberships = scoped(
            select(func.count()).select_from(MessagingSubscriber),
            MessagingSubscriber,
            ctx.organization_id,
        ).where(MessagingSubscriber.individual_id == viewer)
        return int((await ctx.session.execute(memberships)).scalar_one())

    async def create(self, ctx: Context, attrs: WriteAttributes) -> MessagingChannel:
        assert isinstance(attrs, ChannelCreate)
        refuse_individual_token(ctx)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        if attrs.individual_group_id is None and not attrs.individual_ids:
            raise invalid_attribute(
                "individual-ids", "or individual-group-id is required: a channel needs people"
            )
        members: list[uuid.UUID] = []
        leaders: set[uuid.UUID] = set()
        if attrs.individual_group_id is not None:
            await require_group(
                ctx, attrs.individual_group_id, "/data/attributes/individual-group-id"
            )
            members, leaders = await group_members(ctx, attrs.individual_group_id)
        await require_individuals(ctx, attrs.individual_ids, "/data/attributes/individual-ids")
        creator = ctx.acting_individual_id
        if creator is not None:
            await require_individual(ctx, creator, parameter="individual-id")
        now = now_ms()
        channel = MessagingChannel(
            id=uuid.uuid4(),
            created_at=now,
            last_modified_at=now,
            organization_id=ctx.organization_id,
            name=attrs.name,
            label=attrs.label,
            floating=attrs.floating,
            archived=False,
            subscription_type=attrs.subscription_type,
            event_settings=attrs.event_settings.model_dump(),
            individual_group_id=attrs.individual_group_id,
            text_number_id=attrs.text_number_id,
            observation_id=attrs.observation_id,
            owner_id=creator,
            created_by=creator,
            with_sms=False,
            sms_initial_message_js={},
            last_seq=0,
        )
        ctx.session.add(channel)
        await ctx.session.flush()  # the channel exists before rows that refer to it
        everyone = [*members, *attrs.individual_ids, *([creator] if creator else [])]
        admins = leaders | ({creator} if creator else set())
        added = await add_subscribers(ctx, channel, everyone, admins)
        set_audience(ctx, channel.id, added)
        return channel

    async def present(self, ctx: Context, rows: Sequence[MessagingChannel]) -> list[dict[str, Any]]:
        return await render.render_channels(ctx, rows)

    def audit(
        self, ctx: Context, action: str, obj: MessagingChannel, fields: Sequence[str] = ()
    ) -> None:
        record_change(ctx, CHANNEL_TYPE, action, obj.id, fields)


channels = ChannelService()


# --- channel PATCH: JSON-Patch operations ----------------------------------------------------


_NULLABLE_UUID: TypeAdapter[uuid.UUID | None] = TypeAdapter(uuid.UUID | None)
_STRICT_BOOL: TypeAdapter[bool] = TypeAdapter(bool, config={"strict": True})

# path -> (model attribute, how the value is checked, whether "remove" may clear it)
PATCHABLE: dict[str, tuple[str, TypeAdapter[Any], bool]] = {
    "name": ("name", TypeAdapter(OptionalName), True),
    "label": ("label", TypeAdapter(OptionalName), True),
    "floating": ("floating", _STRICT_BOOL, False),
    "subscription-type": ("subscription_type", TypeAdapter(SubscriptionType), False),
    "event-settings": ("event_settings", TypeAdapter(EventSettings), False),
    "event-settings/enabled": ("event_settings.enabled", _STRICT_BOOL, False),
    "individual-group-id": ("individual_group_id", _NULLABLE_UUID, True),
    "text-number-id": ("text_number_id", _NULLABLE_UUID, True),
    "observation-id": ("observation_id", _NULLABLE_UUID, True),
    "owner-id": ("owner_id", _NULLABLE_UUID, True),
}
PATCH_OPS = ("add", "replace", "remove")
ACTION_PATHS = {"archived": "use the archive/ and unarchive/ actions"}


def _pointer_path(path: str) -> str:
    """A JSON pointer (RFC 6901) without its leading slash, unescaped."""
    return path[1:].replace("~1", "/").replace("~0", "~")


def parse_patch(operations: Sequence[PatchOperation]) -> list[tuple[int, str, Any]]:
    """Validate every operation; [(index, path, value)] or 400 pointing into the list."""
    errors: list[ErrorItem] = []
    parsed: list[tuple[int, str, Any]] = []
    for index, operation in enumerate(operations):
        at = f"/data/attributes/{index}"
        if operation.op not in PATCH_OPS:
            errors.append(
                ErrorItem(
                    f"op {operation.op!r} is not supported; use replace, add or remove",
                    "invalid-patch-op",
                    pointer=f"{at}/op",
                )
            )
            continue
        path = _pointer_path(operation.path) if operation.path.startswith("/") else None
        if path is None or path not in PATCHABLE:
            hint = ACTION_PATHS.get(path or "")
            errors.append(
                ErrorItem(
                    f"path {operation.path!r} "
                    + (f"cannot be patched: {hint}" if hint else "is not a patchable attribute; ")
                    + ("" if hint else "use one of /" + ", /".join(PATCHABLE)),
                    "invalid-patch-path",
                    pointer=f"{at}/path",
                )
            )
            continue
        _, adapter, removable = PATCHABLE[path]
        if operation.op == "remove":
            if not removable:
                errors.append(
                    ErrorItem(
                        f"{operation.path} cannot be removed; replace it instead",
                        "invalid-patch-op",
                        pointer=f"{at}/op",
                    )
                )
                continue
            parsed.append((index, path, None))
            continue
        if "value" not in operation.model_fields_set:
            errors.append(
                ErrorItem(
                    f"{operation.op} needs a value", "missing-patch-value", pointer=f"{at}/value"
                )
            )
            continue
        try:
            value = adapter.validate_python(operation.value)
        except ValidationError as exc:
            detail = exc.errors()[0].get("msg", "is invalid").removeprefix("Value error, ")
            errors.append(
                ErrorItem(
                    f"value of {operation.path}: {detail}",
                    "invalid-patch-value",
                    pointer=f"{at}/value",
                )
            )
            continue
        parsed.append((index, path, value))
    if errors:
        raise ApiError(400, errors, {}, True)
    return parsed


async def patch_channel(
    ctx: Context, channel: MessagingChannel, operations: Sequence[PatchOperation]
) -> list[str]:
    """Apply JSON-Patch operations; returns the names of the attributes that changed.

    A new ``individual-group-id`` subscribes the group's members who are not yet subscribed;
    nobody is unsubscribed by it (that takes ``unsubscribe/``).
    """
    refuse_individual_token(ctx)
    changed: list[str] = []
    for index, path, value in parse_patch(operations):
        pointer = f"/data/attributes/{index}/value"
        attribute = PATCHABLE[path][0]
        if attribute == "individual_group_id" and value is not None:
            await require_group(ctx, value, pointer)
        if attribute == "owner_id" and value is not None:
            await require_individual(ctx, value, pointer)
        if attribute == "event_settings":
            value = value.model_dump()
        if attribute == "event_settings.enabled":
            attribute = "event_settings"
            value = {**(channel.event_settings or {}), "enabled": value}
        if getattr(channel, attribute) != value:
            setattr(channel, attribute, value)
            changed.append(path.split("/")[0])
        if attribute == "individual_group_id" and value is not None:
            members, leaders = await group_members(ctx, value)
            if await add_subscribers(ctx, channel, members, leaders):
                changed.append("subscribers")
    if changed:
        channel.last_modified_at = now_ms()
    set_audience(ctx, channel.id, await subscriber_ids(ctx, channel.id))
    return sorted(set(changed))


# --- channel actions -------------------------------------------------------------------------


async def set_archived(ctx: Context, channel: MessagingChannel, archived: bool) -> None:
    refuse_individual_token(ctx)
    if channel.archived == archived:
        return  # idempotent: nothing changes, nothing is announced
    channel.archived = archived
    channel.last_modified_at = now_ms()
    set_audience(ctx, channel.id, await subscriber_ids(ctx, channel.id))
    record_change(ctx, CHANNEL_TYPE, "archived" if archived else "unarchived", channel.id)


async def subscribe(ctx: Context, channel: MessagingChannel, ids: Sequence[uuid.UUID]) -> None:
    refuse_individual_token(ctx)
    await require_individuals(ctx, ids, "/individual-ids")
    added = await add_subscribers(ctx, channel, ids)
    if added:
        channel.last_modified_at = now_ms()
        await ctx.session.flush()
        set_audience(ctx, channel.id, await subscriber_ids(ctx, channel.id))
        record_change(
            ctx,
            CHANNEL_TYPE,
            "subscribed",
            channel.id,
            ["subscribers"],
            {"individual-ids": [str(i) for i in added]},
        )


async def unsubscribe(ctx: Context, channel: MessagingChannel, ids: Sequence[uuid.UUID]) -> None:
    refuse_individual_token(ctx)
    await require_individuals(ctx, ids, "/individual-ids")
    before = await subscriber_ids(ctx, channel.id)
    removed = [ident for ident in ids if ident in set(before)]
    if not removed:
        return
    await ctx.session.execute(
        scoped(delete(MessagingSubscriber), MessagingSubscriber, ctx.organization_id).where(
            MessagingSubscriber.channel_id == channel.id,
            MessagingSubscriber.individual_id.in_(removed),
        )
    )
    channel.last_modified_at = now_ms()
    # Those removed hear of it too: their apps drop the channel.
    set_audience(ctx, channel.id, before)
    record_change(
        ctx,
        CHANNEL_TYPE,
        "unsubscribed",
        channel.id,
        ["subscribers"],
        {"individual-ids": [str(i) for i in removed]},
    )


async def set_preferences(
    ctx: Context, channel: MessagingChannel, individual_id: uuid.UUID, body: PreferencesBody
) -> None:
    """``notify`` and ``pinned`` are typed settings of the subscriber; any other name keeps
    its JSON value (null deletes it) in the subscriber's preferences, 16 KiB at most."""
    sub = await require_subscriber(ctx, channel.id, individual_id, "messaging channel")
    preferences = dict(sub.preferences or {})
    changed: list[str] = []
    errors: list[ErrorItem] = []
    for index, item in enumerate(body.values):
        pointer = f"/values/{index}/value"
        if item.name == "notify":
            if item.value not in NOTIFY_LEVELS:
                errors.append(
                    ErrorItem(
                        "notify must be one of " + ", ".join(NOTIFY_LEVELS),
                        "invalid-preference",
                        pointer=pointer,
                    )
                )
            elif sub.notify != item.value:
                sub.notify = item.value
                changed.append("notify")
        elif item.name == "pinned":
            if not isinstance(item.value, bool):
                errors.append(
                    ErrorItem("pinned must be true or false", "invalid-preference", pointer=pointer)
                )
            elif sub.pinned != item.value:
                sub.pinned = item.value
                changed.append("pinned")
        elif item.value is None:
            if preferences.pop(item.name, None) is not None:
                changed.append("preferences")
        elif preferences.get(item.name) != item.value:
            preferences[item.name] = item.value
            changed.append("preferences")
    if len(orjson.dumps(preferences)) > PREFERENCES_MAX_BYTES:
        errors.append(
            ErrorItem(
                "preferences must be at most 16 KiB of JSON",
                "invalid-preference",
                pointer="/values",
            )
        )
    if errors:
        raise ApiError(400, errors, {}, True)
    if "preferences" in changed:
        sub.preferences = preferences  # a new object: JSON columns track assignment
    if changed:
        set_audience(ctx, channel.id, [individual_id])
        record_change(
            ctx,
            CHANNEL_TYPE,
            "preferences-changed",
            channel.id,
            sorted(set(changed)),
            {"individual-id": str(individual_id)},
        )


async def set_sms(ctx: Context, channel: MessagingChannel, body: SmsBody) -> None:
    """The SMS path's state is kept on the channel; the texting domain acts on it."""
    refuse_individual_token(ctx)
    if body.active and channel.text_number_id is None:
        raise unprocessable(
            "the channel has no text number (text-number-id) to send texts from", "no-text-number"
        )
    fields: list[str] = []
    if channel.with_sms != body.active:
        channel.with_sms = body.active
        fields.append("with-sms")
    given = body.model_fields_set
    if "initial_message" in given and channel.sms_initial_message != body.initial_message:
        channel.sms_initial_message = body.initial_message
        fields.append("sms-initial-message")
    if "initial_message_js" in given:
        messages = dict(body.initial_message_js or {})
        if messages != channel.sms_initial_message_js:
            channel.sms_initial_message_js = messages
            fields.append("sms-initial-message-js")
    if fields:
        channel.last_modified_at = now_ms()
        set_audience(ctx, channel.id, await subscriber_ids(ctx, channel.id))
        record_change(ctx, CHANNEL_TYPE, "updated", channel.id, fields)


async def profile_photo(
    ctx: Context, channel: MessagingChannel, viewer: uuid.UUID, profile_id: uuid.UUID
) -> str | None:
    """The photo of ``profile_id`` as ``viewer`` sees it: both must share the channel."""
    await require_subscriber(ctx, channel.id, viewer, "messaging channel")
    if await find_subscriber(ctx, channel.id, profile_id) is None:
        raise not_found("individual profile")
    individual = await require_individual(ctx, profile_id, parameter="profile-individual-id")
    return individual.photo


# --- messages --------------------------------------------------------------------------------


async def take_seq(ctx: Context, message: MessagingMessage, *, auto_ack: bool = True) -> None:
    """Post ``message``: the channel's next seq, the channel's last message, and the author's
    horizon (they have read what they wrote). See :func:`posting.take_seqs`."""
    await posting.take_seqs(ctx.session, ctx.organization_id, [message], auto_ack=auto_ack)


async def load_channel(ctx: Context, channel_id: uuid.UUID, pointer: str) -> MessagingChannel:
    stmt = scoped(select(MessagingChannel), MessagingChannel, ctx.organization_id).where(
        MessagingChannel.id == channel_id
    )
    channel = (await ctx.session.execute(stmt)).scalar_one_or_none()
    if channel is None:
        raise ApiError(
            404,
            [
                ErrorItem(
                    f"channel-id names no channel of this organization: {channel_id}",
                    "not-found",
                    pointer=pointer,
                )
            ],
        )
    found: MessagingChannel = channel
    return found


async def touch_channel_if_last(ctx: Context, message: MessagingMessage) -> None:
    """A channel shows its last message: when that message changes, so does the channel."""
    await ctx.session.execute(
        scoped(update(MessagingChannel), MessagingChannel, ctx.organization_id)
        .where(
            MessagingChannel.id == message.channel_id,
            MessagingChannel.last_message_id == message.id,
        )
        .values(last_modified_at=now_ms())
        .execution_options(synchronize_session="evaluate")
    )


# List parameters that shape each message's rendering, not which messages are listed.
RENDER_ONLY = frozenset({"include-read-receipts", "include-phrases", "thumbnail"})


class MessageService(CrudService[MessagingMessage]):
    def query(self, ctx: Context) -> Select[Any]:
        """Messages of the caller's channels (drafts: only the caller's own). Without a
        caller (an API key naming no individual): every posted message of the organization."""
        stmt = scoped(select(MessagingMessage), MessagingMessage, ctx.organization_id)
        viewer = ctx.acting_individual_id
        if viewer is None:
            return stmt.where(MessagingMessage.draft == false())
        return stmt.where(
            MessagingMessage.channel_id.in_(subscribed_channels(ctx.organization_id, viewer)),
            or_(MessagingMessage.draft == false(), MessagingMessage.individual_id == viewer),
        )

    async def load(
        self, ctx: Context, ident: uuid.UUID, *, for_update: bool = False
    ) -> MessagingMessage:
        if for_update and not ctx.principal.is_individual and ctx.acting_individual_id is None:
            # A key changing a message names its author in the body; update() checks it.
            return await self.load_any(ctx, ident)
        return await super().load(ctx, ident, for_update=for_update)

    async def load_any(self, ctx: Context, ident: uuid.UUID) -> MessagingMessage:
        """Any message of the organization, drafts included: the caller checks who acts."""
        stmt = scoped(select(MessagingMessage), MessagingMessage, ctx.organization_id)
        found = (
            await ctx.session.execute(stmt.where(MessagingMessage.id == ident))
        ).scalar_one_or_none()
        if found is None:
            raise not_found(self.spec.singular)
        row: MessagingMessage = found
        return row

    async def count(self, ctx: Context, stmt: Select[Any], values: Mapping[str, Any]) -> int:
        """A channel's messages, when nothing else narrows them, are counted from the seq
        counter: its posted messages are numbered 1..last_seq with no gaps (removed ones keep
        their place; only drafts are ever deleted), plus the caller's own drafts. A list of a
        1,000,000-message channel then costs no more than one of ten messages."""
        if set(values) - RENDER_ONLY != {"channel-id"}:
            return await super().count(ctx, stmt, values)
        org, viewer = ctx.organization_id, ctx.acting_individual_id
        channel_id: uuid.UUID = values["channel-id"]
        counted = scoped(select(MessagingChannel.last_seq), MessagingChannel, org).where(
            MessagingChannel.id == channel_id
        )
        if viewer is not None:  # the caller's channels only, and its drafts
            drafts = (
                select(func.count())
                .select_from(MessagingMessage)
                .where(
                    in_organization(MessagingMessage, org),
                    MessagingMessage.channel_id == channel_id,
                    MessagingMessage.seq.is_(None),
                    MessagingMessage.draft.is_(True),
                    MessagingMessage.individual_id == viewer,
                )
                .scalar_subquery()
            )
            counted = (
                counted.with_only_columns(MessagingChannel.last_seq + drafts)
                .join(MessagingSubscriber, MessagingSubscriber.channel_id == MessagingChannel.id)
                .where(
                    in_organization(MessagingSubscriber, org),
                    MessagingSubscriber.individual_id == viewer,
                )
            )
        total = (await ctx.session.execute(counted)).scalar_one_or_none()
        return int(total or 0)

    async def create(self, ctx: Context, attrs: WriteAttributes) -> MessagingMessage:
        assert isinstance(attrs, MessageCreate)
        pointer = "/data/attributes/individual-id"
        author_id = resolve_actor(ctx, attrs.individual_id, required=True, pointer=pointer)
        assert author_id is not None
        author = await require_individual(ctx, author_id, pointer)
        channel = await load_channel(ctx, attrs.channel_id, "/data/attributes/channel-id")
        await require_subscriber(ctx, channel.id, author_id, "messaging channel")
        if channel.archived and not attrs.draft:
            raise conflict("the channel is archived: nothing can be posted in it", "archived")
        if not attrs.draft and not attrs.message.strip():
            raise invalid_attribute("message", "must not be empty")
        post = posting.NewPost(
            channel_id=channel.id,
            author_id=author_id,
            text=attrs.message,
            draft=attrs.draft,
            auto_ack=attrs.auto_ack is not False,
            destination=(
                {"include-destinations": list(dict.fromkeys(attrs.include_destinations))}
                if attrs.include_destinations
                else {}
            ),
        )
        author_info = posting.Author(author_id, author.locale, await user_of(ctx, author_id))
        actor = posting.AuditActor.of(ctx.principal, ctx.request_id, attrs.model_fields_set)
        (message,) = await posting.post_messages(
            ctx.session, ctx.organization_id, [post], actor=actor, authors={author_id: author_info}
        )
        # Recorded and announced by post_messages: the generic route adds nothing.
        ctx.extras.setdefault(VERB, {})[message.id] = None
        ctx.acting_individual_id = author_id  # the response shows the author's view
        return message

    async def update(
        self, ctx: Context, obj: MessagingMessage, attrs: WriteAttributes
    ) -> MessagingMessage:
        assert isinstance(attrs, MessageUpdate)
        given = attrs.given()
        pointer = "/data/attributes/individual-id"
        actor = resolve_actor(ctx, given.get("individual_id"), required=False, pointer=pointer)
        changes = set(given) - {"individual_id"}
        moderation = (
            actor is None
            and ctx.principal.can(Permission.MANAGE)
            and changes == {"removed"}
            and given["removed"] is True
        )
        if actor is None and not moderation:
            resolve_actor(ctx, None, required=True, pointer=pointer)  # raises the 400
        if obj.draft and actor != obj.individual_id:
            raise not_found(self.spec.singular)  # a draft exists only for its author
        if not moderation and actor != obj.individual_id:
            raise forbidden("only its author may change a message")
        if actor is not None:
            ctx.acting_individual_id = actor
        verbs: dict[uuid.UUID, str | None] = ctx.extras.setdefault(VERB, {})
        verbs[obj.id] = None  # nothing to record unless something changes below
        if obj.removed:
            if changes - {"removed"} or given.get("removed") is False:
                raise conflict("a removed message cannot be changed", "removed")
            return obj  # removing again: nothing changes
        if given.get("draft") is True and not obj.draft:
            raise conflict("a posted message cannot become a draft again", "posted")
        publishing = obj.draft and given.get("draft") is False
        verb: str | None = None
        if "message" in given and given["message"] != obj.message:
            if (publishing or not obj.draft) and not given["message"].strip():
                raise invalid_attribute("message", "must not be empty")
            locale = None
            if obj.individual_id is not None:
                locale = (await require_individual(ctx, obj.individual_id, pointer)).locale
            analysis = await analyse_async(given["message"], locale)
            obj.message = given["message"]
            obj.sentiment = analysis.sentiment
            obj.phrases = analysis.phrases
            verb = "updated"
        if given.get("removed") is True:
            obj.removed = True
            verb = "removed"
        elif publishing:
            channel = await load_channel(ctx, obj.channel_id, "/data/attributes/draft")
            if channel.archived:
                raise conflict("the channel is archived: nothing can be posted in it", "archived")
            if not obj.message.strip():
                raise invalid_attribute("message", "must not be empty")
            await take_seq(ctx, obj)
            verb = "posted"
        if verb is None:
            return obj
        obj.last_modified_at = now_ms()
        if not obj.draft:
            await touch_channel_if_last(ctx, obj)
        audience = (
            [obj.individual_id]
            if obj.draft and obj.individual_id
            else await subscriber_ids(ctx, obj.channel_id)
        )
        set_audience(ctx, obj.id, audience)
        verbs[obj.id] = verb
        return obj

    async def present(self, ctx: Context, rows: Sequence[MessagingMessage]) -> list[dict[str, Any]]:
        return await render.render_messages(ctx, rows)

    def audit(
        self, ctx: Context, action: str, obj: MessagingMessage, fields: Sequence[str] = ()
    ) -> None:
        verbs = ctx.extras.get(VERB, {})
        verb = verbs.get(obj.id, action)
        if verb is None:
            return  # the request changed nothing: no audit row, no event
        record_change(ctx, MESSAGE_TYPE, verb, obj.id, fields, {"channel-id": str(obj.channel_id)})


messages = MessageService()


# --- message actions -------------------------------------------------------------------------


async def load_message_as(
    ctx: Context, ident: uuid.UUID, actor_given: uuid.UUID | None
) -> tuple[MessagingMessage, uuid.UUID]:
    """The message and the individual acting on it, who must subscribe to its channel."""
    actor = resolve_actor(ctx, actor_given, required=True, pointer="/individual-id")
    assert actor is not None
    if ctx.principal.is_individual:
        message = await messages.load(ctx, ident)  # its own channels and drafts only: else 404
    else:
        await require_individual(ctx, actor, "/individual-id")
        message = await messages.load_any(ctx, ident)
        if message.draft and message.individual_id != actor:
            raise not_found(messages.spec.singular)
        await require_subscriber(ctx, message.channel_id, actor, "messaging message")
    ctx.acting_individual_id = actor
    return message, actor


async def acknowledge(ctx: Context, ident: uuid.UUID, body: AckBody) -> MessagingMessage:
    """Move the reader's horizon to this message: it and everything before it are read.

    Never backwards unless ``allow-past``. With the organization's ``group-provider-ack``, a
    provider's ack moves every provider subscriber's horizon forward too (their
    ``ack-user-time`` stays empty: they did not read it themselves).
    """
    message, reader = await load_message_as(ctx, ident, body.individual_id)
    if message.draft or message.seq is None:
        raise conflict("a draft cannot be acknowledged", "draft")
    org = ctx.organization_id
    seq = message.seq
    now = now_ms()
    providers: list[uuid.UUID] = []
    if await get_preference(ctx.session, org, "group-provider-ack"):
        reader_row = await require_individual(ctx, reader, "/individual-id")
        if reader_row.account_type == "provider":
            stmt = (
                scoped(select(MessagingSubscriber.individual_id), MessagingSubscriber, org)
                .join(Individual, Individual.id == MessagingSubscriber.individual_id)
                .where(
                    MessagingSubscriber.channel_id == message.channel_id,
                    Individual.account_type == "provider",
                    in_organization(Individual, org),
                )
                .order_by(MessagingSubscriber.individual_id)
            )
            providers = list((await ctx.session.execute(stmt)).scalars().all())
    if providers and is_postgres(ctx):
        # Lock every row this ack may move in one order, so concurrent group acks never
        # deadlock on each other's rows.
        await ctx.session.execute(
            scoped(select(MessagingSubscriber.individual_id), MessagingSubscriber, org)
            .where(
                MessagingSubscriber.channel_id == message.channel_id,
                MessagingSubscriber.individual_id.in_(sorted({*providers, reader})),
            )
            .order_by(MessagingSubscriber.individual_id)
            .with_for_update()
        )
    condition = (
        MessagingSubscriber.ack_seq != seq if body.allow_past else MessagingSubscriber.ack_seq < seq
    )
    result = await ctx.session.execute(
        scoped(update(MessagingSubscriber), MessagingSubscriber, org)
        .where(
            MessagingSubscriber.channel_id == message.channel_id,
            MessagingSubscriber.individual_id == reader,
            condition,
        )
        .values(
            ack_seq=seq,
            ack_message_id=message.id,
            ack_time=now,
            ack_user_time=body.ack_user_time or now,
        )
        .execution_options(synchronize_session="evaluate")
    )
    moved = result.rowcount  # type: ignore[attr-defined]
    others = [ident for ident in providers if ident != reader]
    if others:
        result = await ctx.session.execute(
            scoped(update(MessagingSubscriber), MessagingSubscriber, org)
            .where(
                MessagingSubscriber.channel_id == message.channel_id,
                MessagingSubscriber.individual_id.in_(others),
                MessagingSubscriber.ack_seq < seq,
            )
            .values(ack_seq=seq, ack_message_id=message.id, ack_time=now, ack_user_time=None)
            .execution_options(synchronize_session="evaluate")
        )
        moved += result.rowcount  # type: ignore[attr-defined]
    if moved:
        set_audience(ctx, message.id, await subscriber_ids(ctx, message.channel_id))
        record_change(
            ctx,
            MESSAGE_TYPE,
            "acked",
            message.id,
            ["ack-seq"],
            {"channel-id": str(message.channel_id), "individual-id": str(reader), "seq": seq},
        )
    return message


def _reactable(message: MessagingMessage) -> None:
    if message.draft:
        raise conflict("a draft cannot be reacted to", "draft")
    if message.removed:
        raise conflict("a removed message cannot be reacted to", "removed")


async def add_reaction(ctx: Context, ident: uuid.UUID, body: ReactionBody) -> MessagingMessage:
    """One reaction per individual and type: adding it again changes nothing."""
    message, reactor = await load_message_as(ctx, ident, body.individual_id)
    _reactable(message)
    if await _find_reaction(ctx, message.id, reactor, body.reaction_type) is not None:
        return message
    try:
        async with ctx.session.begin_nested():  # a concurrent twin may win the unique key
            ctx.session.add(
                MessagingReaction(
                    organization_id=ctx.organization_id,
                    message_id=message.id,
                    individual_id=reactor,
                    reaction_type=body.reaction_type,
                )
            )
    except IntegrityError:
        return message
    await _reaction_changed(ctx, message, reactor, body.reaction_type, "reacted")
    return message


async def delete_reaction(ctx: Context, ident: uuid.UUID, body: ReactionBody) -> MessagingMessage:
    message, reactor = await load_message_as(ctx, ident, body.individual_id)
    reaction = await _find_reaction(ctx, message.id, reactor, body.reaction_type)
    if reaction is None:
        raise not_found("reaction")
    await ctx.session.delete(reaction)
    await ctx.session.flush()
    await _reaction_changed(ctx, message, reactor, body.reaction_type, "unreacted")
    return message


async def _find_reaction(
    ctx: Context, message_id: uuid.UUID, individual_id: uuid.UUID, reaction_type: str
) -> MessagingReaction | None:
    stmt = scoped(select(MessagingReaction), MessagingReaction, ctx.organization_id).where(
        MessagingReaction.message_id == message_id,
        MessagingReaction.individual_id == individual_id,
        MessagingReaction.reaction_type == reaction_type,
    )
    found: MessagingReaction | None = (await ctx.session.execute(stmt)).scalar_one_or_none()
    return found


async def _reaction_changed(
    ctx: Context, message: MessagingMessage, reactor: uuid.UUID, reaction_type: str, verb: str
) -> None:
    set_audience(ctx, message.id, await subscriber_ids(ctx, message.channel_id))
    record_change(
        ctx,
        MESSAGE_TYPE,
        verb,
        message.id,
        ["reactions"],
        {
            "channel-id": str(message.channel_id),
            "individual-id": str(reactor),
            "reaction-type": reaction_type,
        },
    )


async def receipts(
    ctx: Context, message: MessagingMessage
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Who of the channel's subscribers (the author aside) has read the message, by horizon."""
    if message.draft:
        raise conflict("a draft has not been delivered: it has no receipts", "draft")
    subs = (await render.channel_subscribers(ctx, [message.channel_id]))[message.channel_id]
    people = await render.load_people(ctx, [s.individual_id for s in subs])
    return render.split_receipts(message, subs, people)


# --- list filters ----------------------------------------------------------------------------


def acknowledged_filter(stmt: Select[Any], value: bool, ctx: Context) -> Select[Any]:
    """Read or unread relative to the caller's horizon in each message's channel."""
    viewer = ctx.acting_individual_id
    if viewer is None:
        raise ApiError(
            400,
            [
                ErrorItem(
                    "acknowledged needs individual-id: whose reading to compare with",
                    "missing-individual",
                    parameter="acknowledged",
                )
            ],
            {},
            True,
        )
    horizon = (
        scoped(select(MessagingSubscriber.ack_seq), MessagingSubscriber, ctx.organization_id)
        .where(
            MessagingSubscriber.channel_id == MessagingMessage.channel_id,
            MessagingSubscriber.individual_id == viewer,
        )
        .scalar_subquery()
    )
    posted = and_(MessagingMessage.draft == false(), MessagingMessage.seq.is_not(None))
    if value:
        return stmt.where(posted, MessagingMessage.seq <= horizon)
    return stmt.where(posted, MessagingMessage.seq > horizon)


def text_filter(stmt: Select[Any], value: str, _ctx: Context) -> Select[Any]:
    """Substring of the text, any case; a removed message's text is never searched."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return stmt.where(
        MessagingMessage.removed == false(),
        func.lower(MessagingMessage.message).like(f"%{escaped.lower()}%", escape="\\"),
    )


def participant_filter(stmt: Select[Any], value: uuid.UUID, ctx: Context) -> Select[Any]:
    return stmt.where(MessagingChannel.id.in_(subscribed_channels(ctx.organization_id, value)))


def accept_only(stmt: Select[Any], _value: Any, _ctx: Context) -> Select[Any]:
    """A parameter that shapes the rendering, not the rows (validated by the list parser)."""
    return stmt
