"""The rules of channels: creating them (one way, for a request or a fan-out job), the
JSON-Patch PATCH, archiving, subscribers, a subscriber's preferences, the SMS path, profiles.

Every change writes an audit row and publishes ``messaging-channels.<verb>`` for the channel's
subscribers (those removed by an unsubscribe hear of it too).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import jsonpointer
import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import (
    ApiError,
    ErrorItem,
    conflict,
    forbidden,
    invalid_attribute,
    invalid_parameter,
    not_found,
    precondition_failed,
    unprocessable,
)
from courier.core.http import etag_for, etag_matches
from courier.core.time import now_ms
from courier.domains.messaging import render, sms
from courier.domains.messaging import repository as repo
from courier.domains.messaging.access import (
    refuse_individual_token,
    require_actor,
    require_subscriber,
)
from courier.domains.messaging.schemas import (
    CHANNEL_TYPE,
    NOTIFY_LEVELS,
    PREFERENCES_MAX_BYTES,
    PROFILE_TYPE,
    ChannelCreate,
    ChannelPatchRequest,
    EventSettings,
    OptionalName,
    PatchOperation,
    PreferencesBody,
    ProfileRead,
    SmsBody,
    SubscribersBody,
    SubscriptionType,
)
from courier.domains.org_preferences.service import get_preference
from courier.domains.people.repository import require_individual, require_individuals
from courier.domains.texts.rules import MAX_SEGMENTS, count_segments
from courier.domains.texts.service import TextRefusedError
from courier.jsonapi.changes import Change, Changed, change
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes, resource_object, single_document
from courier.jsonapi.paging import Page
from courier.jsonapi.query import ListQuery
from courier.jsonapi.resource import CrudService
from courier.models.messaging import MessagingChannel

# --- creating channels: the one way ----------------------------------------------------------


@dataclass(frozen=True)
class NewChannel:
    """One channel to create, with its first subscribers (admins among them)."""

    subscribers: Sequence[uuid.UUID]
    admins: frozenset[uuid.UUID] = frozenset()
    name: str | None = None
    label: str | None = None
    floating: bool = False
    subscription_type: str = "none"
    event_settings: Mapping[str, Any] = field(default_factory=lambda: {"enabled": True})
    individual_group_id: uuid.UUID | None = None
    text_number_id: uuid.UUID | None = None
    with_sms: bool = False  # the SMS path's switch (set-sms); an SMS-opened channel starts on
    observation_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    created_by: uuid.UUID | None = None
    channel_id: uuid.UUID = field(default_factory=uuid.uuid4)


async def create_channels(
    session: AsyncSession, organization_id: uuid.UUID, channels: Sequence[NewChannel]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Write ``channels`` and their subscribers (their history starts unread) in two
    multi-row INSERTs, whatever their number: a request's one channel and a fan-out's
    hundreds alike. Returns channel id -> its subscribers. The caller has checked the people
    and records the changes. Never commits."""
    if not channels:
        return {}
    now = now_ms()
    members = {new.channel_id: list(dict.fromkeys(new.subscribers)) for new in channels}
    await repo.insert_channel_rows(
        session,
        organization_id,
        [
            {
                "id": new.channel_id,
                "organization_id": organization_id,  # a Core insert names it in every row
                "created_at": now,
                "last_modified_at": now,
                "name": new.name,
                "label": new.label,
                "floating": new.floating,
                "archived": False,
                "subscription_type": new.subscription_type,
                "event_settings": dict(new.event_settings),
                "individual_group_id": new.individual_group_id,
                "text_number_id": new.text_number_id,
                "observation_id": new.observation_id,
                "owner_id": new.owner_id,
                "created_by": new.created_by,
                "with_sms": new.with_sms,
                "sms_initial_message": None,
                "sms_initial_message_js": {},
                "last_seq": 0,
                "provider_count": 0,
                "subscriber_count": len(members[new.channel_id]),
                "last_message_id": None,
                "last_message_at": None,
            }
            for new in channels
        ],
    )
    rows = [
        subscriber_row(organization_id, new.channel_id, ident, ident in new.admins, now)
        for new in channels
        for ident in members[new.channel_id]
    ]
    if rows:
        await repo.insert_subscriber_rows(session, organization_id, rows, counted=True)
    return members


