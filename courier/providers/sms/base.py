"""What Courier asks of any SMS vendor (the sandbox, Twilio ...), in Courier's words."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from courier.providers.common import InboundEvent, RawRequest, SendResult, VendorStatus


@dataclass(frozen=True)
class SmsMessage:
    """One text to one phone: E.164 numbers, and the body (never logged)."""

    to: str
    sender: str
    body: str
    media_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProvisionedNumber:
    number: str  # E.164
    country: str  # ISO 3166 region, e.g. US
    capabilities: dict[str, bool] = field(default_factory=dict)  # sms, mms, voice
    # Where the carrier knows them (the texts domain shows them on text-account-numbers):
    vendor_id: str | None = None  # Twilio's PN... sid
    lata: str | None = None
    rate_center: str | None = None
    region: str | None = None
    postal_code: str | None = None
    latitude: str | None = None
    longitude: str | None = None


@dataclass(frozen=True)
class NumberLookup:
    number: str
    valid: bool
    country: str | None
    line_type: str  # mobile, landline, voip, toll-free, unknown
    carrier: str | None
    mobile_country_code: str | None = None
    mobile_network_code: str | None = None


@runtime_checkable
class SmsProvider(Protocol):
    name: str

    async def send(
        self, message: SmsMessage, *, delivery_id: uuid.UUID, callback_url: str
    ) -> SendResult:
        """Hand the text to the vendor. ``callback_url`` (with ``?d=<delivery_id>``) receives
        its status callbacks. Raises NotSent, Ambiguous or Permanent."""
        ...

    async def fetch(
        self, *, delivery_id: uuid.UUID, vendor_id: str | None, recipient: str
    ) -> VendorStatus | None:
        """What the vendor knows of an earlier send (reconciliation); None: nothing."""
        ...

    def verify(self, request: RawRequest) -> bool: ...

    def parse(self, request: RawRequest) -> list[InboundEvent]: ...

    async def provision_number(
        self, area_code: str, *, country: str = "US", inbound_url: str | None = None
    ) -> ProvisionedNumber:
        """Rent a number in ``area_code``; texts to it are POSTed to ``inbound_url``."""
        ...

    async def claim_number(self, number: str, *, inbound_url: str) -> ProvisionedNumber:
        """Take a number the account already has (bought elsewhere); texts to it are POSTed
        to ``inbound_url``. Permanent when the account does not have it."""
        ...

    async def release_number(self, number: str) -> bool: ...

    def for_account(self, account_id: str | None, auth_token: str | None) -> SmsProvider:
        """The same adapter acting in another provider account (a text account's own
        credentials, e.g. a Twilio subaccount); the sandbox has one account and returns
        itself."""
        ...

    async def lookup(self, number: str) -> NumberLookup: ...
