"""Outbound webhooks: fan-out of committed events, signed deliveries, retries (docs/WEBHOOKS.md).

How an event reaches a receiver:

1. :func:`courier.events.publish` calls :func:`enqueue_fanout` inside the publishing
   transaction: when an active webhook of the organization subscribes to one of the
   transaction's events, one ``webhooks.fanout`` job is enqueued with the transaction's range of
   event sequence numbers. The job commits with the events, so a process that dies right after
   the commit loses nothing.
2. ``webhooks.fanout`` enqueues one ``webhooks.deliver`` job per (matching active webhook,
   event). Its dedupe key (webhook, event, attempt 1) makes a repeated fan-out harmless, and so
   does a range that also covers events of other transactions.
3. ``webhooks.deliver`` makes one attempt: it checks the URL again (DNS can change since
   registration), POSTs the signed event to the address it checked, and logs the attempt in
   ``webhook_deliveries``. A failed attempt (not 2xx, refused, or no answer within
   :data:`DELIVERY_TIMEOUT_SECONDS`) enqueues the next attempt with exponential backoff and
   jitter, until :attr:`Settings.webhook_retry_window_seconds` after the event. The attempt's
   log row and its successor job commit together with the job's success.

Delivery is at least once: a receiver deduplicates on ``Courier-Event-Id``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import random
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import idna
import orjson
from sqlalchemy import Select, Text, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier import __version__
from courier.core import outbound
from courier.core.notified import watch, watch_statements
from courier.core.tenancy import in_organization, scoped
from courier.core.time import format_timestamp, parse_timestamp, utcnow
from courier.events.interest import INTEREST_CHANNEL, organization_entry
from courier.events.patterns import matches
from courier.events.published import Published
from courier.jobs import JobContext, enqueue
from courier.models.event import Event
from courier.models.webhook import Webhook, WebhookDelivery

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("courier.webhooks")

FANOUT_KIND = "webhooks.fanout"
DELIVER_KIND = "webhooks.deliver"
DELIVERY_TIMEOUT_SECONDS = 10.0
DNS_TIMEOUT_SECONDS = 5.0
RETRY_CAP_SECONDS = 4 * 3600.0
MAX_DELIVERY_ATTEMPTS = 40
# Attempts of one deliver *job* by the jobs engine: only a crash or a database error makes it
# retry; a receiver's failure is a logged attempt followed by a new job (see deliver()).
DELIVER_JOB_ATTEMPTS = 5
MAX_ERROR_LENGTH = 500
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"
USER_AGENT = f"Courier-Webhooks/{__version__}"


# --- signatures ------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``Courier-Signature``: ``v1=`` + hex HMAC-SHA256(secret, ``"<timestamp>.<body>"``).

    Deprecated in favour of :func:`standard_signature`; sent alongside it for one release.
    """
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def standard_key(secret: str) -> bytes:
    """The HMAC key of a secret, as Standard Webhooks defines it: a ``whsec_`` secret is the
    base64 of the key's bytes. A secret of another form (chosen by its owner) is used as its
    UTF-8 bytes: a receiver passes those bytes to its library (docs/WEBHOOKS.md)."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if key:
            return key
    return secret.encode("utf-8")


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature`` (Standard Webhooks): ``v1,`` + base64 HMAC-SHA256 over
    ``"<webhook-id>.<webhook-timestamp>.<body>"``."""
    message = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def event_body(event: Event) -> bytes:
    """The JSON a receiver gets for ``event`` (ids only, never patient data)."""
    return orjson.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "occurred-at": format_timestamp(event.occurred_at),
            "data": event.data,
            "resource-type": event.resource_type,
            "resource-id": str(event.resource_id) if event.resource_id else None,
        }
    )


# --- where a webhook may point ---------------------------------------------------------------


class UnsafeUrlError(ValueError):
    """The URL is not one Courier will post to (scheme, host, or the addresses it resolves to)."""


@dataclass(frozen=True)
class Target:
    """A checked URL, pinned to one of the addresses that were checked."""

    url: httpx.URL  # the host replaced by the checked address
    host_header: str
    server_name: str | None  # TLS SNI and certificate name (https only)