def subscriber_row(
    organization_id: uuid.UUID, channel_id: uuid.UUID, ident: uuid.UUID, admin: bool, now: Any
) -> dict[str, Any]:
    return {
        "organization_id": organization_id,
        "channel_id": channel_id,
        "individual_id": ident,
        "admin": admin,
        "pinned": False,
        "notify": "all",
        "preferences": {},
        "ack_seq": 0,
        "ack_message_id": None,
        "ack_provider_count": 0,
        "ack_time": None,
        "ack_user_time": None,
        "subscribed_at": now,
    }


async def add_subscribers(
    ctx: Context,
    channel: MessagingChannel,
    individual_ids: Sequence[uuid.UUID],
    admins: Iterable[uuid.UUID] = (),
) -> list[uuid.UUID]:
    """Subscribe those not yet subscribed (their history starts unread); returns them."""
    wanted = list(dict.fromkeys(individual_ids))
    if not wanted:
        return []
    org = ctx.organization_id
    existing = await repo.existing_subscribers(ctx.session, org, channel.id, wanted)
    added = [ident for ident in wanted if ident not in existing]
    if added:
        now = now_ms()
        admin_ids = set(admins)
        await repo.insert_subscriber_rows(
            ctx.session,
            org,
            [subscriber_row(org, channel.id, i, i in admin_ids, now) for i in added],
        )
    return added


# --- the resource ----------------------------------------------------------------------------

# List parameters that shape each channel's rendering, not which channels are listed.
CHANNEL_RENDER_ONLY = frozenset({"use-group-name"})


def channel_change(
    channel: MessagingChannel,
    verb: str,
    audience: Iterable[uuid.UUID],
    fields: Iterable[str] = (),
    data: dict[str, Any] | None = None,
) -> Change:
    """``messaging-channels.<verb>`` for ``audience`` (an audit row with the field names)."""
    return change(CHANNEL_TYPE, channel.id, verb, fields=fields, audience=audience, data=data)


def _check_organization(ctx: Context, attrs: ChannelCreate) -> None:
    """``organization-id`` (the seed's request name) or ``org-id`` (its response name): the
    caller's own organization, else 404."""
    for given in (attrs.organization_id, attrs.org_id):
        if given is not None and given != ctx.organization_id:
            raise not_found("organization")


class ChannelService(CrudService[MessagingChannel]):
    list_rows = True

    def query(self, ctx: Context) -> Select[Any]:
        """The organization's channels; with a caller (``individual-id`` or an individual
        token), only those the caller subscribes to."""
        return repo.visible_channels(ctx.organization_id, ctx.acting_individual_id)

    def list_query(self, ctx: Context) -> Select[Any]:
        """The list's page holds Core rows of the channel columns, not loaded objects."""
        return repo.visible_channel_rows(ctx.organization_id, ctx.acting_individual_id)

    async def list_page(self, ctx: Context, query: ListQuery) -> Page | None:
        """The caller's channels (or an API key's, the organization's) newest activity first,
        when nothing else narrows or orders them (the list every client shows): the page and
        its total in one statement built once (:func:`repository.channel_page`), carrying
        each channel's last message. Other filters and sorts take the generic path."""
        if set(query.values) - CHANNEL_RENDER_ONLY:
            return None
        if query.sort and query.sort != list(self.spec.default_sort):
            return None
        page = await repo.channel_page(
            ctx.session,
            ctx.organization_id,
            ctx.acting_individual_id,
            limit=query.limit,
            offset=query.offset,
        )
        return Page(list(page.rows), page.total)

    async def count(self, ctx: Context, stmt: Select[Any], values: Mapping[str, Any]) -> int:
        """The caller's channels, when nothing else narrows them, are its memberships: counted
        from its index range instead of joining every channel of the organization."""
        viewer = ctx.acting_individual_id
        if viewer is None or set(values) - CHANNEL_RENDER_ONLY:
            return await super().count(ctx, stmt, values)
        return await repo.count_memberships(ctx.session, ctx.organization_id, viewer)

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[MessagingChannel]:
        assert isinstance(attrs, ChannelCreate)
        refuse_individual_token(ctx)
        _check_organization(ctx, attrs)
        if attrs.individual_group_id is None and not attrs.individual_ids:
            raise invalid_attribute(
                "individual-ids", "or individual-group-id is required: a channel needs people"
            )
        org, session = ctx.organization_id, ctx.session
        members: list[uuid.UUID] = []
        leaders: set[uuid.UUID] = set()
        if attrs.individual_group_id is not None:
            pointer = "/data/attributes/individual-group-id"
            await repo.require_group(session, org, attrs.individual_group_id, pointer)
            members, leaders = await repo.group_members(session, org, attrs.individual_group_id)
        await require_individuals(
            ctx, attrs.individual_ids, "/data/attributes/individual-ids", count_more=True
        )
        if attrs.text_number_id is not None:
            pointer = "/data/attributes/text-number-id"
            await sms.require_text_number(session, org, attrs.text_number_id, pointer)
        creator = ctx.acting_individual_id
        if creator is not None:
            await require_individual(ctx, creator, parameter="individual-id")
        new = NewChannel(
            subscribers=[*members, *attrs.individual_ids, *([creator] if creator else [])],
            admins=frozenset(leaders | ({creator} if creator else set())),
            name=attrs.name,
            label=attrs.label,
            floating=attrs.floating,
            subscription_type=attrs.subscription_type,
            event_settings=attrs.event_settings.model_dump(),
            individual_group_id=attrs.individual_group_id,
            text_number_id=attrs.text_number_id,
            observation_id=attrs.observation_id,
            owner_id=creator,
            created_by=creator,
        )
        created = await create_channels(session, org, [new])
        channel = await repo.load_channel(session, org, new.channel_id, "/data")
        fields = sorted(attrs.model_fields_set)
        return Changed(channel, [channel_change(channel, "created", created[channel.id], fields)])

    async def present(self, ctx: Context, rows: Sequence[Any]) -> list[dict[str, Any]]:
        return await render.render_channels(ctx, rows)


