"""Push devices: one row per token per app. Registering a token again updates its row; when
another individual registers it (the phone changed hands, or someone else signed in to the
app) the device moves to them and the previous owner no longer has it. A token the push
service reports gone is deactivated (:func:`deactivate_gone_device`, called by the push
sending path), and registering it again reactivates it.

``get-logs`` reads the provider layer's delivery records (channel ``push``, recipient the
device's id); what each push showed comes from the domain that sent it, through
:func:`push_content` (e.g. user notifications), so the logs fill without changes here."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.errors import forbidden, invalid_attribute, not_found
from courier.core.time import format_timestamp, now_ms
from courier.domains.people.repository import require_individual
from courier.domains.user_devices.repository import device_for_update, devices, pushes_to
from courier.domains.user_devices.schemas import UserDeviceCreate
from courier.jsonapi.changes import SYSTEM, Changed, change, write_changes
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.delivery import Delivery
from courier.models.push_device import UserDevice
from courier.providers.push.base import PushDevice

TYPE = "user-devices"
SHORT_TOKEN = 255  # APNs and FCM tokens (the seed's bound); Web Push endpoints are URLs

# --- what a push showed, from the domain that sent it ----------------------------------------

# async (session, organization_id, [resource ids]) -> {resource id: PushMessage.shown()}
ContentLoader = Callable[
    [AsyncSession, uuid.UUID, Sequence[uuid.UUID]], Awaitable[Mapping[uuid.UUID, Mapping[str, Any]]]
]
CONTENT: dict[str, ContentLoader] = {}


def push_content(resource_type: str) -> Callable[[ContentLoader], ContentLoader]:
    """Declare how the pushes of ``resource_type`` (the delivery's resource) are described
    in a device's logs: title, body, badge, category and data, as ``PushMessage.shown()``."""

    def decorate(loader: ContentLoader) -> ContentLoader:
        CONTENT[resource_type] = loader
        return loader

    return decorate


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_subscription(ctx: Context, attrs: UserDeviceCreate) -> dict[str, str]:
    """A web device's token is its subscription's endpoint (https) and its keys the
    browser's P-256 key and 16-byte auth secret; other devices carry no keys."""
    if attrs.type != "web":
        if attrs.keys is not None:
            raise invalid_attribute("keys", "are only for web devices")
        if len(attrs.token) > SHORT_TOKEN:
            raise invalid_attribute("token", f"is at most {SHORT_TOKEN} characters")
        return {}
    parts = urlsplit(attrs.token)
    schemes = ("https", "http") if ctx.settings.webpush_allow_private else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise invalid_attribute(
            "token", "of a web device is its subscription's endpoint: an https URL"
        )
    if attrs.keys is None:
        raise invalid_attribute("keys", "p256dh and auth are required for a web device")
    from cryptography.hazmat.primitives.asymmetric import ec  # ~7 MB: web devices only

    try:
        point = _b64url(attrs.keys.p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        if len(point) != 65:
            raise ValueError("not an uncompressed point")
    except (ValueError, binascii.Error) as exc:
        raise invalid_attribute(
            "keys", "p256dh must be the subscription's P-256 public key (base64url)"
        ) from exc
    try:
        auth = _b64url(attrs.keys.auth)
    except (ValueError, binascii.Error) as exc:
        raise invalid_attribute("keys", "auth must be 16 bytes, base64url") from exc
    if len(auth) != 16:
        raise invalid_attribute("keys", "auth must be 16 bytes, base64url")
    return {"p256dh": attrs.keys.p256dh, "auth": attrs.keys.auth}


class UserDeviceService(CrudService[UserDevice]):
    def individuals_of(self, obj: UserDevice) -> Iterable[uuid.UUID]:
        return (obj.individual_id,)

    async def _owner(self, ctx: Context, given: uuid.UUID | None) -> uuid.UUID:
        if ctx.principal.is_individual:
            if given is not None and given != ctx.principal.individual_id:
                raise forbidden("an individual token registers its own devices only")
            assert ctx.principal.individual_id is not None
            return ctx.principal.individual_id
        if given is None:
            raise invalid_attribute("individual-id", "is required: whose device this is")
        await require_individual(ctx, given, pointer="/data/attributes/individual-id")
        return given

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[UserDevice]:
        """Register a token; the same token in the same app again updates (or moves) it."""
        assert isinstance(attrs, UserDeviceCreate)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        owner = await self._owner(ctx, attrs.individual_id)
        keys = _check_subscription(ctx, attrs)
        app_name = attrs.app_name or ""
        fields = sorted(attrs.model_fields_set)
        existing = await devices.by_token(ctx, app_name, attrs.token)
        if existing is None:
            device = UserDevice(
                id=uuid.uuid4(),
                organization_id=ctx.organization_id,
                individual_id=owner,
                type=attrs.type,
                token=attrs.token,
                app_name=app_name,
                keys=keys,
                active=True,
            )
            self._apply(device, attrs)
            try:
                async with ctx.session.begin_nested():
                    ctx.session.add(device)
                    await ctx.session.flush()
                return self.changed(ctx, "created", device, fields)
            except IntegrityError:  # registered at the same moment by another request
                existing = await devices.by_token(ctx, app_name, attrs.token)
                if existing is None:
                    raise
        previous = existing.individual_id
        existing.individual_id = owner
        existing.type = attrs.type
        existing.keys = keys
        existing.active = True
        existing.deactivated_at = None
        existing.deactivated_code = None
        existing.last_modified_at = now_ms()
        # A device that changes hands starts afresh with what the new owner's app sent.
        self._apply(existing, attrs, given_only=previous == owner)
        verb = "moved" if previous != owner else "updated"
        # The previous owner's stream hears that the device left them.
        return Changed(
            existing,
            [
                change(
                    TYPE,
                    existing.id,
                    verb,
                    fields=fields,
                    audience=(previous, owner),
                    organization_id=ctx.organization_id,
                )
            ],
        )

    @staticmethod
    def _apply(device: UserDevice, attrs: UserDeviceCreate, *, given_only: bool = False) -> None:
        """Copy the attributes; ``given_only``: those the client sent (the same owner
        registering again keeps, e.g., the allow-notification it chose before)."""
        sent = attrs.model_fields_set
        for name in (
            "allow_notification",
            "app_version",
            "model",
            "os_version",
            "sandbox",
            "topic",
        ):
            if not given_only or name in sent:
                setattr(device, name, getattr(attrs, name))

    async def present(self, ctx: Context, rows: Sequence[UserDevice]) -> list[dict[str, Any]]:
        return [
            {
                "allow-notification": row.allow_notification,
                "app-name": row.app_name or None,
                "app-version": row.app_version,
                "created-at": format_timestamp(row.created_at),
                "individual-id": str(row.individual_id),
                "last-modified-at": format_timestamp(row.last_modified_at),
                "model": row.model,
                "os-version": row.os_version,
                "sandbox": row.sandbox,
                "token": row.token,
                "topic": row.topic,
                "type": row.type,
                "active": row.active,
                "deactivated-at": (
                    format_timestamp(row.deactivated_at) if row.deactivated_at else None
                ),
            }
            for row in rows
        ]


service = UserDeviceService()


async def do_get_logs(ctx: Context, device: UserDevice, body: None) -> Select[Any]:
    """Every push sent to this device, newest first: what it showed (title, body, badge,
    category, data) and its outcome (state, the service's error code, when it was sent).
    An individual token reads its own devices' logs."""
    return pushes_to(ctx, device)


async def present_logs(ctx: Context, rows: Sequence[Delivery]) -> list[dict[str, Any]]:
    by_type: dict[str, list[uuid.UUID]] = {}
    for row in rows:
        by_type.setdefault(row.resource_type, []).append(row.resource_id)
    shown: dict[tuple[str, uuid.UUID], Mapping[str, Any]] = {}
    for resource_type, ids in by_type.items():
        loader = CONTENT.get(resource_type)
        if loader is None:
            continue
        found = await loader(ctx.session, ctx.organization_id, ids)
        for ident, content in found.items():
            shown[(resource_type, ident)] = content
    out = []
    for row in rows:
        content = shown.get((row.resource_type, row.resource_id), {})
        badge = content.get("badge")
        out.append(
            {
                "badge-count": badge if isinstance(badge, int) else None,
                "body": content.get("body"),
                "category": content.get("category"),
                "created-at": format_timestamp(row.created_at),
                "data": dict(content.get("data") or {}),
                "title": content.get("title"),
                "state": row.state,
                "error-code": row.error_code,
                "resource-type": row.resource_type,
                "resource-id": str(row.resource_id),
                "sent-at": format_timestamp(row.sent_at) if row.sent_at else None,
            }
        )
    return out


# --- for the push sending path ----------------------------------------------------------------


def push_device(device: UserDevice) -> PushDevice:
    """What an adapter needs of the device."""
    return PushDevice(platform=device.type, token=device.token, keys=dict(device.keys or {}))  # type: ignore[arg-type]


async def deactivate_gone_device(
    session: AsyncSession, organization_id: uuid.UUID, device_id: uuid.UUID, *, code: str | None
) -> bool:
    """The push service said the device's token is gone for good (``RecipientGone``: APNs
    410/BadDeviceToken, FCM UNREGISTERED, Web Push 404/410): stop sending to it. Called in
    the transaction that records the failed delivery. True when it was active."""
    device = await device_for_update(session, organization_id, device_id)
    if device is None or not device.active:
        return False
    device.active = False
    device.deactivated_at = now_ms()
    device.deactivated_code = (code or "gone")[:64]
    device.last_modified_at = device.deactivated_at
    write_changes(
        session,
        [
            change(
                TYPE,
                device.id,
                "deactivated",
                fields=["active", "deactivated-at"],
                audience=(device.individual_id,),
                organization_id=organization_id,
                data={"code": device.deactivated_code},
            )
        ],
        actor=SYSTEM,
        request_id=None,
    )
    return True
