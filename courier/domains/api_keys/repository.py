"""API keys: the master key manages every organization's keys; an admin key its own."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select

from courier.core.auth import PrincipalKind
from courier.core.tenancy import scoped, unscoped
from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.api_key import ApiKey


class ApiKeyRepository(Repository[ApiKey]):
    def __init__(self) -> None:
        super().__init__(ApiKey, what="API key")

    def readable(self, ctx: Context) -> Select[Any]:
        if ctx.principal.kind is PrincipalKind.MASTER:
            return unscoped(select(ApiKey), "the master key manages every organization's keys")
        return super().readable(ctx)

    def live_keys_of(self, organization_id: uuid.UUID, *, but: uuid.UUID | None) -> Select[Any]:
        """The organization's unrevoked keys, except ``but`` (the caller's own)."""
        stmt = scoped(select(ApiKey), ApiKey, organization_id).where(ApiKey.revoked_at.is_(None))
        if but is not None:
            stmt = stmt.where(ApiKey.id != but)
        return stmt

    async def live_keys(
        self, ctx: Context, organization_id: uuid.UUID, *, but: uuid.UUID | None
    ) -> list[ApiKey]:
        return await self.all(ctx, self.live_keys_of(organization_id, but=but))


api_keys_repository = ApiKeyRepository()
