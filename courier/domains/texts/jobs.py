"""Jobs and hooks of texts: the provider send, delivery changes mirrored on the text, posts to
the client's callback URLs (in order per text), and texts received on our numbers."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core import outbound
from courier.core.sealed import unseal
from courier.core.time import utcnow
from courier.domains.text_accounts import repository as accounts
from courier.domains.texts import repository as repo
from courier.domains.texts.inbound import receive_text
from courier.domains.texts.service import (
    CALLBACK_JOB,
    CALLBACK_RETRY_SECONDS,
    RELEASE_JOB,
    accepting_text,
    owe_callback,
    publish_text,
    release_text,
)
from courier.events.webhooks import USER_AGENT, resolve_target, sign
from courier.jobs import JobContext, enqueue, job_handler
from courier.models.delivery import Delivery, ProviderInbound
from courier.models.text_account import TextAccount
from courier.providers import delivery as deliveries
from courier.providers.common import DeliveryStatus, SendResult, public_base
from courier.providers.inbound import APPLY_JOB, InboundHandler, inbound_handler
from courier.providers.sms.base import SmsMessage, SmsProvider

CALLBACK_TIMEOUT_SECONDS = 10.0
ORDER_RETRY_SECONDS = 0.25  # a text received waits this long for an earlier one of its sender
ORDER_WAIT_SECONDS = 120.0  # ... and at most this long in all


def account_adapter(adapter: SmsProvider, account: TextAccount, settings: Any) -> SmsProvider:
    """The adapter acting in the text account's own provider account, if it names one."""
    token = (
        unseal(settings, account.credentials_encrypted) if account.credentials_encrypted else None
    )
    if account.provider_account_id or token:
        return adapter.for_account(account.provider_account_id, token)
    return adapter


@deliveries.delivery_sender("texts")
async def send_text(job: JobContext, delivery: Delivery, adapter: SmsProvider) -> SendResult:
    text = await repo.text(job.session, job.organization_id, delivery.resource_id)
    if text is None:
        from courier.providers.common import Permanent

        raise Permanent("deleted", "the text was deleted before it was sent")
    account = await accounts.account(job.session, job.organization_id, text.account_id)
    assert account is not None
    callback = f"{public_base(job.settings)}/v1/texts/{text.id}/callback/?d={delivery.id}"
    message = SmsMessage(to=text.target, sender=text.from_number, body=text.message)
    acting = account_adapter(adapter, account, job.settings)
    await job.checkpoint()  # no transaction (SQLite: no write lock) during the carrier's call
    return await acting.send(message, delivery_id=delivery.id, callback_url=callback)


@deliveries.on_delivery_change("texts")
async def mirror_delivery(session: AsyncSession, change: deliveries.DeliveryChange) -> None:
    text = accepting_text(session, change.resource_id) or await repo.text(
        session, change.organization_id, change.resource_id
    )
    if text is None:
        return
    provider_id, error = text.provider_id, text.error
    if change.state is not DeliveryStatus.ACCEPTED:  # accepted: just made, nothing to read yet
        delivery = await deliveries.load(session, change.organization_id, change.delivery_id)
        if delivery is not None:
            provider_id = delivery.vendor_id or provider_id
            if delivery.error_code:
                error = f"{delivery.error_code}: {delivery.error_message or ''}".strip(": ")
    if (text.status, text.provider_id, text.error) != (change.state.value, provider_id, error):
        text.status, text.provider_id, text.error = change.state.value, provider_id, error
        text.last_modified_at = utcnow()
    publish_text(session, text, change.state.value, status=change.state.value, code=change.code)
    if text.callback_status_url:
        await owe_callback(
            session,
            text,
            text.callback_status_url,
            {"type": "texts.status", "status": change.state.value, "error-code": change.code},
        )