# IANA's special-purpose address registries (IPv4 and IPv6, as of 2024): nothing there is a
# webhook receiver. Python's ipaddress properties are checked too, but their tables lag behind
# the registries in older Pythons (3.11 calls 192.0.0.8 and 2002:7f00:1:: global).
SPECIAL_PURPOSE = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.31.196.0/24",
        "192.52.193.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "192.175.48.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/96",  # the unspecified, loopback and deprecated IPv4-compatible addresses
        "::ffff:0:0/96",
        "64:ff9b:1::/48",
        "100::/64",
        "100:0:0:1::/64",
        "2001::/23",
        "2001:db8::/32",
        "2620:4f:8000::/48",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def _embedded(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 address a 6to4 or NAT64 address carries, or None. (Teredo, 2001::/32, is
    refused whatever it carries, with the rest of 2001::/23.)"""
    if address in SIX_TO_FOUR and address.sixtofour is not None:
        return [address.sixtofour]
    if address in NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return None


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether Courier may post to ``address``: globally reachable and in no special-purpose
    block; an IPv6 address that wraps an IPv4 one (mapped, 6to4, NAT64) is judged by the
    address it wraps."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _public(address.ipv4_mapped)
        embedded = _embedded(address)
        if embedded is not None:
            return all(_public(inner) for inner in embedded)
    if any(address in block for block in SPECIAL_PURPOSE if block.version == address.version):
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _check_host_name(url: httpx.URL) -> None:
    """A host name DNS can carry: labels of 1 to 63 characters, 253 in all, valid IDNA."""
    try:
        raw = url.raw_host.decode("ascii")
    except (UnicodeError, ValueError) as exc:
        raise UnsafeUrlError("must name a valid host") from exc
    if raw.startswith("[") or _is_ip_literal(raw):
        return
    name = raw.removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or any(not 0 < len(label) <= 63 for label in labels):
        raise UnsafeUrlError("must name a valid host (labels of 1 to 63 characters, 253 in all)")
    try:
        idna.decode(name)
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise UnsafeUrlError("must name a valid host (its IDNA form is malformed)") from exc


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_url(raw: str, *, allow_private: bool) -> httpx.URL:
    """Check the form of a webhook URL (no DNS): https (http only where private is allowed)."""
    import httpx  # on first use: a process that checks or sends no webhook never loads it

    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeUrlError("must be an absolute https URL") from exc
    try:
        url.host  # noqa: B018 (decoding an IDNA host may fail)
    except ValueError as exc:  # idna.IDNAError and UnicodeError are ValueErrors
        raise UnsafeUrlError("must name a valid host (its IDNA form is malformed)") from exc
    allowed = ("https", "http") if allow_private else ("https",)
    if url.scheme not in allowed:
        raise UnsafeUrlError("must be an https URL")
    if not url.host:
        raise UnsafeUrlError("must name a host")
    if url.userinfo:
        raise UnsafeUrlError("must not carry credentials; the signature authenticates Courier")
    if url.fragment:
        raise UnsafeUrlError("must not have a fragment")
    _check_host_name(url)
    return url


async def resolve_target(raw: str, *, allow_private: bool) -> Target:
    """Check ``raw`` and every address its host resolves to; pin the request to one of them.

    Without ``allow_private``, a host that resolves to any private, loopback, link-local,
    multicast or reserved address is refused: checking all of them, and then connecting to a
    checked one, leaves no room for DNS answers that change between check and connection.
    """
    url = parse_url(raw, allow_private=allow_private)
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), DNS_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise UnsafeUrlError(f"host {host} does not resolve") from exc
        addresses = list(
            dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
        )
    if not addresses:
        raise UnsafeUrlError(f"host {host} does not resolve")
    if not allow_private:
        refused = [str(a) for a in addresses if not _public(a)]
        if refused:
            raise UnsafeUrlError(
                "must not point to a private, loopback, link-local, multicast, reserved or other "
                f"special-purpose address ({host} resolves to {', '.join(refused)}); "
                "COURIER_WEBHOOK_ALLOW_PRIVATE=true allows them on closed networks"
            )
    netloc = url.netloc.decode("ascii")
    return Target(
        url=url.copy_with(host=str(addresses[0])),
        host_header=netloc,
        server_name=url.raw_host.decode("ascii") if url.scheme == "https" else None,
    )


# --- one attempt -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime

    def as_result(self) -> dict[str, Any]:
        return {
            "succeeded": self.succeeded,
            "status_code": self.status_code,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "attempted_at": format_timestamp(self.attempted_at),
        }

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> Outcome:
        return cls(
            succeeded=bool(result["succeeded"]),
            status_code=result["status_code"],
            error=result["error"],
            duration_ms=int(result["duration_ms"]),
            attempted_at=parse_timestamp(result["attempted_at"]),
        )


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


async def attempt_delivery(
    url: str, secret: str, event: Event, attempt: int, *, allow_private: bool
) -> Outcome:
    """POST ``event`` to ``url`` once; any answer but 2xx, or none in time, is a failure."""
    import httpx

    attempted_at = utcnow()
    started = time.perf_counter()

    def outcome(succeeded: bool, status: int | None, error: str | None) -> Outcome:
        elapsed = int((time.perf_counter() - started) * 1000)
        return Outcome(succeeded, status, error and _clip(error), elapsed, attempted_at)

    try:
        target = await resolve_target(url, allow_private=allow_private)
    except UnsafeUrlError as exc:
        return outcome(False, None, f"url refused: {exc}")
    body = event_body(event)
    timestamp = int(time.time())
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        # Standard Webhooks (https://www.standardwebhooks.com): the event id stays the same
        # across attempts, so it is the receiver's idempotency key.
        "webhook-id": str(event.id),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secret, str(event.id), timestamp, body),
        # Courier's own headers, kept for one release (docs/WEBHOOKS.md).
        "Courier-Event-Id": str(event.id),
        "Courier-Timestamp": str(timestamp),
        "Courier-Signature": sign(secret, timestamp, body),
        "Courier-Delivery-Attempt": str(attempt),
    }
    extensions = {"sni_hostname": target.server_name} if target.server_name else {}
    try:
        # trust_env=False: no proxy from the environment may carry the request elsewhere than
        # the address that was checked. Redirects are not followed: a 3xx is a failure.
        async with (
            asyncio.timeout(DELIVERY_TIMEOUT_SECONDS),
            outbound.client(
                timeout=DELIVERY_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "POST", target.url, content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            status = response.status_code  # the body is not read: receivers answer, not talk
    except TimeoutError:
        return outcome(False, None, f"no response within {DELIVERY_TIMEOUT_SECONDS:g} seconds")
    except httpx.TimeoutException:
        return outcome(False, None, f"no response within {DELIVERY_TIMEOUT_SECONDS:g} seconds")
    except httpx.HTTPError as exc:
        return outcome(False, None, f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc))
    if 200 <= status < 300:
        return outcome(True, status, None)
    return outcome(False, status, f"the endpoint answered HTTP {status}")


def retry_delay(attempt: int, base: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based).

    ``base * 2**(attempt-1)``, capped at :data:`RETRY_CAP_SECONDS`, times a random factor in
    [1, 1.5): the jitter spreads receivers' recoveries, and each wait below the cap is longer
    than the one before it whatever the draw.
    """
    ceiling: float = min(RETRY_CAP_SECONDS, base * 2.0 ** min(attempt - 1, 40))
    return ceiling * random.uniform(1.0, 1.5)


def next_attempt_at(
    attempt: int, occurred_at: datetime, now: datetime, base: float, window: float
) -> datetime | None:
    """When to try again after failed attempt ``attempt``, or None once the window is over."""
    deadline = occurred_at + timedelta(seconds=window)
    if attempt >= MAX_DELIVERY_ATTEMPTS or now >= deadline:
        return None
    return min(now + timedelta(seconds=retry_delay(attempt, base)), deadline)


# --- jobs ------------------------------------------------------------------------------------


async def _active_webhooks(session: AsyncSession, organization_id: uuid.UUID) -> list[Webhook]:
    stmt = scoped(select(Webhook).where(Webhook.active.is_(True)), Webhook, organization_id)
    return list((await session.execute(stmt.order_by(Webhook.id))).scalars())


def subscriptions(organization_id: uuid.UUID) -> Select[Any]:
    """The event types the organization's active webhooks subscribe to (JSON text, one row
    per webhook): the webhooks' interest in a transaction's events (courier.events.Consumer),
    kept per process until a webhook is added, deleted, or changes the below."""
    return select(cast(Webhook.event_types, Text).label("value")).where(
        Webhook.active.is_(True), in_organization(Webhook, organization_id)
    )


watch(INTEREST_CHANNEL, Webhook, ("active", "event_types"), organization_entry, new=True)
watch_statements(INTEREST_CHANNEL, ("webhooks",), ("insert", "update", "delete"))


async def enqueue_fanout(
    session: AsyncSession,
    organization_id: uuid.UUID,
    events: Sequence[Published],
    found: list[str],
) -> None:
    """In the publishing transaction: enqueue a fan-out if a webhook wants any of ``events``
    (``found``: the event types of each active webhook, as :func:`subscriptions` reads them)."""
    wanted = [orjson.loads(types) for types in found]
    if not any(matches(types, e.type) for e in events for types in wanted):
        return
    seqs = [event.seq for event in events]
    await enqueue(
        session,
        FANOUT_KIND,
        {"from_seq": min(seqs), "to_seq": max(seqs)},
        organization_id=organization_id,
        priority=1,
    )


def delivery_dedupe_key(webhook_id: uuid.UUID, event_id: uuid.UUID, attempt: int) -> str:
    return f"webhook:{webhook_id}:{event_id}:{attempt}"


async def _enqueue_attempt(
    session: AsyncSession,
    organization_id: uuid.UUID,
    webhook_id: uuid.UUID,
    event_id: uuid.UUID,
    attempt: int,
    run_at: datetime | None = None,
) -> None:
    await enqueue(
        session,
        DELIVER_KIND,
        {"webhook_id": webhook_id, "event_id": event_id, "attempt": attempt},
        organization_id=organization_id,
        run_at=run_at,
        max_attempts=DELIVER_JOB_ATTEMPTS,
        dedupe_key=delivery_dedupe_key(webhook_id, event_id, attempt),
    )


async def fan_out(job: JobContext) -> dict[str, Any]:
    """``webhooks.fanout``: one delivery job per (matching active webhook, event) of the range."""
    stmt = scoped(
        select(Event).where(
            Event.seq >= int(job.payload["from_seq"]), Event.seq <= int(job.payload["to_seq"])
        ),
        Event,
        job.organization_id,
    )
    events = list((await job.session.execute(stmt.order_by(Event.seq))).scalars())
    webhooks = await _active_webhooks(job.session, job.organization_id)
    wanted: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for event in events:
        for webhook in webhooks:
            if matches(webhook.event_types, event.type):
                wanted[event.id].append(webhook.id)
    count = 0
    for event_id, webhook_ids in wanted.items():
        for webhook_id in webhook_ids:
            await _enqueue_attempt(job.session, job.organization_id, webhook_id, event_id, 1)
            count += 1
    return {"events": len(events), "deliveries": count}


async def deliver(job: JobContext) -> dict[str, Any]:
    """``webhooks.deliver``: one attempt of one event to one webhook, logged; schedule the next."""
    webhook_id = uuid.UUID(str(job.payload["webhook_id"]))
    event_id = uuid.UUID(str(job.payload["event_id"]))
    attempt = int(job.payload["attempt"])
    org = job.organization_id
    webhook = (
        await job.session.execute(
            scoped(select(Webhook).where(Webhook.id == webhook_id), Webhook, org)
        )
    ).scalar_one_or_none()
    if webhook is None or not webhook.active:
        return {"skipped": "the webhook was deleted or deactivated"}
    event = (
        await job.session.execute(scoped(select(Event).where(Event.id == event_id), Event, org))
    ).scalar_one_or_none()
    if event is None:
        return {"skipped": "the event is no longer kept"}
    if not matches(webhook.event_types, event.type):
        return {"skipped": "the webhook no longer subscribes to this event type"}
    url, secret = webhook.url, webhook.secret
    allow_private = job.settings.webhook_allow_private

    async def post() -> dict[str, Any]:
        outcome = await attempt_delivery(url, secret, event, attempt, allow_private=allow_private)
        return outcome.as_result()

    # A step: the read transaction ends before the request (no lock is held while a receiver
    # thinks), and a rerun of this job after a crash logs the recorded attempt, not a new one.
    recorded = await job.step("post", post)
    assert recorded is not None
    outcome = Outcome.from_result(recorded)
    retry_at = None
    if not outcome.succeeded:
        retry_at = next_attempt_at(
            attempt,
            event.occurred_at,
            utcnow(),
            job.settings.webhook_retry_base_seconds,
            job.settings.webhook_retry_window_seconds,
        )
        if retry_at is not None:
            await _enqueue_attempt(job.session, org, webhook_id, event_id, attempt + 1, retry_at)
    job.session.add(
        WebhookDelivery(
            organization_id=org,
            webhook_id=webhook_id,
            event_id=event_id,
            event_type=event.type,
            attempt=attempt,
            succeeded=outcome.succeeded,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            attempted_at=outcome.attempted_at,
            next_attempt_at=retry_at,
        )
    )
    log.info(
        "webhook delivery attempt",
        extra={
            "webhook_id": str(webhook_id),
            "event_id": str(event_id),
            "attempt": attempt,
            "status_code": outcome.status_code,
            "succeeded": outcome.succeeded,
            "retry": retry_at is not None,
        },
    )
    return {
        "succeeded": outcome.succeeded,
        "status_code": outcome.status_code,
        "next_attempt_at": format_timestamp(retry_at) if retry_at else None,
    }
