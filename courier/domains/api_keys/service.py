"""API keys: created by the master key or an organization admin, shown once, revocable."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from courier.core.auth import Principal, PrincipalKind, Role, hash_secret, new_key_secret
from courier.core.errors import invalid_attribute, invalid_parameter, not_found
from courier.core.time import utcnow
from courier.domains.api_keys.repository import api_keys_repository
from courier.domains.organizations.repository import organization_exists
from courier.jsonapi.changes import Changed, record_changes
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.query import parse_uuid
from courier.jsonapi.resource import CrudService
from courier.models.api_key import ApiKey

SECRET_PREFIX_LENGTH = 10


class ApiKeyService(CrudService[ApiKey]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[ApiKey]:
        values = attrs.model_dump()
        organization_id = await self._target_organization(ctx, values.pop("organization_id"))
        key, secret = await issue_key(
            ctx.session,
            ctx.principal,
            organization_id=organization_id,
            name=values["name"],
            role=Role(values["role"]),
            expires_at=values["expires_at"],
        )
        # The secret is shown in this response only; it is never stored.
        return Changed(
            key,
            [self.change(ctx, "created", key, attrs.model_fields_set)],
            revealed={"secret": secret},
        )

    async def _target_organization(self, ctx: Context, requested: uuid.UUID | None) -> uuid.UUID:
        if ctx.principal.kind is PrincipalKind.MASTER:
            if requested is None:
                raise invalid_attribute("organization-id", "is required with the master key")
            if not await organization_exists(ctx.session, requested):
                raise not_found("organization")
            return requested
        own = ctx.organization_id
        if requested is not None and requested != own:
            raise not_found("organization")
        return own

    async def _named_organization(self, ctx: Context) -> uuid.UUID:
        raw = ctx.request.query_params.get("organization-id")
        if not raw:
            raise invalid_parameter("organization-id", "is required with the master key")
        try:
            requested = parse_uuid(raw)
        except ValueError as exc:
            raise invalid_parameter("organization-id", str(exc)) from exc
        return await self._target_organization(ctx, requested)

    async def delete(self, ctx: Context, obj: ApiKey) -> None:
        """Revoking keeps the row (and its audit trail); the key stops working at once."""
        if obj.revoked_at is None:
            obj.revoked_at = utcnow()

    async def delete_all(self, ctx: Context) -> int:
        """Revoke every key of the organization but the caller's own (a leak response)."""
        if ctx.principal.kind is PrincipalKind.MASTER:
            # The master key sees every tenant's keys: it must name the one organization, or a
            # single request would lock every organization out.
            organization_id = await self._named_organization(ctx)
        else:
            organization_id = ctx.organization_id
        rows = await api_keys_repository.live_keys(ctx, organization_id, but=ctx.principal.key_id)
        for row in rows:
            await self.delete(ctx, row)
        record_changes(ctx, [self.change(ctx, "deleted", row) for row in rows])
        return len(rows)

    async def present(self, ctx: Context, rows: Sequence[ApiKey]) -> list[dict[str, Any]]:
        out = await super().present(ctx, rows)
        for attributes in out:
            attributes.pop("secret", None)  # shown once, at creation (Changed.revealed)
        return out


async def issue_key(
    session: Any,
    principal: Principal,
    *,
    organization_id: uuid.UUID,
    name: str,
    role: Role,
    expires_at: Any = None,
) -> tuple[ApiKey, str]:
    """Create a key; the plain secret is returned here and never stored."""
    secret = new_key_secret()
    key = ApiKey(
        id=uuid.uuid4(),
        organization_id=organization_id,
        name=name,
        role=role.value,
        secret_hash=hash_secret(secret),
        secret_prefix=secret[:SECRET_PREFIX_LENGTH],
        expires_at=expires_at,
        created_by=principal.actor_id,
    )
    session.add(key)
    return key, secret