channels = ChannelService()


# --- the PATCH: JSON-Patch operations (RFC 6902) ---------------------------------------------

_NULLABLE_UUID: TypeAdapter[uuid.UUID | None] = TypeAdapter(uuid.UUID | None)
_STRICT_BOOL: TypeAdapter[bool] = TypeAdapter(bool, config={"strict": True})
_EVENT_SETTINGS: TypeAdapter[EventSettings] = TypeAdapter(EventSettings)


@dataclass(frozen=True)
class Patchable:
    attribute: str  # the model's attribute
    adapter: TypeAdapter[Any]  # how a value is checked
    removable: bool  # "remove" clears it (null)


# The attributes a PATCH may change, by JSON pointer (without the slash); a path inside one
# (event-settings/enabled) changes it.
PATCHABLE: dict[str, Patchable] = {
    "name": Patchable("name", TypeAdapter(OptionalName), True),
    "label": Patchable("label", TypeAdapter(OptionalName), True),
    "floating": Patchable("floating", _STRICT_BOOL, False),
    "subscription-type": Patchable("subscription_type", TypeAdapter(SubscriptionType), False),
    "event-settings": Patchable("event_settings", _EVENT_SETTINGS, False),
    "individual-group-id": Patchable("individual_group_id", _NULLABLE_UUID, True),
    "text-number-id": Patchable("text_number_id", _NULLABLE_UUID, True),
    "observation-id": Patchable("observation_id", _NULLABLE_UUID, True),
    "owner-id": Patchable("owner_id", _NULLABLE_UUID, True),
}
NESTED: dict[str, TypeAdapter[Any]] = {"event-settings/enabled": _STRICT_BOOL}
PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")
ACTION_PATHS = {"archived": "use the archive/ and unarchive/ actions"}


def _path_of(pointer: str) -> str | None:
    """A JSON pointer (RFC 6901) without its leading slash, unescaped; None if malformed."""
    if not pointer.startswith("/"):
        return None
    return pointer[1:].replace("~1", "/").replace("~0", "~")


def _check_path(pointer: str, at: str, errors: list[ErrorItem]) -> str | None:
    path = _path_of(pointer)
    if path is not None and (path in PATCHABLE or path in NESTED):
        return path
    hint = ACTION_PATHS.get(path or "")
    allowed = ", /".join([*PATCHABLE, *NESTED])
    errors.append(
        ErrorItem(
            f"path {pointer!r} "
            + (
                f"cannot be patched: {hint}"
                if hint
                else f"is not a patchable attribute; use /{allowed}"
            ),
            "invalid-patch-path",
            pointer=at,
        )
    )
    return None


