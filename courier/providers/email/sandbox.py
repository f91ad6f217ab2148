"""The email sandbox: a mail server twin that keeps every message as a real RFC 5322 document.

``send`` stores the message (its bytes, as an SMTP server would receive them) and answers like
an SMTP server that took it: the delivery ends at ``sent`` (SMTP reports nothing more). An
address told to bounce gets, after ``sandbox_delay_seconds``, a delivery status notification
(RFC 3464: ``multipart/report; report-type=delivery-status``, quoting the original headers and
so its Message-ID) POSTed, signed, to ``/providers/email/inbound``: the delivery becomes
``undelivered`` with the DSN's status code (``5.1.1`` ...). Every message can be read back,
byte for byte, through the control surface. Addresses at ``@example.test`` are not special;
any address may be told to bounce. State lives in the database (see ``sandbox_store``).
"""

from __future__ import annotations

import asyncio
import uuid
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import formatdate, getaddresses, make_msgid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from courier.config import Settings
from courier.core.errors import not_found
from courier.core.time import utcnow
from courier.providers.common import (
    DeliveryStatus,
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
from courier.providers.email.base import delivery_id_of, message_id_for
from courier.providers.email.kind import EMAIL
from courier.providers.sandbox_store import SandboxAdapter, SandboxStore

MAILER_DAEMON = "mailer-daemon@sandbox.invalid"
RFC822 = "message/rfc822"


def smtp_error(code: str, message: str = "") -> ProviderError:
    """An SMTP reply code as Courier's error: 4xx retryable, 5xx permanent."""
    if code.startswith("4"):
        return NotSent(message or f"SMTP {code}", retry_after=1.0, code=code)
    return Permanent(code, message or f"SMTP {code}")


def recipients_of(message: Message) -> list[str]:
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
    return [address.lower() for _name, address in getaddresses(fields) if address]


def build_dsn(original: bytes, recipient: str, status: str, reason: str) -> bytes:
    """A delivery status notification (RFC 3464) for ``recipient`` of ``original``."""
    headers = BytesParser(policy=policy.SMTP).parsebytes(original, headersonly=True)
    boundary = "dsn-" + uuid.uuid4().hex
    quoted = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    lines = [
        f"From: Mail Delivery Subsystem <{MAILER_DAEMON}>",
        f"To: {headers.get('From', '')}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {make_msgid(domain='sandbox.invalid')}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"Your message could not be delivered to {recipient}: {reason}",
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; sandbox.invalid",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        "Action: failed",
        f"Status: {status}",
        f"Diagnostic-Code: smtp; 550 {status} {reason}",
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
        quoted,
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode()


def parse_dsn(body: bytes) -> list[InboundEvent]:
    """The ``status`` events of a DSN: one per failed or delivered recipient."""
    report = BytesParser(policy=policy.default).parsebytes(body)
    if report.get_content_type() != "multipart/report":
        return []
    original_id: str | None = None
    blocks: list[Message] = []
    for part in report.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            payload = part.get_payload()
            blocks = (
                [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []
            )
        elif kind == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            raw = text if isinstance(text, bytes) else b""
            quoted = HeaderParser().parsestr(raw.decode("utf-8", errors="replace"))
            original_id = quoted.get("Message-ID")
    if not original_id:
        return []
    events = []
    for block in blocks[1:]:  # the first block is about the message, the rest per recipient
        action = (block.get("Action") or "").strip().lower()
        status = (block.get("Status") or "").strip()
        if action not in ("failed", "delivered"):
            continue
        recipient = (block.get("Final-Recipient") or "").partition(";")[2].strip().lower()
        events.append(
            InboundEvent(
                dedupe_key=f"{report.get('Message-ID', '')}:{recipient}",
                vendor_id=original_id.strip(),
                delivery_id=delivery_id_of(original_id),
                status=DeliveryStatus.UNDELIVERED
                if action == "failed"
                else DeliveryStatus.DELIVERED,
                vendor_code=status or None,
                occurred_at=None,
                raw={"action": action, "status": status, "recipient": recipient},
                vendor_status=f"dsn-{action}",
            )
        )
    return events


class SandboxEmail(SandboxAdapter):
    name = "sandbox"

    async def idle(self) -> None:
        """Wait for the bounces this process has still to send."""
        await self.store.idle()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = SandboxStore(settings, "email")
        self.key = sandbox_signing_key(settings)

    async def send(self, message: EmailMessage, *, delivery_id: uuid.UUID) -> SendResult:
        armed = await self.store.take("failures", "*")
        if armed is not None:
            raise smtp_error(str(armed["code"]), "the sandbox was told to fail this send")
        recipients = recipients_of(message)
        if not recipients:
            raise Permanent("554", "no valid recipients")
        message_id = message_id_for(self.settings, delivery_id)
        del message["Message-ID"]
        message["Message-ID"] = message_id
        if "Date" not in message:
            message["Date"] = formatdate(usegmt=True)
        raw = message.as_bytes(policy=policy.SMTP)
        now = utcnow()
        await self.store.put(
            "messages",
            message_id,
            {
                "message-id": message_id,
                "delivery-id": str(delivery_id),
                "from": str(message.get("From", "")),
                "to": recipients,
                "subject": str(message.get("Subject", "")),
                "status": "sent",
                "received-at": now.isoformat(),
                "raw": raw.decode("utf-8", errors="surrogateescape"),
            },
        )
        for recipient in recipients:
            await self.store.put("mailbox", recipient, {"message-id": message_id})
            bounce = await self.store.get("bounces", recipient)
            if bounce is not None:
                self.store.later(self._bounce(raw, recipient, bounce["status"]))
        return SendResult(vendor_id=message_id, vendor_status="250 accepted", accepted_at=now)

    async def fetch(
        self, *, delivery_id: uuid.UUID, vendor_id: str | None, recipient: str
    ) -> VendorStatus | None:
        record = await self.store.get(
            "messages", vendor_id or message_id_for(self.settings, delivery_id)
        )
        if record is None:
            return None
        return VendorStatus(record["message-id"], DeliveryStatus.SENT, "250 accepted")

    def verify(self, request: RawRequest) -> bool:
        return verify_sandbox_signature(self.key, request)

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        return parse_dsn(request.body)

    async def _bounce(self, original: bytes, recipient: str, status: str) -> None:
        await asyncio.sleep(self.settings.sandbox_delay_seconds)
        dsn = build_dsn(original, recipient, status, "mailbox unavailable")
        await self.store.post(callback_url(self.settings, "email", "inbound"), dsn, RFC822)

    # --- what the control surface does ------------------------------------------------------

    async def mailbox(self, address: str) -> list[dict[str, Any]]:
        found = []
        for entry in await self.store.all("mailbox", address.lower()):
            record = await self.store.get("messages", entry["message-id"])
            if record is not None:
                found.append({k: v for k, v in record.items() if k != "raw"})
        return found

    async def raw(self, message_id: str) -> str:
        record = await self.store.get("messages", message_id)
        if record is None:
            raise not_found("sandbox message")
        return str(record["raw"])


# --- the control surface (/sandbox/email/..., courier sandbox email ...) --------------------

_STRICT = ConfigDict(populate_by_name=True, extra="forbid")


class MailboxParams(BaseModel):
    model_config = _STRICT
    address: str = Field(min_length=3, max_length=320, description="The recipient's address.")


class RawParams(BaseModel):
    model_config = _STRICT
    message_id: str = Field(alias="message-id", description="The Message-ID, with <>.")


class BounceParams(BaseModel):
    model_config = _STRICT
    address: str = Field(min_length=3, max_length=320, description="Address that bounces.")
    status: str = Field(
        default="5.1.1", pattern=r"^[245]\.\d{1,3}\.\d{1,3}$", description="DSN status code."
    )


class FailureParams(BaseModel):
    model_config = _STRICT
    code: str = Field(
        pattern=r"^[45]\d\d$", description="SMTP reply code: 4xx retried, 5xx permanent."
    )


@EMAIL.sandbox_action(
    "mailbox",
    path="messages",
    method="GET",
    params=MailboxParams,
    summary="The messages an address received",
)
async def _mailbox(ctx: SandboxContext, params: Any) -> Any:
    adapter: SandboxEmail = ctx.adapter
    return await adapter.mailbox(params.address)


@EMAIL.sandbox_action(
    "raw",
    path="raw",
    method="GET",
    params=RawParams,
    summary="One message as the RFC 5322 document received",
)
async def _raw(ctx: SandboxContext, params: Any) -> Any:
    adapter: SandboxEmail = ctx.adapter
    return {"message-id": params.message_id, "raw": await adapter.raw(params.message_id)}


@EMAIL.sandbox_action(
    "bounce", path="bounces", params=BounceParams, summary="Make an address bounce (a DSN)"
)
async def _arm_bounce(ctx: SandboxContext, params: Any) -> Any:
    adapter: SandboxEmail = ctx.adapter
    await adapter.store.put("bounces", params.address.lower(), {"status": params.status})
    return {"address": params.address.lower(), "status": params.status}


@EMAIL.sandbox_action(
    "fail-next", path="failures", params=FailureParams, summary="Fail the next send (SMTP code)"
)
async def _fail_next(ctx: SandboxContext, params: Any) -> Any:
    adapter: SandboxEmail = ctx.adapter
    await adapter.store.put("failures", "*", {"code": params.code})
    return {"code": params.code}


@EMAIL.adapter("sandbox")
def _build(settings: Settings) -> SandboxEmail:
    return SandboxEmail(settings)
