"""The ``twilio`` sms adapter: the official ``twilio`` library's REST client (messages,
incoming and available phone numbers, Lookup v2) over an httpx transport.

``COURIER_TWILIO_ACCOUNT_SID`` / ``COURIER_TWILIO_AUTH_TOKEN`` are the installation's account; a
text account may name its own (a subaccount) with ``twilio-id`` and ``credentials``.
``COURIER_TWILIO_API_BASE_URL`` sends every API request to another base instead of
``https://<product>.twilio.com`` (``https://api.twilio.com/2010-04-01/...`` becomes
``<base>/api/2010-04-01/...``): a local twin in tests, a recording proxy in staging.

Errors are classified on Twilio's structured error codes and HTTP statuses, never on text:
429 and 503 (and a refused connection) were certainly not taken (:class:`NotSent`); a timeout
or a reset after the request was written, or a 500, may have been (:class:`Ambiguous`); the
other 4xx are :class:`Permanent` with Twilio's code (21211 invalid number, 21610 opted out,
21614 not a mobile ...).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from twilio.base.exceptions import TwilioRestException, TwilioServiceException  # type: ignore[import-untyped]
from twilio.http import AsyncHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response as TwilioResponse  # type: ignore[import-untyped]
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from courier.config import Settings
from courier.providers.common import (
    Ambiguous,
    DeliveryStatus,
    InboundEvent,
    NotSent,
    Permanent,
    RawRequest,
    SendResult,
    VendorStatus,
)
from courier.providers.sms.base import NumberLookup, ProvisionedNumber, SmsMessage
from courier.providers.sms.twilio_wire import parse_sms_webhook

log = logging.getLogger("courier.providers.sms.twilio")
T = TypeVar("T")

REQUEST_TIMEOUT_SECONDS = 15.0
SIGNATURE_HEADER = "X-Twilio-Signature"

# Twilio's message statuses -> Courier's delivery states; sending/sent/read are reports only
# where the delivery is already further (the delivery machine never moves backwards).
LINE_TYPES = {
    "mobile": "mobile",
    "landline": "landline",
    "fixedVoip": "voip",
    "nonFixedVoip": "voip",
    "tollFree": "toll-free",
    "personal": "personal",
    "pager": "pager",
    "premium": "premium",
    "sharedCost": "shared-cost",
    "uan": "uan",
    "voicemail": "voicemail",
}

STATUS_MAP: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.ACCEPTED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}


class HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]
    """The twilio library's asynchronous HTTP client interface, over httpx, with an optional
    base URL that replaces ``https://<product>.twilio.com``."""

    def __init__(self, base_url: str | None = None, timeout: float = REQUEST_TIMEOUT_SECONDS):
        super().__init__(logger=log, is_async=True, timeout=timeout)
        self.base_url = base_url.rstrip("/") if base_url else None
        self._client: httpx.AsyncClient | None = None

    def rewrite(self, url: str) -> str:
        if self.base_url is None:
            return url
        parts = urlsplit(url)
        product = parts.hostname.split(".")[0] if parts.hostname else "api"
        base = urlsplit(self.base_url)
        return urlunsplit(
            (base.scheme, base.netloc, f"{base.path}/{product}{parts.path}", parts.query, "")
        )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            # trust_env=False: no proxy from the environment sees the credentials.
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        return self._client

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the twilio library's signature)
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        form = _flatten(data)
        response = await self._http().request(
            method.upper(),
            self.rewrite(uri),
            params=cast(Any, _flatten(params)),
            content=urlencode(form).encode() if form else None,
            headers=headers,
            auth=auth,
            timeout=timeout or self.timeout,
        )
        return TwilioResponse(response.status_code, response.text, response.headers)


def _flatten(values: Mapping[str, object] | None) -> list[tuple[str, str]] | None:
    if not values:
        return None
    out: list[tuple[str, str]] = []
    for key, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            out.append((key, "true" if item is True else "false" if item is False else str(item)))
    return out


class _MultiParams(dict[str, list[str]]):
    """Repeated form parameters as the twilio validator reads them (``getall``)."""

    def getall(self, name: str) -> list[str]:
        return self[name]