def _removable(path: str) -> bool:
    return path in PATCHABLE and PATCHABLE[path].removable


def _adapter(path: str) -> TypeAdapter[Any]:
    return NESTED[path] if path in NESTED else PATCHABLE[path].adapter


def _invalid_value(path: str, exc: ValidationError) -> str:
    detail = exc.errors()[0].get("msg", "is invalid").removeprefix("Value error, ")
    return f"value of /{path}: {detail}"


def check_operations(operations: Sequence[PatchOperation]) -> list[dict[str, Any]]:
    """Every operation well-formed, on an allowed path, with a valid value: else 400 with one
    error per invalid operation, pointing into the list. Returns them as RFC 6902 dicts."""
    errors: list[ErrorItem] = []
    checked: list[dict[str, Any]] = []
    for index, operation in enumerate(operations):
        at = f"/data/attributes/{index}"
        given = operation.model_fields_set
        if operation.op not in PATCH_OPS:
            errors.append(
                ErrorItem(
                    f"op {operation.op!r} is not supported; use " + ", ".join(PATCH_OPS),
                    "invalid-patch-op",
                    pointer=f"{at}/op",
                )
            )
            continue
        path = _check_path(operation.path, f"{at}/path", errors)
        source: str | None = None
        if operation.op in ("move", "copy"):
            if operation.from_ is None:
                errors.append(
                    ErrorItem(
                        f"{operation.op} needs from: the path to take the value from",
                        "missing-patch-from",
                        pointer=f"{at}/from",
                    )
                )
                continue
            source = _check_path(operation.from_, f"{at}/from", errors)
        elif "from_" in given:
            # RFC 6902 ignores it; here it is far likelier a client's mistake than intended.
            errors.append(
                ErrorItem(
                    f"from has no meaning in a {operation.op} operation",
                    "invalid-patch-member",
                    pointer=f"{at}/from",
                )
            )
            continue
        if path is None or (operation.op in ("move", "copy") and source is None):
            continue
        if operation.op == "remove" and not _removable(path):
            errors.append(
                ErrorItem(
                    f"{operation.path} cannot be removed; replace it instead",
                    "invalid-patch-op",
                    pointer=f"{at}/op",
                )
            )
            continue
        if operation.op == "move" and source is not None and not _removable(source):
            errors.append(
                ErrorItem(
                    f"{operation.from_} cannot be removed (moved away); copy it instead",
                    "invalid-patch-op",
                    pointer=f"{at}/from",
                )
            )
            continue
        item: dict[str, Any] = {"op": operation.op, "path": operation.path}
        if operation.op in ("add", "replace", "test"):
            if "value" not in given:
                errors.append(
                    ErrorItem(
                        f"{operation.op} needs a value",
                        "missing-patch-value",
                        pointer=f"{at}/value",
                    )
                )
                continue
            if operation.op != "test":
                try:
                    _adapter(path).validate_python(operation.value)
                except ValidationError as exc:
                    errors.append(
                        ErrorItem(
                            _invalid_value(path, exc), "invalid-patch-value", pointer=f"{at}/value"
                        )
                    )
                    continue
            item["value"] = operation.value
        if source is not None:
            item["from"] = operation.from_
        checked.append(item)
    if errors:
        raise ApiError(400, errors, {}, True)
    return checked


def patch_document(channel: MessagingChannel) -> dict[str, Any]:
    """The patchable attributes as JSON, the document the operations apply to."""

    def text(value: uuid.UUID | None) -> str | None:
        return None if value is None else str(value)

    return {
        "name": channel.name,
        "label": channel.label,
        "floating": channel.floating,
        "subscription-type": channel.subscription_type,
        "event-settings": {"enabled": True, **(channel.event_settings or {})},
        "individual-group-id": text(channel.individual_group_id),
        "text-number-id": text(channel.text_number_id),
        "observation-id": text(channel.observation_id),
        "owner-id": text(channel.owner_id),
    }


