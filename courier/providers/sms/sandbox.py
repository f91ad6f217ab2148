"""The SMS sandbox: a carrier twin that speaks Twilio's webhook wire format.

A send is accepted (``queued``), then, ``sandbox_delay_seconds`` apart, reported ``sent`` and
``delivered`` through signed status callbacks (form-encoded exactly as Twilio's, signed with
``X-Courier-Sandbox-Signature``) POSTed to the callback URL it was given. It only ever calls
this Courier (``COURIER_PUBLIC_URL``). Its state (numbers, messages, armed failures) lives in the
database, so the API process, the workers and ``courier sandbox`` share one outside world;
callbacks still to be sent live in the process that made the send (a restart drops them, as a
carrier's lost receipt would).

Reserved recipients choose the outcome by their last two digits: US ``+1 NPA 555-01NN`` and UK
``+44 7700 900NNN`` (the fictional ranges); other numbers are delivered:

====  =============================================================
00    delivered
01    undelivered, error 30003 (unreachable handset)
02    refused at send, error 21211 (invalid 'To' number) → failed
03    429 (error 20429) on the first attempt, then delivered
04    accepted, but the send times out (Ambiguous); callbacks still come
05    ``delivered`` is reported before ``sent``
06    every status callback is sent twice
07    a landline: undelivered, error 30006 (landline or unreachable carrier)
08    carrier violation: undelivered, error 30007 (filtered by the carrier)
09    opted out at the carrier: refused at send, error 21610 → failed
====  =============================================================

Lookups: a reserved ``07`` number is a landline; any number ending in ``0197`` fails to
resolve (error 60600).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any
from urllib.parse import urlencode

import phonenumbers
from phonenumbers import PhoneNumberType
from pydantic import BaseModel, ConfigDict, Field

from courier.config import Settings
from courier.core.errors import bad_request, not_found
from courier.core.time import utcnow
from courier.providers.common import (
    Ambiguous,
    InboundEvent,
    NotSent,
    Permanent,
    ProviderError,
    RawRequest,
    SandboxContext,
    SendResult,
    VendorStatus,
    callback_url,
    sandbox_signing_key,
    verify_sandbox_signature,
)
from courier.providers.sandbox_store import SandboxAdapter, SandboxStore
from courier.providers.sms.base import NumberLookup, ProvisionedNumber, SmsMessage
from courier.providers.sms.kind import SMS
from courier.providers.sms.numbers import describe_number
from courier.providers.sms.twilio_wire import (
    STATUSES,
    inbound_form,
    parse_sms_webhook,
    status_form,
)

ACCOUNT_SID = "AC" + "5a" * 16  # the sandbox's account id in callbacks
FORM = "application/x-www-form-urlencoded"
TERMINAL = {"delivered", "undelivered", "failed", "canceled"}

OUTCOMES = {
    "00": "delivered",
    "01": "undelivered",
    "02": "refused",
    "03": "throttled-once",
    "04": "timeout",
    "05": "delivered-before-sent",
    "06": "duplicate-callbacks",
    "07": "landline",
    "08": "carrier-violation",
    "09": "opted-out",
}
UNDELIVERED_CODES = {"undelivered": "30003", "landline": "30006", "carrier-violation": "30007"}

LINE_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.TOLL_FREE: "toll-free",
}


LOOKUP_FAILS_SUFFIX = "0197"
SANDBOX_MCC = {"US": "310", "CA": "302", "GB": "234"}
SANDBOX_CARRIERS = {True: "Sandbox Wireless", False: "Sandbox Telecom"}


def is_reserved(number: str) -> bool:
    """US +1 NPA 555-01xx or UK +44 7700 900xxx: numbers no real phone has."""
    digits = number.lstrip("+")
    us = digits.startswith("1") and len(digits) == 11 and digits[4:9] == "55501"
    uk = digits.startswith("447700900") and len(digits) == 12
    return us or uk


def reserved_outcome(number: str) -> str:
    """The outcome a (reserved) recipient asks for; ``delivered`` for every other number."""
    if is_reserved(number):
        return OUTCOMES.get(number[-2:], "delivered")
    return "delivered"


def provider_error(code: str, message: str = "") -> ProviderError:
    """The error a vendor code stands for: 20429 and 5xx-like codes are retryable, "timeout"
    is ambiguous, every other code permanent."""
    if code in ("20429", "429", "20500", "20503"):
        return NotSent(message or f"error {code}", retry_after=1.0, code=code)
    if code == "timeout":
        return Ambiguous(message or "the request timed out after it was sent", code=code)
    return Permanent(code, message or f"error {code}")


class SandboxSms(SandboxAdapter):
    name = "sandbox"

    async def idle(self) -> None:
        """Wait for the callbacks this process has still to send."""
        await self.store.idle()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = SandboxStore(settings, "sms")
        self.key = sandbox_signing_key(settings)

    # --- the Protocol -------------------------------------------------------------------------

    async def send(
        self, message: SmsMessage, *, delivery_id: uuid.UUID, callback_url: str
    ) -> SendResult:
        armed = await self.store.take("failures", message.to) or await self.store.take(
            "failures", "*"
        )
        if armed is not None:
            raise provider_error(str(armed["code"]), "the sandbox was told to fail this send")
        outcome = reserved_outcome(message.to)  # (the fictional ranges are not all "valid")
        if not _valid(message.to):
            raise Permanent("21211", "the 'To' number is not a valid phone number")
        if outcome == "refused":
            raise Permanent("21211", "the 'To' number is not a valid phone number")
        if outcome == "opted-out":
            raise Permanent("21610", "attempt to send to unsubscribed recipient")
        if (
            outcome == "throttled-once"
            and await self.store.get("throttled", str(delivery_id)) is None
        ):
            await self.store.put("throttled", str(delivery_id), {})
            raise NotSent("too many requests", retry_after=1.0, code="20429")
        sid = "SM" + uuid.uuid4().hex
        now = utcnow()
        record: dict[str, Any] = {
            "sid": sid,
            "to": message.to,
            "from": message.sender,
            "body": message.body,
            "status": "queued",
            "error-code": None,
            "delivery-id": str(delivery_id),
            "callback-url": callback_url,
            "date-created": now.isoformat(),
        }
        # The delivery's mark first, the message (what the phone gets) second: a crash between
        # them leaves a mark without a message, which fetch reports as never received.
        await self.store.put("by-delivery", str(delivery_id), {"sid": sid})
        await self.store.put("messages", sid, record)
        await self.store.put("inbox", message.to, {"sid": sid})
        steps: list[tuple[str, str | None]] = [("sent", None), ("delivered", None)]
        if outcome in UNDELIVERED_CODES:
            steps = [("sent", None), ("undelivered", UNDELIVERED_CODES[outcome])]
        elif outcome == "delivered-before-sent":
            steps = [("delivered", None), ("sent", None)]
        self.store.later(self._progress(record, steps, twice=outcome == "duplicate-callbacks"))
        if outcome == "timeout":
            raise Ambiguous("the sandbox accepted the text but the request timed out")
        return SendResult(vendor_id=sid, vendor_status="queued", accepted_at=now)

    async def fetch(
        self, *, delivery_id: uuid.UUID, vendor_id: str | None, recipient: str
    ) -> VendorStatus | None:
        sid = vendor_id
        if sid is None:
            found = await self.store.get("by-delivery", str(delivery_id))
            sid = found["sid"] if found else None
        record = await self.store.get("messages", sid) if sid else None
        if record is None or sid is None:
            # The sandbox records every text it takes: this one it never took.
            raise NotSent("the sandbox never received this delivery", code="not-received")
        status = STATUSES.get(record["status"])
        if status is None:  # queued or sending: taken, not yet sent
            return None
        return VendorStatus(sid, status, record["status"], record.get("error-code"))

    def verify(self, request: RawRequest) -> bool:
        return verify_sandbox_signature(self.key, request)

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        return parse_sms_webhook(request)

    async def provision_number(
        self, area_code: str, *, country: str = "US", inbound_url: str | None = None
    ) -> ProvisionedNumber:
        country = country.upper()
        calling_code = phonenumbers.country_code_for_region(country)
        if not calling_code:
            raise Permanent("21421", f"{country} is not a known country")
        if not area_code.isdigit() or not 1 <= len(area_code) <= 5:
            raise Permanent("21422", "an area code is 1 to 5 digits")
        example = phonenumbers.example_number_for_type(
            country, PhoneNumberType.FIXED_LINE
        ) or phonenumbers.example_number_for_type(country, PhoneNumberType.MOBILE)
        length = len(phonenumbers.national_significant_number(example)) if example else 10
        taken = {n["number"] for n in await self.store.all("numbers")}
        for _ in range(500):
            rest = "".join(random.choice("0123456789") for _ in range(length - len(area_code)))
            candidate = f"+{calling_code}{area_code}{rest}"
            parsed = phonenumbers.parse(candidate, None)
            if (
                phonenumbers.is_valid_number(parsed)
                and phonenumbers.region_code_for_number(parsed) == country
                and candidate not in taken
                and not is_reserved(candidate)
            ):
                return await self._own(candidate, inbound_url)
        raise Permanent("21422", f"no number is available in area code {area_code} ({country})")

    async def claim_number(self, number: str, *, inbound_url: str) -> ProvisionedNumber:
        """Any valid number may be claimed in the sandbox (it stands for one bought
        elsewhere), unless another sandbox number is already that number."""
        if not _valid(number):
            raise Permanent("21452", f"{number} is not a number of this account")
        return await self._own(number, inbound_url)

    def for_account(self, account_id: str | None, auth_token: str | None) -> SandboxSms:
        return self

    async def _own(self, number: str, inbound_url: str | None) -> ProvisionedNumber:
        details = describe_number(number)
        await self.store.put(
            "numbers",
            number,
            {
                "number": number,
                "country": details.country,
                "capabilities": details.capabilities,
                "inbound-url": inbound_url or callback_url(self.settings, "sms", "inbound"),
            },
        )
        return details

    async def release_number(self, number: str) -> bool:
        return await self.store.remove("numbers", number) > 0

    async def lookup(self, number: str) -> NumberLookup:
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            return NumberLookup(number, False, None, "unknown", None)
        valid = phonenumbers.is_valid_number(parsed)
        if number.endswith(LOOKUP_FAILS_SUFFIX):
            raise Permanent("60600", "the sandbox carrier does not know this number")
        line_type = LINE_TYPES.get(phonenumbers.number_type(parsed), "unknown")
        if reserved_outcome(number) == "landline":
            line_type = "landline"
        country = phonenumbers.region_code_for_number(parsed)
        mobile = line_type == "mobile" and country in SANDBOX_MCC
        # libphonenumber's carrier names (~9 MB) are loaded by the first lookup, not at start.
        from phonenumbers import carrier

        return NumberLookup(
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
            valid,
            country,
            line_type,
            (carrier.name_for_number(parsed, "en") or SANDBOX_CARRIERS[line_type == "mobile"])
            if valid
            else None,
            SANDBOX_MCC.get(country or "") if mobile else None,
            "260" if mobile else None,
        )

    # --- the carrier at work ----------------------------------------------------------------

    async def _progress(
        self, record: dict[str, Any], steps: list[tuple[str, str | None]], *, twice: bool
    ) -> None:
        for status, code in steps:
            await asyncio.sleep(self.settings.sandbox_delay_seconds)
            current = await self.store.get("messages", record["sid"])
            if current is not None and current["status"] not in TERMINAL:
                await self.store.merge(
                    "messages", record["sid"], {"status": status, "error-code": code}
                )
            form = status_form(
                sid=record["sid"],
                account=ACCOUNT_SID,
                status=status,
                sender=record["from"],
                to=record["to"],
                error_code=code,
            )
            body = urlencode(form).encode()
            for _ in range(2 if twice else 1):
                await self.store.post(record["callback-url"], body, FORM)

    # --- what the control surface does ------------------------------------------------------

    async def reply(self, sender: str, to: str, body: str) -> dict[str, Any]:
        number = await self.store.get("numbers", to)
        if number is None:
            raise not_found("sandbox number")
        sid = "SM" + uuid.uuid4().hex
        form = inbound_form(sid=sid, account=ACCOUNT_SID, sender=sender, to=to, body=body)
        # Posted in the background, as a carrier would: the control request's own transaction
        # (SQLite's write lock) must not wait on the webhook it causes in this same server.
        self.store.later(self.store.post(number["inbound-url"], urlencode(form).encode(), FORM))
        return {"message-sid": sid, "webhook": "queued"}

    async def arm_failure(self, code: str, number: str | None) -> dict[str, Any]:
        await self.store.put("failures", number or "*", {"code": code})
        return {"code": code, "number": number}

    async def received(self, number: str) -> list[dict[str, Any]]:
        found = []
        for entry in await self.store.all("inbox", number):
            message = await self.store.get("messages", entry["sid"])
            if message is not None:
                found.append(
                    {
                        "message-sid": message["sid"],
                        "from": message["from"],
                        "to": message["to"],
                        "body": message["body"],
                        "status": message["status"],
                        "error-code": message.get("error-code"),
                        "date-created": message["date-created"],
                    }
                )
        return found


def _valid(number: str) -> bool:
    if is_reserved(number):
        return True
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


# --- the control surface (/sandbox/sms/..., courier sandbox sms ...) -------------------------

_ALIASES = ConfigDict(populate_by_name=True, extra="forbid")


class ReplyParams(BaseModel):
    model_config = _ALIASES
    sender: str = Field(alias="from", description="The phone that replies (E.164).")
    to: str = Field(description="The provisioned sandbox number it texts (E.164).")
    body: str = Field(min_length=1, max_length=1600, description="The text.")


class FailureParams(BaseModel):
    model_config = _ALIASES
    code: str = Field(
        pattern=r"^(\d{3,5}|timeout)$",
        description="Twilio error code (20429: retryable; 'timeout': ambiguous; others "
        "permanent, e.g. 21610 opted out).",
    )
    number: str | None = Field(default=None, description="Only a send to this number.")


class PhoneParams(BaseModel):
    model_config = _ALIASES
    number: str = Field(description="The phone whose received texts are listed (E.164).")


class ProvisionParams(BaseModel):
    model_config = _ALIASES
    area_code: str = Field(alias="area-code", description="Area code, e.g. 415 (US) or 20 (GB).")
    country: str = Field(default="US", description="ISO country code.")


def _e164(value: str, field: str) -> str:
    if not _valid(value):
        raise bad_request(f"{field} must be an E.164 phone number", code="invalid-phone-number")
    return value


@SMS.sandbox_action(
    "reply", path="replies", params=ReplyParams, summary="Text a sandbox number from a phone"
)
async def _reply(ctx: SandboxContext, params: Any) -> Any:
    adapter: SandboxSms = ctx.adapter
    return await adapter.reply(_e164(params.sender, "from"), _e164(params.to, "to"), params.body)


@SMS.sandbox_action(
    "fail-next", path="failures", params=FailureParams, summary="Fail the next send with a code"
)
async def _fail_next(ctx: SandboxContext, params: Any) -> Any:
    adapter: SandboxSms = ctx.adapter
    number = _e164(params.number, "number") if params.number else None
    return await adapter.arm_failure(params.code, number)


@SMS.sandbox_action(
    "received",
    path="messages",
    method="GET",
    params=PhoneParams,
    summary="The texts a phone received",
)
async def _received(ctx: SandboxContext, params: Any) -> Any:
    adapter: SandboxSms = ctx.adapter
    return await adapter.received(_e164(params.number, "number"))


@SMS.sandbox_action(
    "provision", path="numbers", params=ProvisionParams, summary="Provision a sandbox number"
)
async def _provision(ctx: SandboxContext, params: Any) -> Any:
    adapter: SandboxSms = ctx.adapter
    try:
        number = await adapter.provision_number(params.area_code, country=params.country)
    except Permanent as exc:
        raise bad_request(exc.message, code="number-unavailable") from exc
    return {"number": number.number, "country": number.country, "capabilities": number.capabilities}


@SMS.adapter("sandbox")
def _build(settings: Settings) -> SandboxSms:
    return SandboxSms(settings)
