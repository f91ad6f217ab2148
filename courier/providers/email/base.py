"""What Courier asks of any email provider (the sandbox now; SMTP with the email issue)."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from courier.config import Settings
from courier.providers.common import InboundEvent, RawRequest, SendResult, VendorStatus, public_base


def message_id_for(settings: Settings, delivery_id: uuid.UUID) -> str:
    """The Message-ID of a delivery: ``<delivery id@Courier's host>`` (RFC 5322), so a bounce
    that quotes it names the delivery."""
    host = urlsplit(public_base(settings)).hostname or "courier.invalid"
    return f"<{delivery_id}@{host}>"


def delivery_id_of(message_id: str | None) -> uuid.UUID | None:
    """The delivery a Message-ID names (None for one Courier did not make)."""
    if not message_id:
        return None
    local = message_id.strip().strip("<>").partition("@")[0]
    try:
        return uuid.UUID(local)
    except ValueError:
        return None


@runtime_checkable
class EmailProvider(Protocol):
    name: str

    async def send(self, message: EmailMessage, *, delivery_id: uuid.UUID) -> SendResult:
        """Hand over an RFC 5322 message; its Message-ID is set to carry ``delivery_id``.
        The vendor id is that Message-ID. Raises NotSent (4xx), Permanent (5xx), Ambiguous."""
        ...

    async def fetch(
        self, *, delivery_id: uuid.UUID, vendor_id: str | None, recipient: str
    ) -> VendorStatus | None: ...

    def verify(self, request: RawRequest) -> bool: ...

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        """Bounces (DSNs, RFC 3464) become ``status`` events of the delivery they quote."""
        ...
