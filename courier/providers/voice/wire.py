"""Twilio's call-webhook wire format (form-encoded), spoken by the sandbox and by Twilio.

Status callbacks carry ``CallSid`` and ``CallStatus`` (plus ``CallDuration`` when it ended);
recording callbacks ``RecordingSid`` and ``RecordingStatus``; transcription callbacks
``TranscriptionSid`` and ``TranscriptionStatus``. Twilio sends no event id, so an event is
``<sid>:<status>``; Courier's delivery id rides on the callback URL as ``?d=``.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

from courier.providers.common import InboundEvent, RawRequest
from courier.providers.voice.base import CALL_STATUSES

API_VERSION = "2010-04-01"


def delivery_id_of(url: str) -> uuid.UUID | None:
    values = parse_qs(urlsplit(url).query).get("d")
    try:
        return uuid.UUID(values[0]) if values else None
    except ValueError:
        return None


def parse_call_webhook(request: RawRequest) -> list[InboundEvent]:
    """The call, recording or transcription event of a (verified) callback."""
    params = {key: value for key, value in request.form}
    delivery_id = delivery_id_of(request.url)
    if params.get("TranscriptionSid") and params.get("TranscriptionStatus"):
        sid, status, kind = (
            params["TranscriptionSid"],
            params["TranscriptionStatus"],
            "transcription",
        )
        vendor_id = params.get("RecordingSid", sid)
    elif params.get("RecordingSid") and params.get("RecordingStatus"):
        sid, status, kind = params["RecordingSid"], params["RecordingStatus"], "recording"
        vendor_id = sid
    elif params.get("CallSid") and params.get("CallStatus"):
        sid, status, kind = params["CallSid"], params["CallStatus"], "call"
        vendor_id = sid
    else:
        return []
    return [
        InboundEvent(
            dedupe_key=f"{sid}:{status}",
            vendor_id=vendor_id if kind != "call" else params["CallSid"],
            delivery_id=delivery_id,
            status=CALL_STATUSES.get(status) if kind == "call" else None,
            vendor_code=params.get("ErrorCode") or params.get("SipResponseCode"),
            occurred_at=None,
            raw=params,
            type=kind if kind != "call" else "status",
            vendor_status=status,
        )
    ]