def apply_operations(
    document: dict[str, Any], operations: Sequence[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, int]]:
    """Apply the operations in order with RFC 6902 semantics (``jsonpatch``): a failed
    ``test`` or an operation that does not fit the document is 409, pointing at it, and
    nothing is applied. Returns the new document and, per attribute, the last operation that
    wrote it (where a bad value would be pointed at)."""
    current = document
    writers: dict[str, int] = {}
    for index, item in enumerate(operations):
        at = f"/data/attributes/{index}"
        try:
            current = jsonpatch.JsonPatch([item]).apply(current)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise ApiError(
                409, [ErrorItem(f"test failed: {exc}", "patch-test-failed", pointer=at)]
            ) from exc
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise ApiError(
                409, [ErrorItem(f"cannot apply: {exc}", "patch-conflict", pointer=at)]
            ) from exc
        if item["op"] != "test":
            for pointer in (item["path"], item.get("from")):
                if pointer is not None:
                    writers[(_path_of(pointer) or "").split("/")[0]] = index
    return current, writers


async def patch_channel(
    ctx: Context, channel: MessagingChannel, operations: Sequence[PatchOperation]
) -> Changed[MessagingChannel]:
    """Apply JSON-Patch operations; the change names the attributes that changed.

    A new ``individual-group-id`` subscribes the group's members who are not yet subscribed;
    nobody is unsubscribed by it (that takes ``unsubscribe/``).
    """
    refuse_individual_token(ctx)
    checked = check_operations(operations)
    before = patch_document(channel)
    after, writers = apply_operations(before, checked)
    values: dict[str, Any] = {}
    errors: list[ErrorItem] = []
    for path, spec in PATCHABLE.items():
        if path in after and after[path] == before[path]:
            continue
        index = writers.get(path, 0)
        if path not in after:  # removed (or moved away): cleared
            values[path] = None
            continue
        try:
            values[path] = spec.adapter.validate_python(after[path])
        except ValidationError as exc:
            # A value given in the operation is pointed at; a copied or moved one, the operation.
            member = "/value" if "value" in checked[index] else ""
            errors.append(
                ErrorItem(
                    _invalid_value(path, exc),
                    "invalid-patch-value",
                    pointer=f"/data/attributes/{index}{member}",
                )
            )
    if errors:
        raise ApiError(400, errors, {}, True)
    org, session = ctx.organization_id, ctx.session
    changed: list[str] = []
    for path, value in values.items():
        pointer = f"/data/attributes/{writers.get(path, 0)}/value"
        attribute = PATCHABLE[path].attribute
        if attribute == "individual_group_id" and value is not None:
            await repo.require_group(session, org, value, pointer)
        if attribute == "owner_id" and value is not None:
            await require_individual(ctx, value, pointer=pointer)
        if attribute == "text_number_id" and value is not None:
            await sms.require_text_number(session, org, value, pointer)
        if attribute == "event_settings":
            value = value.model_dump()
        if getattr(channel, attribute) != value:
            setattr(channel, attribute, value)
            changed.append(path)
        if attribute == "individual_group_id" and value is not None:
            members, leaders = await repo.group_members(session, org, value)
            if await add_subscribers(ctx, channel, members, leaders):
                changed.append("subscribers")
    if not changed:
        return Changed(channel)
    channel.last_modified_at = now_ms()
    await ctx.session.flush()
    audience = await repo.subscriber_ids(session, org, channel.id)
    return Changed(channel, [channel_change(channel, "updated", audience, set(changed))])


async def do_patch(
    ctx: Context, channel: MessagingChannel, body: ChannelPatchRequest
) -> Changed[MessagingChannel]:
    """RFC 6902 operations (``add``, ``remove``, ``replace``, ``move``, ``copy``, ``test``)
    on ``/name``, ``/label``, ``/floating``, ``/subscription-type``, ``/event-settings`` (or
    ``/event-settings/enabled``), ``/individual-group-id`` (its members are subscribed),
    ``/text-number-id``, ``/observation-id``, ``/owner-id``. A malformed operation: 400
    pointing at it (``/data/attributes/<index>/...``); a failed ``test``: 409; either way
    nothing is applied. ``If-Match``: the channel's current ETag, else 412."""
    if body.data.type != CHANNEL_TYPE:
        raise conflict(f"data.type must be {CHANNEL_TYPE}", "type-mismatch", pointer="/data/type")
    if body.data.id != str(channel.id):
        raise conflict("data.id must be the id in the path", "id-mismatch", pointer="/data/id")
    if_match = ctx.request.headers.get("if-match")
    if if_match is not None:
        shown = await channels.present(ctx, [channel])
        current = orjson.dumps(single_document(resource_object(CHANNEL_TYPE, channel.id, shown[0])))
        if not etag_matches(if_match, etag_for(current)):
            raise precondition_failed()
    return await patch_channel(ctx, channel, body.data.attributes)


