"""The one inbound path for provider webhooks: ``POST /providers/<kind>/<hook>``.

1. Read the raw body; build the public URL from ``COURIER_PUBLIC_URL`` and the path and query
   (never from ``Host``/``X-Forwarded-*``).
2. The kind's configured adapter verifies the signature (Twilio's rules, HMAC-SHA256 for the
   sandboxes); a bad one: 401 in the conventions' error body.
3. The adapter parses the events; each is stored once per ``(provider, dedupe_key)``
   (``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL), and, when it can be matched
   to an organization, an ``providers.apply-inbound`` job is enqueued in the same transaction.
4. 204 for every verified webhook, duplicates and unknown ids included (a vendor that gets an
   error retries, and an unknown id will not become known by retrying).

What an event does is declared by hooks, per kind and event type (:func:`inbound_handler`):
``status`` events of every kind move deliveries (:mod:`courier.providers.delivery`); a domain
registers, e.g., ``("sms", "message")`` for replies. An event without a handler, or that no
handler can place, is kept (an orphan) and applied when its vendor id is bound.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from courier.config import Settings
from courier.core.db import commit
from courier.core.errors import not_found, unauthorized
from courier.core.tenancy import unscoped
from courier.core.time import utcnow
from courier.jobs.context import JobContext
from courier.jobs.outbox import enqueue
from courier.jobs.registry import job_handler
from courier.models.delivery import Delivery, ProviderInbound
from courier.providers import delivery as deliveries
from courier.providers.common import (
    CALLBACK_PREFIX,
    KINDS,
    InboundEvent,
    Provider,
    RawRequest,
    load_provider_kinds,
    providers_for,
    public_base,
)

APPLY_JOB = "providers.apply-inbound"
MATCH_REASON = "a provider webhook names a delivery before its organization is known"

Resolver = Callable[[AsyncSession, str, InboundEvent], Awaitable[uuid.UUID | None]]
Applier = Callable[[JobContext, ProviderInbound], Awaitable[None]]


@dataclass(frozen=True)
class InboundHandler:
    """What one type of event does: ``resolve`` finds its organization while the webhook is
    answered (None: keep it as an orphan); ``apply`` runs in the apply job."""

    resolve: Resolver
    apply: Applier


HANDLERS: dict[tuple[str, str], list[InboundHandler]] = {}
ANY_KIND = "*"


def inbound_handler(kind: str, event_type: str, handler: InboundHandler) -> None:
    """Declare what events of ``event_type`` from providers of ``kind`` (``*``: every kind) do.
    Several domains may declare one (a call's status is a delivery's, a voice line's, ...):
    each ignores the events that are not its own (its ``resolve`` answers None)."""
    HANDLERS.setdefault((kind, event_type), []).append(handler)


def handler_for(kind: str, event_type: str) -> InboundHandler | None:
    """Every handler of ``kind``'s ``event_type`` (those of every kind first) as one: the first
    organization one of them resolves, and each applying in turn."""
    handlers = HANDLERS.get((ANY_KIND, event_type), []) + HANDLERS.get((kind, event_type), [])
    if len(handlers) <= 1:
        return handlers[0] if handlers else None

    async def resolve(
        session: AsyncSession, provider: str, event: InboundEvent
    ) -> uuid.UUID | None:
        for handler in handlers:
            found = await handler.resolve(session, provider, event)
            if found is not None:
                return found
        return None

    async def apply(job: JobContext, inbound: ProviderInbound) -> None:
        for handler in handlers:
            await handler.apply(job, inbound)

    return InboundHandler(resolve, apply)


# --- delivery receipts: the handler every kind shares ----------------------------------------


async def _find_delivery(
    session: AsyncSession, provider: str, delivery_id: uuid.UUID | None, vendor_id: str
) -> Delivery | None:
    if delivery_id is not None:
        stmt = select(Delivery).where(Delivery.id == delivery_id, Delivery.provider == provider)
    else:
        stmt = select(Delivery).where(
            Delivery.provider == provider, Delivery.vendor_id == vendor_id
        )
    found: Delivery | None = (
        (await session.execute(unscoped(stmt, MATCH_REASON).limit(1))).scalars().first()
    )
    return found


async def _resolve_status(
    session: AsyncSession, provider: str, event: InboundEvent
) -> uuid.UUID | None:
    found = await _find_delivery(session, provider, event.delivery_id, event.vendor_id)
    return found.organization_id if found is not None else None


async def _apply_status(job: JobContext, inbound: ProviderInbound) -> None:
    found = await _find_delivery(
        job.session, inbound.provider, inbound.delivery_id, inbound.vendor_id
    )
    if found is None or found.organization_id != job.organization_id:
        return  # stays an orphan: applied when the vendor id is bound
    inbound.delivery_id = found.id
    if found.vendor_id is None and inbound.vendor_id:
        await deliveries.bind_vendor_id(job.session, found, inbound.vendor_id)
        if inbound.applied_at is not None:  # bind_vendor_id applied it with the other orphans
            return
    await deliveries.apply_status(job.session, inbound, found)


inbound_handler(ANY_KIND, "status", InboundHandler(_resolve_status, _apply_status))


# --- receiving ----------------------------------------------------------------------------------


def public_request_url(settings: Settings, request: Request) -> str:
    query = request.url.query
    return public_base(settings) + request.url.path + (f"?{query}" if query else "")


async def raw_request(settings: Settings, request: Request, hook: str) -> RawRequest:
    body = await request.body()
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    form: list[tuple[str, str]] = []
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return RawRequest(
        method=request.method,
        url=public_request_url(settings, request),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        form=tuple(form),
        hook=hook,
    )


async def receive(
    session: AsyncSession, settings: Settings, kind: str, adapter: Provider, raw: RawRequest
) -> list[ProviderInbound]:
    """Verify, parse and store ``raw``; enqueue the apply jobs. Returns the new rows (not the
    duplicates). Raises 401 when the signature is wrong. Does not commit."""
    if not adapter.verify(raw):
        raise unauthorized(f"the {kind} webhook signature is missing or invalid")
    provider = f"{kind}:{adapter.name}"
    stored: list[ProviderInbound] = []
    for event in adapter.parse(raw):
        handler = handler_for(kind, event.type)
        organization_id = (
            await handler.resolve(session, provider, event) if handler is not None else None
        )
        row = await _insert(session, provider, event, organization_id)
        if row is None:
            continue  # a duplicate: already stored (and applied or waiting)
        stored.append(row)
        if organization_id is not None:
            await enqueue(
                session,
                APPLY_JOB,
                {"inbound_id": row.id},
                organization_id=organization_id,
                dedupe_key=f"{APPLY_JOB}:{row.id}",
            )
    return stored


async def _insert(
    session: AsyncSession,
    provider: str,
    event: InboundEvent,
    organization_id: uuid.UUID | None,
) -> ProviderInbound | None:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "provider": provider,
        "dedupe_key": event.dedupe_key[:255],
        "event_type": event.type,
        "vendor_id": event.vendor_id,
        "delivery_id": event.delivery_id,
        "organization_id": organization_id,
        "status": event.status.value if event.status is not None else None,
        "vendor_status": event.vendor_status,
        "vendor_code": event.vendor_code,
        "occurred_at": event.occurred_at,
        "received_at": utcnow(),
        "applied_at": None,
        "raw": event.raw,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table: Any = ProviderInbound.__table__
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["provider", "dedupe_key"])
        .returning(table.c.id)
    )
    inserted = (await session.execute(stmt)).scalar_one_or_none()
    if inserted is None:
        return None
    row: ProviderInbound | None = await session.get(ProviderInbound, inserted)
    return row


router = APIRouter(tags=["providers"])


@router.post(
    CALLBACK_PREFIX + "/{kind}/{hook}",
    status_code=204,
    include_in_schema=False,  # for providers, not for API clients
)
async def provider_webhook(kind: str, hook: str, request: Request) -> Response:
    """A provider's webhook (status callback, inbound message, bounce ...)."""
    settings: Settings = request.app.state.settings
    load_provider_kinds()
    declared = KINDS.get(kind)
    if declared is None or not declared.factories:
        raise not_found("provider kind")
    adapter = providers_for(settings).get(declared)
    if not isinstance(adapter, Provider):
        raise not_found("provider webhook")
    raw = await raw_request(settings, request, hook)
    async with request.app.state.database.sessionmaker() as session:
        await receive(session, settings, kind, adapter, raw)
        await commit(session)
    return Response(status_code=204)


# --- applying -----------------------------------------------------------------------------------


@job_handler(APPLY_JOB)
async def _apply_job(job: JobContext) -> dict[str, Any] | None:
    inbound = await job.session.get(ProviderInbound, uuid.UUID(str(job.payload["inbound_id"])))
    if inbound is None or inbound.applied_at is not None:
        return {"skipped": True}
    kind = inbound.provider.split(":", 1)[0]
    handler = handler_for(kind, inbound.event_type)
    if handler is not None:
        await handler.apply(job, inbound)
    return {"applied": inbound.applied_at is not None}
