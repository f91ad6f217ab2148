"""Bounces: delivery status notifications (RFC 3464) read and written.

A DSN is a ``multipart/report; report-type=delivery-status`` message: a human-readable part,
a ``message/delivery-status`` part (one block of fields for the report, one per recipient:
``Final-Recipient``, ``Action``, ``Status``, ``Diagnostic-Code``) and the original message or
its headers, whose ``Message-ID`` names the delivery it is about
(:func:`courier.providers.email.message.delivery_id_of`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid

from courier.core.time import utcnow
from courier.providers.common import DeliveryStatus, InboundEvent
from courier.providers.email.message import delivery_id_of


@dataclass(frozen=True)
class Bounce:
    """One recipient a DSN reports as failed (``Action: failed``)."""

    delivery_id: uuid.UUID | None
    message_id: str | None
    recipient: str
    status: str  # enhanced status code, e.g. 5.1.1
    diagnostic: str  # e.g. "smtp; 550 5.1.1 no such user"
    report_id: str  # the DSN's own Message-ID (dedupe key)


class NotADsnError(ValueError):
    """The document is not a delivery status notification."""


def _address(value: str | None) -> str:
    # "rfc822; someone@clinic.test" -> "someone@clinic.test"
    if not value:
        return ""
    _kind, _, address = str(value).partition(";")
    return (address or _kind).strip().strip("<>").lower()


def parse_dsn(document: bytes) -> list[Bounce]:
    """The failed recipients of a DSN (delayed or delivered ones are not bounces)."""
    report = BytesParser(policy=policy.default).parsebytes(document)
    if report.get_content_type() != "multipart/report":
        raise NotADsnError("not a multipart/report message")
    status_part: Message | None = None
    original_id: str | None = None
    for part in report.iter_parts():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            status_part = part
        elif content_type in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(first, Message):
                original_id = first.get("Message-ID")
        elif content_type in ("text/rfc822-headers", "message/global-headers"):
            headers = BytesParser(policy=policy.default).parsebytes(
                part.get_content().encode() if content_type.startswith("text/") else b"",
                headersonly=True,
            )
            original_id = headers.get("Message-ID")
    if status_part is None:
        raise NotADsnError("the report has no message/delivery-status part")
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or not blocks:
        raise NotADsnError("the delivery-status part is empty")
    report_id = str(report.get("Message-ID") or "")
    original_id = str(original_id).strip() if original_id else None
    delivery_id = delivery_id_of(original_id)
    bounces = []
    for block in blocks[1:]:
        if not isinstance(block, Message):
            continue
        if str(block.get("Action", "")).strip().lower() != "failed":
            continue
        recipient = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
        if not recipient:
            continue
        bounces.append(
            Bounce(
                delivery_id=delivery_id,
                message_id=original_id,
                recipient=recipient,
                status=str(block.get("Status", "")).strip(),
                diagnostic=" ".join(str(block.get("Diagnostic-Code", "")).split()),
                report_id=report_id,
            )
        )
    return bounces


def make_dsn(
    original: bytes,
    recipient: str,
    *,
    reporting_mta: str = "sandbox.courier.invalid",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 The email account does not exist",
) -> bytes:
    """A DSN saying ``original`` could not be delivered to ``recipient`` (the sandbox's
    bounces, and what the tests post to the inbound endpoint)."""
    original_message = BytesParser(policy=policy.default).parsebytes(original, headersonly=True)
    sender = str(original_message.get("From", "postmaster@localhost"))
    report = EmailMessage(policy=policy.SMTP)
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"
    report["To"] = sender
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = format_datetime(utcnow())
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report.set_content(
        f"Your message could not be delivered to {recipient}.\n", subtype="plain", charset="utf-8"
    )
    report.make_mixed()
    report.replace_header("Content-Type", 'multipart/report; report-type="delivery-status"')
    per_message = Message(policy=policy.SMTP)
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["Arrival-Date"] = format_datetime(utcnow())
    per_recipient = Message(policy=policy.SMTP)
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = diagnostic
    status_part = Message(policy=policy.SMTP)
    status_part["Content-Type"] = "message/delivery-status"
    # The generator writes a delivery-status part as its blocks of fields, in order.
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)  # type: ignore[arg-type]
    headers_part = Message(policy=policy.SMTP)
    headers_part["Content-Type"] = "text/rfc822-headers"
    head, _, _body = original.replace(b"\r\n", b"\n").partition(b"\n\n")
    headers_part.set_payload(head.decode("ascii", errors="replace") + "\n")
    report.attach(headers_part)  # type: ignore[arg-type]
    return report.as_bytes(policy=policy.SMTP)


def bounce_events(document: bytes) -> list[InboundEvent]:
    """The inbound events of a DSN: one ``bounce`` per failed recipient (a document that is
    not a DSN reports nothing)."""
    try:
        bounces = parse_dsn(document)
    except NotADsnError:
        return []
    return [
        InboundEvent(
            dedupe_key=f"bounce:{bounce.report_id or bounce.message_id}:{bounce.recipient}",
            vendor_id=bounce.message_id or "",
            delivery_id=bounce.delivery_id,
            status=DeliveryStatus.FAILED,
            vendor_code=bounce.status or None,
            occurred_at=None,
            raw={
                "recipient": bounce.recipient,
                "status": bounce.status,
                "diagnostic": bounce.diagnostic,
            },
            type="bounce",
            vendor_status="bounced",
        )
        for bounce in bounces
    ]