class TwilioSms:
    """The twilio adapter of the sms kind."""

    name = "twilio"

    def __init__(
        self,
        settings: Settings,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        http: HttpxTwilioClient | None = None,
    ) -> None:
        self.settings = settings
        self.account_sid = account_sid or settings.twilio_account_sid
        self.auth_token = auth_token or settings.twilio_auth_token
        self.http = http or HttpxTwilioClient(settings.twilio_api_base_url)
        self._client: Client | None = None

    def for_account(self, account_id: str | None, auth_token: str | None) -> TwilioSms:
        if not account_id and not auth_token:
            return self
        return TwilioSms(
            self.settings, account_sid=account_id, auth_token=auth_token, http=self.http
        )

    # --- credentials ----------------------------------------------------------------------

    def client(self) -> Client:
        sid, token = self.account_sid, self.auth_token
        if not sid or not token:
            raise Permanent(
                "20003",
                "no Twilio credentials: set COURIER_TWILIO_ACCOUNT_SID and "
                "COURIER_TWILIO_AUTH_TOKEN, or twilio-id and credentials on the text account",
            )
        if self._client is None:
            self._client = Client(sid, token, http_client=self.http)
        return self._client

    async def _call(self, action: Callable[[], Awaitable[T]], *, written: bool) -> T:
        """Run one API call; translate what went wrong into the kind's errors. ``written``:
        the call changes something at Twilio, so a lost answer is :class:`Ambiguous`."""
        try:
            return await action()
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _classify(exc) from exc
        except httpx.ConnectError as exc:
            raise NotSent(f"Twilio unreachable: {exc}") from exc
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            if written and not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                raise Ambiguous(f"no answer from Twilio after the request: {exc!r}") from exc
            raise NotSent(f"Twilio did not answer: {exc!r}") from exc

    # --- messages -------------------------------------------------------------------------

    async def send(
        self, message: SmsMessage, *, delivery_id: object, callback_url: str
    ) -> SendResult:
        """Twilio has no idempotency key for messages: the delivery id rides on the status
        callback URL (``?d=``, covered by the signature) and the delivery machine never resends
        an ambiguous send; it reconciles with :meth:`fetch`."""
        client = self.client()
        created = await self._call(
            lambda: client.messages.create_async(
                to=message.to,
                from_=message.sender,
                body=message.body,
                status_callback=callback_url,
                media_url=list(message.media_urls) or None,
            ),
            written=True,
        )
        return SendResult(
            vendor_id=str(created.sid),
            vendor_status=str(created.status or "queued"),
            accepted_at=created.date_created or datetime.now(UTC),
        )

    async def fetch(
        self, *, delivery_id: object, vendor_id: str | None, recipient: str
    ) -> VendorStatus | None:
        """The message's status at Twilio. Without a vendor id (the send's answer was lost)
        nothing certain can be said: the status callback, which carries ``?d=``, settles it."""
        if vendor_id is None:
            return None
        client = self.client()
        try:
            message = await self._call(
                lambda: client.messages(vendor_id).fetch_async(), written=False
            )
        except Permanent as exc:
            if exc.code == "20404":
                return None
            raise
        status = str(message.status)
        if STATUS_MAP.get(status) in (None, DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
            return None  # taken, not yet sent
        return VendorStatus(
            vendor_id=vendor_id,
            status=STATUS_MAP.get(status, DeliveryStatus.SENT),
            vendor_status=status,
            vendor_code=str(message.error_code) if message.error_code else None,
            occurred_at=message.date_updated,
        )

    # --- numbers and lookups ----------------------------------------------------------------

    async def provision_number(
        self, area_code: str, *, country: str = "US", inbound_url: str | None = None
    ) -> ProvisionedNumber:
        if not area_code.isdigit() or not 1 <= len(area_code) <= 5:
            # Twilio takes AreaCode as a number: anything else is refused before the request.
            raise Permanent("21422", "an area code is 1 to 5 digits")
        client = self.client()
        available = await self._call(
            lambda: client.available_phone_numbers(country.upper()).local.list_async(
                area_code=int(area_code), sms_enabled=True, limit=1
            ),
            written=False,
        )
        if not available:
            raise Permanent("21422", f"Twilio has no numbers available in area code {area_code}")
        offer = available[0]
        bought = await self._call(
            lambda: client.incoming_phone_numbers.create_async(
                phone_number=offer.phone_number, sms_url=inbound_url, sms_method="POST"
            ),
            written=True,
        )
        return _number(bought, offer)

    async def claim_number(self, number: str, *, inbound_url: str) -> ProvisionedNumber:
        client = self.client()
        owned = await self._call(
            lambda: client.incoming_phone_numbers.list_async(phone_number=number, limit=1),
            written=False,
        )
        if not owned:
            raise Permanent("21452", f"{number} is not a number of this Twilio account")
        sid = owned[0].sid
        updated = await self._call(
            lambda: client.incoming_phone_numbers(sid).update_async(
                sms_url=inbound_url, sms_method="POST"
            ),
            written=True,
        )
        return _number(updated, None)

    async def release_number(self, number: str) -> bool:
        client = self.client()
        owned = await self._call(
            lambda: client.incoming_phone_numbers.list_async(phone_number=number, limit=1),
            written=False,
        )
        if not owned:
            return False
        sid = owned[0].sid
        return bool(
            await self._call(
                lambda: client.incoming_phone_numbers(sid).delete_async(), written=True
            )
        )

    async def lookup(self, number: str) -> NumberLookup:
        phone = number
        client = self.client()
        found = await self._call(
            lambda: client.lookups.v2.phone_numbers(phone).fetch_async(
                fields="line_type_intelligence"
            ),
            written=False,
        )
        line: dict[str, Any] = found.line_type_intelligence or {}
        if line.get("error_code"):
            raise Permanent(str(line["error_code"]), "Twilio Lookup found no line type")
        return NumberLookup(
            number=phone,
            valid=bool(found.valid),
            country=found.country_code,
            line_type=LINE_TYPES.get(str(line.get("type") or ""), "unknown"),
            carrier=line.get("carrier_name"),
            mobile_country_code=line.get("mobile_country_code"),
            mobile_network_code=line.get("mobile_network_code"),
        )

    # --- webhooks -------------------------------------------------------------------------

    def verify_with(self, auth_token: str, request: RawRequest) -> bool:
        """Twilio's signature (``X-Twilio-Signature``: HMAC-SHA1 of the URL and the sorted
        form parameters, keyed with the auth token), checked by the library's validator."""
        signature = request.header(SIGNATURE_HEADER)
        if not signature:
            return False
        params = _MultiParams(request.form_dict())
        return bool(RequestValidator(auth_token).validate(request.url, params, signature))

    def verify(self, request: RawRequest) -> bool:
        return bool(self.auth_token) and self.verify_with(str(self.auth_token), request)

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        return parse_sms_webhook(request)

    async def close(self) -> None:
        if self.http._client is not None:
            await self.http._client.aclose()


def _number(incoming: Any, offer: Any | None) -> ProvisionedNumber:
    caps: dict[str, Any] = dict(incoming.capabilities or {})
    caps = {k.lower(): v for k, v in caps.items()}

    def attr(name: str) -> str | None:
        value = getattr(offer, name, None) if offer is not None else None
        return str(value) if value not in (None, "") else None

    return ProvisionedNumber(
        number=str(incoming.phone_number),
        country=attr("iso_country") or "US",
        capabilities={name: bool(caps.get(name)) for name in ("sms", "mms", "voice")},
        vendor_id=str(incoming.sid),
        lata=attr("lata"),
        rate_center=attr("rate_center"),
        region=attr("region"),
        postal_code=attr("postal_code"),
        latitude=attr("latitude"),
        longitude=attr("longitude"),
    )


def _classify(exc: TwilioRestException | TwilioServiceException) -> Exception:
    status = int(getattr(exc, "status", 0) or 0)
    code = str(getattr(exc, "code", "") or status)
    message = str(getattr(exc, "msg", "") or getattr(exc, "detail", "") or exc)
    if status == 429 or code == "20429":
        return NotSent(f"Twilio throttled the request ({code})", retry_after=1.0, code=code)
    if status == 503:
        return NotSent(f"Twilio unavailable ({code})", code=code)
    if status >= 500:
        return Ambiguous(f"Twilio answered {status} ({code})", code=code)
    return Permanent(code, message)