# --- actions ---------------------------------------------------------------------------------


async def set_archived(
    ctx: Context, channel: MessagingChannel, archived: bool
) -> Changed[MessagingChannel]:
    refuse_individual_token(ctx)
    if channel.archived == archived:
        return Changed(channel)  # idempotent: nothing changes, nothing is announced
    channel.archived = archived
    channel.last_modified_at = now_ms()
    audience = await repo.subscriber_ids(ctx.session, ctx.organization_id, channel.id)
    verb = "archived" if archived else "unarchived"
    return Changed(channel, [channel_change(channel, verb, audience)])


async def do_archive(
    ctx: Context, channel: MessagingChannel, _body: object
) -> Changed[MessagingChannel]:
    """Idempotent: archiving an archived channel changes nothing."""
    return await set_archived(ctx, channel, True)


async def do_unarchive(
    ctx: Context, channel: MessagingChannel, _body: object
) -> Changed[MessagingChannel]:
    """Idempotent: unarchiving a live channel changes nothing."""
    return await set_archived(ctx, channel, False)


async def do_subscribe(
    ctx: Context, channel: MessagingChannel, body: SubscribersBody
) -> Changed[MessagingChannel]:
    """Individuals already subscribed stay as they are; newcomers find the history unread.
    An id that is no individual of the organization: 404 naming ``individual-ids``."""
    refuse_individual_token(ctx)
    ids = body.individual_ids
    await require_individuals(ctx, ids, "/individual-ids", count_more=True)
    added = await add_subscribers(ctx, channel, ids)
    if not added:
        return Changed(channel)
    channel.last_modified_at = now_ms()
    await ctx.session.flush()
    audience = await repo.subscriber_ids(ctx.session, ctx.organization_id, channel.id)
    data = {"individual-ids": [str(i) for i in added]}
    return Changed(
        channel, [channel_change(channel, "subscribed", audience, ["subscribers"], data)]
    )


async def do_unsubscribe(
    ctx: Context, channel: MessagingChannel, body: SubscribersBody
) -> Changed[MessagingChannel]:
    """Those not subscribed are ignored. The removed lose access to the channel at once."""
    refuse_individual_token(ctx)
    ids = body.individual_ids
    org = ctx.organization_id
    await require_individuals(ctx, ids, "/individual-ids", count_more=True)
    before = await repo.subscriber_ids(ctx.session, org, channel.id)
    members = set(before)
    removed = [ident for ident in ids if ident in members]
    if not removed:
        return Changed(channel)
    await repo.delete_subscribers(ctx.session, org, channel.id, removed)
    channel.last_modified_at = now_ms()
    # Those removed hear of it too: their apps drop the channel.
    data = {"individual-ids": [str(i) for i in removed]}
    return Changed(
        channel, [channel_change(channel, "unsubscribed", before, ["subscribers"], data)]
    )


async def do_set_preferences(
    ctx: Context, channel: MessagingChannel, body: PreferencesBody
) -> Changed[MessagingChannel]:
    """An individual token sets its own preferences; a key names ``individual-id``, who must
    subscribe to the channel (422 otherwise). The channel is returned as that individual
    sees it. ``notify`` and ``pinned`` are typed settings of the subscriber; any other name
    keeps its JSON value (null deletes it) in the subscriber's preferences, 16 KiB at most."""
    individual_id = require_actor(ctx, body.individual_id, "/individual-id")
    ctx.acting_individual_id = individual_id
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
    if not changed:
        return Changed(channel)
    data = {"individual-id": str(individual_id)}
    return Changed(
        channel,
        [channel_change(channel, "preferences-changed", [individual_id], set(changed), data)],
    )


