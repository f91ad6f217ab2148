"""The Alexa sandbox: Amazon's Reminders and Proactive Events APIs as a twin.

It issues LWA access tokens (scoped, expiring) and refuses calls without a valid one, so the
adapter's token cache is exercised as against Amazon (a revoked token is refused once, then
a new one is fetched); it validates bodies as the APIs do (an IANA zone, RFC 5545 rules, an
expiry between 5 minutes and 24 hours, de-duplication on the event's reference id), keeps
what an Alexa device would hold per user, and fails on demand. Skill requests are signed
with the sandbox key (``X-Courier-Sandbox-Signature``) instead of Amazon's certificate chain.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
from dateutil.rrule import rrulestr  # type: ignore[import-untyped]
from pydantic import BaseModel, Field

from courier.config import Settings
from courier.core.time import check_timezone, parse_timestamp, utcnow
from courier.providers.alexa.base import (
    CERT_URL_HEADER,
    PROACTIVE_SCOPE,
    REMINDERS_SCOPE,
    SIGNATURE_HEADER,
    TIMESTAMP_TOLERANCE_SECONDS,
    AlexaReminder,
    LwaTokenCache,
    ProactiveEvent,
    SkillRequestRejected,
    UserApiAccess,
)
from courier.providers.common import (
    NotSent,
    Permanent,
    RawRequest,
    SandboxContext,
    SendResult,
    sandbox_signing_key,
    verify_sandbox_signature,
)
from courier.providers.sandbox_faults import CONTROL_PARAMS, raise_armed_fault
from courier.providers.sandbox_store import SandboxAdapter, SandboxStore

if TYPE_CHECKING:
    from courier.providers.alexa.signature import SkillRequestVerifier

TOKEN_LIFETIME_SECONDS = 3600.0
MIN_EVENT_LIFETIME = timedelta(minutes=5)
MAX_EVENT_LIFETIME = timedelta(hours=24)
MAX_REMINDER_TEXT = 250


class SandboxAlexa(SandboxAdapter):
    name = "sandbox"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = SandboxStore(settings, "alexa")
        self.tokens = LwaTokenCache(self._issue_token)

    @functools.cached_property
    def skill_requests(self) -> SkillRequestVerifier:
        """Amazon's rules for a request signed as Amazon signs, built on first use: a process
        that never sees one does not load ``cryptography`` and the trusted roots."""
        from courier.providers.alexa.signature import SkillRequestVerifier, load_trusted_roots

        return SkillRequestVerifier(
            trusted_roots=load_trusted_roots(self.settings.alexa_trusted_roots)
        )

    # --- LWA ---------------------------------------------------------------------------------

    async def _issue_token(self, scope: str) -> tuple[str, float]:
        """The sandbox's LWA token endpoint (client credentials grant)."""
        token = f"Atc|{secrets.token_urlsafe(24)}"
        expires = utcnow() + timedelta(seconds=TOKEN_LIFETIME_SECONDS)
        await self.store.put(
            "tokens",
            token,
            {"token": token, "scope": scope, "expires-at": expires.isoformat(), "revoked": False},
        )
        return token, TOKEN_LIFETIME_SECONDS

    async def _authorize(self, scope: str) -> None:
        """Present a token as the API client would: a refused one is dropped and replaced
        once (Amazon answers 401 to a revoked or expired token)."""
        for _ in range(2):
            token = await self.tokens.token(scope)
            held = await self.store.get("tokens", token)
            if (
                held is not None
                and not held["revoked"]
                and held["scope"] == scope
                and parse_timestamp(held["expires-at"]) > utcnow()
            ):
                return
            self.tokens.invalidate(token)
        raise NotSent("LWA token refused twice", code="401")

    # --- Reminders API ---------------------------------------------------------------------

    async def create_reminder(
        self, reminder: AlexaReminder, *, user_id: str, access: UserApiAccess | None = None
    ) -> str:
        # The sandbox authenticates every call with its own LWA tokens; a user's token from a
        # skill request is not needed (the amazon adapter's rules: docs/ALEXA.md).
        await self._authorize(REMINDERS_SCOPE)
        await raise_armed_fault(self.store, user_id)
        body = _checked_reminder(reminder)
        alert_token = str(uuid.uuid4())
        await self.store.put(
            "reminders",
            alert_token,
            {"alert-token": alert_token, "user-id": user_id, "status": "ON", "version": 1, **body},
        )
        return alert_token

    async def update_reminder(
        self,
        alexa_reminder_id: str,
        reminder: AlexaReminder,
        *,
        user_id: str,
        access: UserApiAccess | None = None,
    ) -> None:
        await self._authorize(REMINDERS_SCOPE)
        await raise_armed_fault(self.store, user_id)
        held = await self.store.get("reminders", alexa_reminder_id)
        if held is None or held["user-id"] != user_id:
            raise Permanent("not-found", "Alexa has no such reminder for this user")
        body = _checked_reminder(reminder)
        await self.store.merge(
            "reminders", alexa_reminder_id, {**body, "version": int(held["version"]) + 1}
        )

    async def delete_reminder(
        self, alexa_reminder_id: str, *, user_id: str, access: UserApiAccess | None = None
    ) -> None:
        await self._authorize(REMINDERS_SCOPE)
        await raise_armed_fault(self.store, user_id)
        held = await self.store.get("reminders", alexa_reminder_id)
        if held is not None and held["user-id"] == user_id:
            await self.store.remove("reminders", alexa_reminder_id)

    # --- Proactive Events API ----------------------------------------------------------------

    async def send_event(self, event: ProactiveEvent, *, user_id: str | None) -> SendResult:
        await self._authorize(PROACTIVE_SCOPE)
        await raise_armed_fault(self.store, *([user_id] if user_id else []))
        now = utcnow()
        if not event.name.startswith("AMAZON.") or not event.name.count(".") >= 2:
            raise Permanent("INVALID_EVENT_NAME", f"{event.name!r} is not an Alexa event schema")
        lifetime = event.expires_at - now
        if not MIN_EVENT_LIFETIME <= lifetime <= MAX_EVENT_LIFETIME:
            raise Permanent("INVALID_EXPIRY", "expiryTime must be 5 minutes to 24 hours ahead")
        if not event.reference_id or len(event.reference_id) > 100:
            raise Permanent("INVALID_REFERENCE_ID", "referenceId is 1 to 100 characters")
        earlier = await self.store.get("event-references", event.reference_id)
        if earlier is not None:  # Amazon de-duplicates on the reference id
            return SendResult(earlier["vendor-id"], "accepted", parse_timestamp(earlier["at"]))
        vendor_id = f"pe-{uuid.uuid4().hex}"
        audience = user_id or "*"
        body = {
            "timestamp": now.isoformat(timespec="milliseconds"),
            "referenceId": event.reference_id,
            "expiryTime": event.expires_at.isoformat(timespec="milliseconds"),
            "event": {"name": event.name, "payload": dict(event.payload)},
            "localizedAttributes": [dict(a) for a in event.localized_attributes],
            "relevantAudience": (
                {"type": "Unicast", "payload": {"user": user_id}}
                if user_id
                else {"type": "Multicast", "payload": {}}
            ),
        }
        await self.store.put("events", audience, {"vendor-id": vendor_id, **body})
        await self.store.put(
            "event-references", event.reference_id, {"vendor-id": vendor_id, "at": now.isoformat()}
        )
        return SendResult(vendor_id=vendor_id, vendor_status="accepted", accepted_at=now)

    # --- skill requests ----------------------------------------------------------------------

    async def verify_skill_request(self, request: RawRequest) -> Mapping[str, Any]:
        if request.header(CERT_URL_HEADER) or request.header(SIGNATURE_HEADER):
            # Signed as Amazon signs (a real device talking to a sandboxed installation, or a
            # test chain under COURIER_ALEXA_TRUSTED_ROOTS): Amazon's rules, nothing less.
            return await self.skill_requests.verify(request)
        if not verify_sandbox_signature(sandbox_signing_key(self.settings), request):
            raise SkillRequestRejected("the request's signature is not valid", code="bad-signature")
        try:
            envelope = orjson.loads(request.body)
            stamp = parse_timestamp(envelope["request"]["timestamp"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise SkillRequestRejected("not an Alexa request envelope", code="malformed") from error
        if not isinstance(envelope, dict):
            raise SkillRequestRejected("not an Alexa request envelope", code="malformed")
        if abs((utcnow() - stamp).total_seconds()) > TIMESTAMP_TOLERANCE_SECONDS:
            raise SkillRequestRejected(
                "the request's timestamp is more than 150 seconds away", code="stale-timestamp"
            )
        return envelope


def _checked_reminder(reminder: AlexaReminder) -> dict[str, Any]:
    """The Reminders API's body for ``reminder``, refused as the API refuses it."""
    if not reminder.text.strip() or len(reminder.text) > MAX_REMINDER_TEXT:
        raise Permanent("INVALID_TEXT", f"spoken text is 1 to {MAX_REMINDER_TEXT} characters")
    try:
        check_timezone(reminder.time_zone)
    except ValueError as error:
        raise Permanent("INVALID_TIMEZONE", str(error)) from error
    for rule in reminder.recurrence_rules:
        if "DTSTART" in rule.upper():
            raise Permanent("INVALID_RECURRENCE", "recurrence rules carry no DTSTART")
        try:
            rrulestr(rule, dtstart=reminder.scheduled_local.replace(tzinfo=None))
        except (ValueError, TypeError) as error:
            raise Permanent("INVALID_RECURRENCE", f"not an RFC 5545 rule: {rule}") from error
    return reminder.request_body(utcnow())


# --- controls (served as /sandbox/alexa/..., `courier sandbox alexa ...`) ----------------------


class UserParams(BaseModel):
    model_config = CONTROL_PARAMS
    user_id: str = Field(
        alias="user-id", min_length=1, max_length=512, description="The Alexa user id."
    )


class NoParams(BaseModel):
    model_config = CONTROL_PARAMS
    pass


async def user_reminders(ctx: SandboxContext, params: UserParams) -> list[dict[str, Any]]:
    """The reminders the user's Alexa device holds."""
    adapter: SandboxAlexa = ctx.adapter
    return [r for r in await adapter.store.all("reminders") if r["user-id"] == params.user_id]


async def user_events(ctx: SandboxContext, params: UserParams) -> list[dict[str, Any]]:
    """The proactive events announced to the user (or to everybody), oldest first."""
    adapter: SandboxAlexa = ctx.adapter
    return await adapter.store.all("events", params.user_id) + await adapter.store.all(
        "events", "*"
    )


async def lwa_tokens(ctx: SandboxContext, params: NoParams) -> dict[str, Any]:
    """How many LWA tokens were issued, and how many are still valid."""
    adapter: SandboxAlexa = ctx.adapter
    issued = await adapter.store.all("tokens")
    now = utcnow()
    valid = [t for t in issued if not t["revoked"] and parse_timestamp(t["expires-at"]) > now]
    return {"issued": len(issued), "valid": len(valid)}


async def revoke_tokens(ctx: SandboxContext, params: NoParams) -> dict[str, Any]:
    """Revoke every LWA token issued so far (the next call must fetch a new one)."""
    adapter: SandboxAlexa = ctx.adapter
    issued = await adapter.store.all("tokens")
    for token in issued:
        await adapter.store.merge("tokens", token["token"], {"revoked": True})
    return {"revoked": len(issued)}
