"""Telephone calls: what Courier asks of any voice service (Twilio, sandbox).

The language of a call is Twilio's, because it is the de-facto standard and the sandbox speaks
it too: the service calls Courier's *call webhook* (form-encoded ``CallSid``, ``CallStatus``,
``From``, ``To``, ``Digits``, ``SpeechResult`` ...) and Courier answers with TwiML (built with
the ``twilio`` library's ``VoiceResponse``) saying what to do next: ``<Say>``, ``<Gather>``,
``<Record>``, ``<Dial>``, ``<Enqueue>``, ``<Hangup>``. Status changes (``ringing``,
``in-progress``, ``completed``, ``busy``, ``no-answer``, ``failed``), recordings and
transcriptions arrive on the status callback, through the generic inbound path
(``verify`` + ``parse``).

A placed call is a delivery: ``place_call`` returns the vendor's call id (``CA…``) and the
delivery state machine takes it from there (``completed`` = delivered; ``busy``,
``no-answer`` = undelivered; ``failed``, ``canceled`` = failed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from courier.providers.common import (
    DeliveryStatus,
    InboundEvent,
    RawRequest,
    SendResult,
    VendorStatus,
)

# The call states of Twilio's API (and the sandbox), and what each means for a delivery.
CALL_STATUSES: dict[str, DeliveryStatus | None] = {
    "queued": None,
    "initiated": None,
    "ringing": None,
    "in-progress": None,
    "completed": DeliveryStatus.DELIVERED,
    "busy": DeliveryStatus.UNDELIVERED,
    "no-answer": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


@dataclass(frozen=True)
class OutboundCall:
    """A call to place. ``url`` is the call webhook answering with TwiML once the callee
    picks up; ``status_callback_url`` receives the status changes (with ``?d=<delivery>``).
    ``record`` records the whole call; ``timeout_seconds`` is how long it rings."""

    to: str  # E.164
    from_: str  # E.164, a number of ours with voice capability
    url: str
    status_callback_url: str
    record: bool = False
    timeout_seconds: int = 30


@dataclass(frozen=True)
class Recording:
    """A recording's audio as the service serves it (WAV, 16-bit PCM mono for the sandbox)."""

    vendor_id: str
    content_type: str
    audio: bytes
    duration_seconds: float


@dataclass(frozen=True)
class VoiceGrant:
    """An access token with which a browser or app client (``identity``) places and receives
    calls through the service (Twilio: an ``AccessToken`` with a ``VoiceGrant``; the sandbox: an
    HS256 JWT of the same shape signed with the sandbox key). ``room`` names the conference or
    queue the token is meant for, when there is one."""

    token: str
    identity: str
    expires_at: datetime
    room: str | None = None


MAX_VOICE_IDENTITY = 121  # Twilio's limit on a client identity
MAX_VOICE_TOKEN_TTL = timedelta(hours=24)


@runtime_checkable
class VoiceProvider(Protocol):
    """A telephony service. Calls to it happen in jobs; the call webhook is answered by a
    request (TwiML must come back at once) and the status callback by the inbound path."""

    name: str

    async def place_call(self, call: OutboundCall, *, delivery_id: uuid.UUID) -> SendResult:
        """Start a call; the result's ``vendor_id`` is the call's id."""
        ...

    async def hang_up(self, vendor_id: str) -> None:
        """End a call in any state (a call already over: nothing happens)."""
        ...

    async def redirect(self, vendor_id: str, url: str) -> None:
        """Make a live call fetch its next TwiML from ``url`` (queue moves, transfers)."""
        ...

    async def fetch(self, vendor_id: str) -> VendorStatus | None:
        """The call's current state (reconciliation), None if the service has no such call."""
        ...

    async def configure_line(
        self, number: str, *, voice_url: str, status_callback_url: str | None = None
    ) -> None:
        """Point an owned number's incoming calls at Courier's call webhook."""
        ...

    async def recording(self, vendor_id: str) -> Recording:
        """Download a recording's audio (``RecordingSid``); unknown: ``Permanent``."""
        ...

    async def delete_recording(self, vendor_id: str) -> None:
        """Remove a recording from the service (purge); missing: nothing happens."""
        ...

    def access_token(self, identity: str, *, ttl: timedelta, room: str | None = None) -> VoiceGrant:
        """A client token for ``identity`` (1 to 121 characters) valid for ``ttl`` (1 s to 24 h),
        minted locally (no network), so a request may call it."""
        ...

    def verify(self, request: RawRequest) -> bool:
        """True for a genuine call webhook or status callback (``X-Twilio-Signature``)."""
        ...

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        """Call status (``type="call"``), recording (``"recording"``) and transcription
        (``"transcription"``) events of a verified callback."""
        ...
