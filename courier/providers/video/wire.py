"""Twilio Video's room status callbacks, which the sandbox sends too: form-encoded
``StatusCallbackEvent``, ``RoomSid``, ``ParticipantIdentity``, ``SequenceNumber`` ... turned
into the video kind's inbound events."""

from __future__ import annotations

from courier.core.time import parse_timestamp
from courier.providers.common import InboundEvent, RawRequest

# Twilio's StatusCallbackEvent values → Courier's event types.
EVENT_TYPES: dict[str, str] = {
    "room-created": "room-created",
    "room-ended": "room-ended",
    "participant-connected": "participant-connected",
    "participant-disconnected": "participant-disconnected",
    "track-enabled": "participant-audio",
    "track-disabled": "participant-audio",
}


def parse_room_callback(request: RawRequest) -> list[InboundEvent]:
    """A Twilio Video room status callback → one event (``participant-audio`` only for an
    audio track's ``track-enabled``/``track-disabled``)."""
    params = {k: v for k, v in request.form}
    event = params.get("StatusCallbackEvent", "")
    kind = EVENT_TYPES.get(event)
    room_sid = params.get("RoomSid", "")
    if kind is None or not room_sid:
        return []
    if kind == "participant-audio" and params.get("TrackKind") != "audio":
        return []
    stamp = params.get("Timestamp")
    return [
        InboundEvent(
            dedupe_key=f"{room_sid}:{params.get('SequenceNumber', '')}:{event}",
            vendor_id=room_sid,
            delivery_id=None,
            status=None,
            vendor_code=None,
            occurred_at=parse_timestamp(stamp) if stamp else None,
            raw=params,
            type=kind,
            vendor_status=event,
        )
    ]
