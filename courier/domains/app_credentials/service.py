"""App credentials: an app's key for one push platform. ``data`` is checked with the push
adapters' own readers (so what is accepted is what sends), sealed at rest
(``courier.core.sealed``) and never returned: a read shows only its public parts. A web
credential without a VAPID private key gets a new P-256 pair. Archived credentials are kept
but not used; at most one live set per app and platform (409).

The push sending path reads them with :func:`credentials_for`."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.errors import conflict, invalid_attribute, not_found
from courier.core.sealed import seal, unseal
from courier.core.time import format_timestamp, now_ms
from courier.domains.app_credentials import repository as repo
from courier.domains.app_credentials.schemas import AppCredentialCreate, AppCredentialUpdate
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.push_device import AppCredential
from courier.providers.common import Permanent
from courier.providers.push.base import Platform, PushCredentials

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

MAX_DATA_BYTES = 64 * 1024


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_key(key: ec.EllipticCurvePrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return _b64url(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def _web(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    # Imported here: a process that never stores a Web Push key does not load it (~7 MB).
    from cryptography.hazmat.primitives.asymmetric import ec

    private = data.get("private-key")
    if private is None:
        key = ec.generate_private_key(ec.SECP256R1())
        private = _b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    elif not isinstance(private, str):
        raise invalid_attribute("data", "private-key must be the VAPID key: base64url or PEM")
    else:
        from courier.providers.push.webpush import private_key_of  # its library is heavy

        try:
            key = private_key_of(private.strip())
        except (ValueError, TypeError, binascii.Error) as exc:
            raise invalid_attribute(
                "data", "private-key is not a P-256 VAPID key (base64url of 32 bytes, or PEM)"
            ) from exc
    public = _public_key(key)
    given = data.get("public-key")
    if given is not None:
        normal = str(given).strip().rstrip("=").replace("+", "-").replace("/", "_")
        if normal != public:
            raise invalid_attribute("data", "public-key is not the private-key's public key")
    subject = data.get("subject")
    if subject is not None and (
        not isinstance(subject, str) or not subject.startswith(("mailto:", "https://"))
    ):
        raise invalid_attribute("data", "subject must be a mailto: or https: contact")
    sealed = {**data, "private-key": private, "public-key": public}
    shown: dict[str, Any] = {"public-key": public}
    if subject is not None:
        shown["subject"] = subject
    return sealed, shown


def check_data(platform: str, data: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data`` as it will be sealed, and the parts that may be shown. 400 when the adapter
    of the platform could not use it."""
    given = dict(data or {})
    if len(orjson.dumps(given)) > MAX_DATA_BYTES:
        raise invalid_attribute("data", f"is at most {MAX_DATA_BYTES} bytes of JSON")
    if platform == "web":
        return _web(given)
    # The vendors' modules are imported here, not at start: their client libraries are heavy.
    from courier.providers.push.apns import ApnsKey
    from courier.providers.push.fcm import service_account_info

    try:
        if platform == "apn":
            key = ApnsKey.from_credentials(PushCredentials("apn", given))
            return given, {"key-id": key.key_id, "team-id": key.team_id, "topic": key.topic}
        info, project = service_account_info(PushCredentials("fcm", given))
    except Permanent as exc:
        raise invalid_attribute("data", f"cannot be used: {exc.message}") from exc
    return given, {"project-id": project, "client-email": info["client_email"]}


class AppCredentialService(CrudService[AppCredential]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[AppCredential]:
        assert isinstance(attrs, AppCredentialCreate)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        sealed, shown = check_data(attrs.type, attrs.data)
        await self._check_live(ctx, attrs.type, attrs.app_name or "", uuid.uuid4())
        row = AppCredential(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            type=attrs.type,
            app_name=attrs.app_name or "",
            display_name=attrs.display_name,
            store_id=attrs.store_id,
            test_mode=attrs.test_mode,
            archived=False,
            data_sealed=seal(ctx.settings, orjson.dumps(sealed).decode()),
            public_data=shown,
        )
        await self._flush(ctx, row)
        return self.changed(ctx, "created", row, sorted(attrs.model_fields_set))

    async def update(
        self, ctx: Context, obj: AppCredential, attrs: WriteAttributes
    ) -> Changed[AppCredential]:
        assert isinstance(attrs, AppCredentialUpdate)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        given = attrs.given()
        app_name = (attrs.app_name or "") if "app_name" in given else obj.app_name
        archived = attrs.archived if attrs.archived is not None else obj.archived
        if not archived:
            await self._check_live(ctx, obj.type, app_name, obj.id)
        if "app_name" in given:
            obj.app_name = attrs.app_name or ""
        for name in ("display_name", "store_id"):
            if name in given:
                setattr(obj, name, given[name])
        if attrs.test_mode is not None:
            obj.test_mode = attrs.test_mode
        if attrs.archived is not None:
            obj.archived = attrs.archived
        if "data" in given:
            sealed, shown = check_data(obj.type, attrs.data)
            obj.data_sealed = seal(ctx.settings, orjson.dumps(sealed).decode())
            obj.public_data = shown
        obj.last_modified_at = now_ms()
        verb = "archived" if attrs.archived is True else "updated"
        return self.changed(ctx, verb, obj, sorted(attrs.model_fields_set))

    async def _check_live(
        self, ctx: Context, platform: str, app_name: str, ident: uuid.UUID
    ) -> None:
        if await repo.other_live(ctx.session, ctx.organization_id, platform, app_name, ident):
            raise self._duplicate(platform)

    @staticmethod
    def _duplicate(platform: str) -> Exception:
        return conflict(
            f"the app already has live {platform} credentials: archive them first",
            "app-credentials-exist",
        )

    @classmethod
    async def _flush(cls, ctx: Context, row: AppCredential) -> None:
        try:
            async with ctx.session.begin_nested():
                ctx.session.add(row)
                await ctx.session.flush()
        except IntegrityError as exc:  # created at the same moment by another request
            raise cls._duplicate(row.type) from exc

    async def present(self, ctx: Context, rows: Sequence[AppCredential]) -> list[dict[str, Any]]:
        return [
            {
                "app-name": row.app_name or None,
                "archived": row.archived,
                "created-at": format_timestamp(row.created_at),
                "data": dict(row.public_data or {}),
                "display-name": row.display_name,
                "last-modified-at": format_timestamp(row.last_modified_at),
                "organization-id": str(row.organization_id),
                "store-id": row.store_id,
                "test-mode": row.test_mode,
                "type": row.type,
            }
            for row in rows
        ]


service = AppCredentialService()


async def credentials_for(
    session: AsyncSession,
    settings: Settings,
    organization_id: uuid.UUID,
    app_name: str,
    platform: Platform,
) -> PushCredentials | None:
    """The live credentials of an app for a platform, decrypted, for a send (jobs only)."""
    row = await repo.live(session, organization_id, app_name, platform)
    if row is None:
        return None
    data: Mapping[str, Any] = orjson.loads(unseal(settings, row.data_sealed))
    return PushCredentials(platform=platform, data=data, test_mode=row.test_mode)