@job_handler(RELEASE_JOB)
async def release_held_text(job: JobContext) -> dict[str, Any] | None:
    """A text held by quiet hours falls due: it takes its number's next slot and is sent."""
    text = await repo.text(job.session, job.organization_id, uuid.UUID(job.payload["text_id"]))
    if text is None:
        return {"skipped": "deleted"}
    await release_text(
        job.session, job.settings, text, datetime.fromisoformat(str(job.payload["due"]))
    )
    return {"released": str(text.delivery_id)}


@job_handler(CALLBACK_JOB, max_attempts=20)
async def post_callback(job: JobContext) -> dict[str, Any] | None:
    row = await repo.callback(
        job.session, job.organization_id, uuid.UUID(job.payload["callback_id"])
    )
    if row is None or row.delivered_at is not None:
        return {"skipped": True}
    if await repo.earlier_undelivered(job.session, job.organization_id, row):
        # An earlier post of this text is still owed: wait for it (callbacks arrive in order).
        rerun = int(job.payload.get("rerun", 0)) + 1
        await enqueue(
            job.session,
            CALLBACK_JOB,
            {"callback_id": row.id, "rerun": rerun},
            organization_id=job.organization_id,
            run_at=utcnow() + _seconds(CALLBACK_RETRY_SECONDS),
            dedupe_key=f"{CALLBACK_JOB}:{row.id}:{rerun}",
        )
        return {"waiting": True}
    text = await repo.text(job.session, job.organization_id, row.text_id)
    account = (
        await accounts.account(job.session, job.organization_id, text.account_id) if text else None
    )
    if account is None:
        return {"skipped": True}
    body = orjson.dumps({"id": str(row.id), **row.body})
    secret, url = account.callback_secret, row.url
    allow_private = job.settings.webhook_allow_private

    async def post() -> dict[str, Any] | None:
        target = await resolve_target(url, allow_private=allow_private)
        stamp = int(time.time())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Courier-Event-Id": str(row.id),
            "Courier-Timestamp": str(stamp),
            "Courier-Signature": sign(secret, stamp, body),
        }
        async with outbound.client(
            timeout=CALLBACK_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
        ) as client:
            response = await client.post(target.url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"the callback URL answered HTTP {response.status_code}")
        return {"status": response.status_code}

    await job.checkpoint()
    await job.step("post", post)
    row.delivered_at = utcnow()
    return {"delivered": True}


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


# --- texts received on our numbers -------------------------------------------------------------


async def _resolve_message(session: AsyncSession, provider: str, event: Any) -> uuid.UUID | None:
    to = str(event.raw.get("To") or "")
    num = await accounts.number_by_phone(session, to)
    return num.organization_id if num is not None else None


async def _apply_message(job: JobContext, inbound: ProviderInbound) -> None:
    """A text received: applied after the texts the same phone sent the number before it, so
    its replies reach callbacks and channels in the order they were sent (a worker may run the
    apply jobs of two texts at once). One that waits is retried shortly; after
    ``ORDER_WAIT_SECONDS`` it no longer waits for an earlier text that cannot be applied."""
    raw = inbound.raw
    num = await accounts.number_by_phone(job.session, str(raw.get("To") or ""))
    if num is None or num.organization_id != job.organization_id:
        return
    waited = utcnow() - inbound.received_at
    if waited < _seconds(ORDER_WAIT_SECONDS) and await repo.earlier_unapplied(job.session, inbound):
        rerun = int(job.payload.get("rerun", 0)) + 1
        await enqueue(
            job.session,
            APPLY_JOB,
            {"inbound_id": inbound.id, "rerun": rerun},
            organization_id=job.organization_id,
            run_at=utcnow() + _seconds(ORDER_RETRY_SECONDS),
            dedupe_key=f"{APPLY_JOB}:{inbound.id}:{rerun}",
        )
        return
    await receive_text(
        job.session,
        job.settings,
        num,
        sender=str(raw.get("From") or ""),
        body=str(raw.get("Body") or ""),
        sid=inbound.vendor_id,
    )
    inbound.applied_at = utcnow()


inbound_handler("sms", "message", InboundHandler(_resolve_message, _apply_message))
