"""The ``twilio`` voice adapter: the official ``twilio`` library's REST client (Calls create,
update, fetch; IncomingPhoneNumbers update; Recordings fetch, media and delete) over the SMS
adapter's httpx transport, ``AccessToken`` + ``VoiceGrant`` for browser agents, and Twilio's own
request validator for the call webhooks.

Settings: ``COURIER_TWILIO_ACCOUNT_SID`` and ``COURIER_TWILIO_AUTH_TOKEN`` (API calls, webhook
signatures); ``COURIER_TWILIO_API_KEY_SID`` and ``COURIER_TWILIO_API_KEY_SECRET`` (signing
access tokens); ``COURIER_TWILIO_TWIML_APP_SID`` (optional: the TwiML app of browser agents'
outgoing calls); ``COURIER_TWILIO_API_BASE_URL`` (a local twin in tests). Errors are classified
as the SMS adapter classifies them (Twilio's structured codes and HTTP statuses).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from twilio.jwt.access_token import AccessToken  # type: ignore[import-untyped]
from twilio.jwt.access_token.grants import VoiceGrant as TwilioVoiceGrant  # type: ignore[import-untyped]
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from courier.config import Settings
from courier.core.time import utcnow
from courier.providers.common import (
    DeliveryStatus,
    InboundEvent,
    Permanent,
    RawRequest,
    SendResult,
    VendorStatus,
)
from courier.providers.sms.twilio import HttpxTwilioClient, TwilioSms
from courier.providers.voice.base import (
    CALL_STATUSES,
    MAX_VOICE_IDENTITY,
    MAX_VOICE_TOKEN_TTL,
    OutboundCall,
    Recording,
    VoiceGrant,
)
from courier.providers.voice.wire import API_VERSION, parse_call_webhook

SIGNATURE_HEADER = "X-Twilio-Signature"
GONE = ("20404",)  # the resource is not (any more) at Twilio
NOT_LIVE = ("21220",)  # the call is not in progress


class TwilioVoice:
    """The twilio adapter of the voice kind."""

    name = "twilio"

    def __init__(self, settings: Settings, *, http: HttpxTwilioClient | None = None) -> None:
        self.settings = settings
        # The SMS adapter's client, credentials and error classification, shared.
        self.rest = TwilioSms(settings, http=http)

    @property
    def http(self) -> HttpxTwilioClient:
        return self.rest.http

    async def place_call(self, call: OutboundCall, *, delivery_id: uuid.UUID) -> SendResult:
        client = self.rest.client()
        created = await self.rest._call(
            lambda: client.calls.create_async(
                to=call.to,
                from_=call.from_,
                url=call.url,
                method="POST",
                status_callback=call.status_callback_url,
                status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                record=call.record,
                timeout=call.timeout_seconds,
            ),
            written=True,
        )
        return SendResult(
            vendor_id=str(created.sid),
            vendor_status=str(created.status or "queued"),
            accepted_at=created.date_created or datetime.now(UTC),
        )

    async def _update(self, vendor_id: str, **changes: Any) -> None:
        client = self.rest.client()
        await self.rest._call(lambda: client.calls(vendor_id).update_async(**changes), written=True)

    async def hang_up(self, vendor_id: str) -> None:
        try:
            await self._update(vendor_id, status="completed")
        except Permanent as exc:
            if exc.code not in GONE + NOT_LIVE:
                raise

    async def redirect(self, vendor_id: str, url: str) -> None:
        await self._update(vendor_id, url=url, method="POST")

    async def fetch(self, vendor_id: str) -> VendorStatus | None:
        client = self.rest.client()
        try:
            call = await self.rest._call(
                lambda: client.calls(vendor_id).fetch_async(), written=False
            )
        except Permanent as exc:
            if exc.code in GONE:
                return None
            raise
        status = str(call.status)
        return VendorStatus(
            vendor_id=vendor_id,
            status=CALL_STATUSES.get(status) or DeliveryStatus.SENT,
            vendor_status=status,
            occurred_at=call.date_updated,
        )

    async def configure_line(
        self, number: str, *, voice_url: str, status_callback_url: str | None = None
    ) -> None:
        client = self.rest.client()
        owned = await self.rest._call(
            lambda: client.incoming_phone_numbers.list_async(phone_number=number, limit=1),
            written=False,
        )
        if not owned:
            raise Permanent("21452", f"{number} is not a number of this Twilio account")
        sid = owned[0].sid
        changes: dict[str, Any] = {"voice_url": voice_url, "voice_method": "POST"}
        if status_callback_url:
            changes |= {"status_callback": status_callback_url, "status_callback_method": "POST"}
        await self.rest._call(
            lambda: client.incoming_phone_numbers(sid).update_async(**changes), written=True
        )

    async def recording(self, vendor_id: str) -> Recording:
        client = self.rest.client()
        found = await self.rest._call(
            lambda: client.recordings(vendor_id).fetch_async(), written=False
        )
        account = self.rest.account_sid
        url = self.http.rewrite(
            f"https://api.twilio.com/{API_VERSION}/Accounts/{account}/Recordings/{vendor_id}.wav"
        )
        try:
            media = await self.http._http().get(
                url, auth=(str(account), str(self.rest.auth_token)), timeout=60
            )
        except httpx.HTTPError as exc:
            from courier.providers.common import NotSent

            raise NotSent(f"the recording's audio could not be fetched: {exc!r}") from exc
        if media.status_code == 404:
            raise Permanent("20404", f"no recording {vendor_id}")
        if media.status_code >= 400:
            from courier.providers.common import NotSent

            raise NotSent(f"Twilio answered {media.status_code} for the recording's audio")
        return Recording(
            vendor_id=vendor_id,
            content_type="audio/wav",
            audio=media.content,
            duration_seconds=float(found.duration or 0),
        )

    async def delete_recording(self, vendor_id: str) -> None:
        client = self.rest.client()
        try:
            await self.rest._call(lambda: client.recordings(vendor_id).delete_async(), written=True)
        except Permanent as exc:
            if exc.code not in GONE:
                raise

    def access_token(self, identity: str, *, ttl: timedelta, room: str | None = None) -> VoiceGrant:
        if not identity or len(identity) > MAX_VOICE_IDENTITY:
            raise Permanent("20101", f"an identity is 1 to {MAX_VOICE_IDENTITY} characters")
        if not timedelta(seconds=1) <= ttl <= MAX_VOICE_TOKEN_TTL:
            raise Permanent("20101", "a token lives 1 second to 24 hours")
        settings = self.settings
        if not (
            self.rest.account_sid and settings.twilio_api_key_sid and settings.twilio_api_key_secret
        ):
            raise Permanent(
                "20003",
                "Voice access tokens need COURIER_TWILIO_ACCOUNT_SID, "
                "COURIER_TWILIO_API_KEY_SID and COURIER_TWILIO_API_KEY_SECRET",
            )
        seconds = int(ttl.total_seconds())
        token = AccessToken(
            self.rest.account_sid,
            settings.twilio_api_key_sid,
            settings.twilio_api_key_secret,
            identity=identity,
            ttl=seconds,
        )
        grant: dict[str, Any] = {"incoming_allow": True}
        if settings.twilio_twiml_app_sid:
            grant["outgoing_application_sid"] = settings.twilio_twiml_app_sid
            if room is not None:
                grant["outgoing_application_params"] = {"room": room}
        token.add_grant(TwilioVoiceGrant(**grant))
        return VoiceGrant(
            token=str(token.to_jwt()),
            identity=identity,
            expires_at=utcnow() + timedelta(seconds=seconds),
            room=room,
        )

    def verify(self, request: RawRequest) -> bool:
        token = self.rest.auth_token
        signature = request.header(SIGNATURE_HEADER)
        if not token or not signature:
            return False
        params = _Params(request.form_dict())
        return bool(RequestValidator(token).validate(request.url, params, signature))

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        return parse_call_webhook(request)

    async def close(self) -> None:
        await self.rest.close()


class _Params(dict[str, list[str]]):
    """Repeated form parameters as the twilio validator reads them (``getall``)."""

    def getall(self, name: str) -> list[str]:
        return self[name]
