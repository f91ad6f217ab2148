"""Twilio's SMS webhook wire format (form-encoded), spoken by the sandbox and by Twilio.

Status callbacks carry ``MessageSid``, ``MessageStatus`` and, on failure, ``ErrorCode``;
inbound texts carry ``MessageSid``, ``From``, ``To`` and ``Body``. Twilio sends no event id, so
an event is ``MessageSid:MessageStatus``. ``queued``/``sending``/``read`` change no delivery.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

from courier.providers.common import DeliveryStatus, InboundEvent, RawRequest

API_VERSION = "2010-04-01"

STATUSES: dict[str, DeliveryStatus | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
    "read": None,
    "partially_delivered": None,
    "receiving": None,
    "received": None,
}


def delivery_id_of(url: str) -> uuid.UUID | None:
    """Courier's delivery id from ``?d=`` on the callback URL (covered by the signature)."""
    values = parse_qs(urlsplit(url).query).get("d")
    if not values:
        return None
    try:
        return uuid.UUID(values[0])
    except ValueError:
        return None


def parse_sms_webhook(request: RawRequest) -> list[InboundEvent]:
    params = dict(request.form)
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid:
        return []
    if request.hook == "inbound":
        return [
            InboundEvent(
                dedupe_key=f"{sid}:received",
                vendor_id=sid,
                delivery_id=None,
                status=None,
                vendor_code=None,
                occurred_at=None,
                raw=params,
                type="message",
                vendor_status="received",
            )
        ]
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    if status not in STATUSES:
        return []
    code = params.get("ErrorCode") or None
    return [
        InboundEvent(
            dedupe_key=f"{sid}:{status}",
            vendor_id=sid,
            delivery_id=delivery_id_of(request.url),
            status=STATUSES[status],
            vendor_code=code,
            occurred_at=None,  # Twilio's callbacks carry no event time
            raw=params,
            vendor_status=status,
        )
    ]


def status_form(
    *, sid: str, account: str, status: str, sender: str, to: str, error_code: str | None
) -> list[tuple[str, str]]:
    form = [
        ("ApiVersion", API_VERSION),
        ("AccountSid", account),
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("From", sender),
        ("To", to),
    ]
    if error_code:
        form.append(("ErrorCode", error_code))
    return form


def inbound_form(
    *, sid: str, account: str, sender: str, to: str, body: str
) -> list[tuple[str, str]]:
    return [
        ("ApiVersion", API_VERSION),
        ("AccountSid", account),
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("SmsMessageSid", sid),
        ("SmsStatus", "received"),
        ("From", sender),
        ("To", to),
        ("Body", body),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
    ]