async def do_set_sms(
    ctx: Context, channel: MessagingChannel, body: SmsBody
) -> Changed[MessagingChannel]:
    """Turn the channel's SMS path on or off (docs/SMS.md, "The channel bridge").

    ``active: true`` needs what ``can-enable-sms`` says (422 naming what is missing: a text
    number, an active one, one participant, their phone, their accepted SMS consent). Turning
    it on texts the initial message to the participant: ``initial-message-js`` for their
    language, else ``initial-message``, else the channel's earlier ones, else the
    organization's ``initial-sms-message`` (a text is accepted now and sent by a job; a
    participant who opted out: 403). From then on providers' posts are texted to them (a
    neutral line and a link instead, with ``phi-safe``) and their replies are posted here.
    ``active: false`` stops both; the messages given are kept for the next time."""
    refuse_individual_token(ctx)
    org, session = ctx.organization_id, ctx.session
    state: sms.SmsState | None = None
    if body.active:
        if channel.text_number_id is None:
            raise unprocessable(
                "the channel has no text number (text-number-id) to send texts from",
                "no-text-number",
            )
        state = await sms.channel_state(session, org, channel)
        refusal = state.refusal
        if refusal is not None:
            raise unprocessable(refusal[1], refusal[0])
    turning_on = body.active and not channel.with_sms
    given = body.model_fields_set
    message: str | None = None
    if turning_on:
        assert state is not None and state.participant is not None
        default = await get_preference(session, org, "initial-sms-message")
        sources = [
            (body.initial_message_js, body.initial_message),
            (channel.sms_initial_message_js, channel.sms_initial_message),
        ]
        message = sms.initial_text(sources, state.participant.locale, default)
        counted = count_segments(message)
        if counted.segments > MAX_SEGMENTS:
            raise ApiError(
                400,
                [
                    ErrorItem(
                        f"the initial message is {counted.segments} SMS segments "
                        f"({counted.encoding}); at most {MAX_SEGMENTS} are sent",
                        "too-many-segments",
                        pointer="/initial-message",
                    )
                ],
                {},
                True,
            )
    fields: list[str] = []
    if channel.with_sms != body.active:
        channel.with_sms = body.active
        fields.append("with-sms")
    if "initial_message" in given and channel.sms_initial_message != body.initial_message:
        channel.sms_initial_message = body.initial_message
        fields.append("sms-initial-message")
    if "initial_message_js" in given:
        messages = dict(body.initial_message_js or {})
        if messages != channel.sms_initial_message_js:
            channel.sms_initial_message_js = messages
            fields.append("sms-initial-message-js")
    if "phi_safe" in given and channel.sms_phi_safe != body.phi_safe:
        channel.sms_phi_safe = body.phi_safe
        fields.append("sms-phi-safe")
    data: dict[str, Any] | None = None
    if turning_on:
        assert state is not None and message is not None
        try:
            text = await sms.queue_channel_text(session, ctx.settings, channel, state, message)
        except TextRefusedError as exc:
            raise forbidden(str(exc)) from exc
        data = {"text-id": str(text.id)}
    if not fields:
        return Changed(channel)
    channel.last_modified_at = now_ms()
    audience = await repo.subscriber_ids(session, org, channel.id)
    return Changed(channel, [channel_change(channel, "updated", audience, fields, data)])


async def do_get_profile(ctx: Context, channel: MessagingChannel, _body: object) -> dict[str, Any]:
    """Both the viewer (``individual-id``, or the token's own) and the profile's individual
    (``profile-individual-id``) must subscribe to the channel (else 404)."""
    viewer = ctx.acting_individual_id
    if viewer is None:
        raise invalid_parameter("individual-id", "is required with an API key: the viewer")
    profile_id: uuid.UUID = ctx.query["profile-individual-id"]
    photo = await profile_photo(ctx, channel, viewer, profile_id)
    attributes = ProfileRead(photo=photo).model_dump(mode="json", by_alias=True)
    return single_document(resource_object(PROFILE_TYPE, profile_id, attributes))


async def profile_photo(
    ctx: Context, channel: MessagingChannel, viewer: uuid.UUID, profile_id: uuid.UUID
) -> str | None:
    """The photo of ``profile_id`` as ``viewer`` sees it: both must share the channel."""
    await require_subscriber(ctx, channel.id, viewer, "messaging channel")
    found = await repo.find_subscriber(ctx.session, ctx.organization_id, channel.id, profile_id)
    if found is None:
        raise not_found("individual profile")
    individual = await require_individual(ctx, profile_id, parameter="profile-individual-id")
    return individual.photo


def participant_filter(stmt: Select[Any], value: uuid.UUID, ctx: Context) -> Select[Any]:
    return stmt.where(MessagingChannel.id.in_(repo.subscribed_channels(ctx.organization_id, value)))
