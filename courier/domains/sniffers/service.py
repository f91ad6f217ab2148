"""Sniffers: who to record, until when; and reading what was recorded."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Select

from courier.core.db import after_commit
from courier.core.errors import ApiError, ErrorItem, invalid_attribute
from courier.core.time import utcnow
from courier.domains.api_keys.repository import api_keys_repository
from courier.domains.people.repository import users_repository
from courier.domains.sniffers.repository import logs_of
from courier.domains.sniffers.schemas import MAX_DAYS, SnifferLogRead, SnifferRead
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.render import render_rows
from courier.jsonapi.resource import CrudService
from courier.models.sniffer import Sniffer, SnifferLog


def unknown_reference(attribute: str, what: str) -> ApiError:
    return ApiError(
        404,
        [
            ErrorItem(
                f"{attribute} names no {what} of this organization",
                "not-found",
                pointer=f"/data/attributes/{attribute}",
            )
        ],
    )


def _invalidate_cache(ctx: Context) -> None:
    """This process's recorder sees the change at once; other replicas within seconds."""
    recorder = getattr(ctx.request.app.state, "sniffer_recorder", None)
    if recorder is None:
        return

    async def invalidate() -> None:
        recorder.invalidate()

    after_commit(ctx.session, invalidate)


class SnifferService(CrudService[Sniffer]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> Sniffer:
        values = attrs.model_dump()
        user_id: uuid.UUID | None = values["user_id"]
        api_key_id: uuid.UUID | None = values["api_key_id"]
        if user_id is None and api_key_id is None:
            raise invalid_attribute("user-id", "or api-key-id is required")
        now = utcnow()
        valid_until = values["valid_until"]
        if valid_until <= now:
            raise invalid_attribute("valid-until", "must be in the future")
        if valid_until > now + timedelta(days=MAX_DAYS):
            raise invalid_attribute("valid-until", f"must be at most {MAX_DAYS} days ahead")
        org = ctx.organization_id
        if user_id is not None and not await users_repository.existing_ids(ctx, [user_id]):
            raise unknown_reference("user-id", "user")
        if api_key_id is not None and not await api_keys_repository.existing_ids(ctx, [api_key_id]):
            raise unknown_reference("api-key-id", "API key")
        sniffer = Sniffer(
            id=uuid.uuid4(),
            organization_id=org,
            user_id=user_id,
            api_key_id=api_key_id,
            valid_until=valid_until,
            created_at=now,
            created_by=ctx.principal.actor_id,
        )
        ctx.session.add(sniffer)
        _invalidate_cache(ctx)
        return sniffer

    async def delete(self, ctx: Context, obj: Sniffer) -> None:
        """Stop recording and delete what was recorded (the logs may hold patient data)."""
        await ctx.session.delete(obj)
        _invalidate_cache(ctx)

    async def present(self, ctx: Context, rows: Sequence[Sniffer]) -> list[dict[str, Any]]:
        now = utcnow()
        return render_rows(
            SnifferRead,
            [
                {
                    "created_time": row.created_at,
                    "user_id": row.user_id,
                    "api_key_id": row.api_key_id,
                    "valid_until": row.valid_until,
                    "active": row.valid_until > now,
                }
                for row in rows
            ],
        )


async def do_get_logs(ctx: Context, sniffer: Sniffer, body: None) -> Select[Any]:
    """Method, path, query, status, request and response bodies (secrets redacted, 8 KiB at
    most), request and trace ids, user agent and duration of each recorded request, newest
    first. Admin only."""
    return logs_of(ctx, sniffer)


async def present_logs(ctx: Context, rows: Sequence[SnifferLog]) -> list[dict[str, Any]]:
    return render_rows(SnifferLogRead, [_log_values(row) for row in rows])


def _log_values(row: SnifferLog) -> dict[str, Any]:
    return {
        "body": row.request_body,
        "content_type": row.content_type,
        "created_time": row.created_at,
        "message": row.message,
        "method": row.method,
        "path": row.path,
        "query_string": row.query_string,
        "request_id": row.request_id,
        "response": row.response_body,
        "response_content_type": row.response_content_type,
        "status_code": row.status_code,
        "trace_id": row.trace_id,
        "user_agent": row.user_agent,
        "duration_ms": row.duration_ms,
    }
