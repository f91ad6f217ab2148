"""A local HTTP server on 127.0.0.1 that answers as Twilio's REST API does, for the twilio
adapter's tests: messages (create, fetch, list), incoming phone numbers (buy, list, update,
release, voice URLs), available local numbers, Lookup v2, calls (create, fetch, update) and
recordings (metadata, .wav media, delete), Twilio's error bodies and HTTP Basic
authentication, and signed status callbacks and inbound texts in Twilio's form encoding
(``X-Twilio-Signature``, computed with the twilio library's own validator).

The adapter reaches it through ``COURIER_TWILIO_API_BASE_URL=<fake.url>``: requests for
``https://api.twilio.com/2010-04-01/...`` arrive as ``/api/2010-04-01/...`` and Lookup's as
``/lookups/v2/...``.
"""

from __future__ import annotations

import email.utils
import http.server
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import phonenumbers
from twilio.request_validator import RequestValidator

# Twilio's test numbers (https://www.twilio.com/docs/iam/test-credentials): To these, a send
# fails as Twilio answers it.
INVALID_TO = "+15005550001"  # 21211
NOT_MOBILE_TO = "+15005550009"  # 21614
OPTED_OUT_TO = "+15005550004"  # 21610
API_VERSION = "2010-04-01"


def _rfc2822(at: float | None = None) -> str:
    return email.utils.formatdate(at or time.time(), usegmt=False).replace("-0000", "+0000")


@dataclass
class FakeTwilio:
    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    url: str = ""
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    callbacks: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    recordings: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_next: list[tuple[int, int]] = field(default_factory=list)  # (status, code)
    send_callbacks: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Twilio Video (/video/v1/...): tests/twilio_video_fake.py, when a test installs it.
    video: Any = None

    # --- what a phone or the carrier does ------------------------------------------------------

    def signed_post(self, url: str, params: dict[str, str]) -> int:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        response = httpx.post(
            url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10
        )
        with self.lock:
            self.callbacks.append((url, params, response.status_code))
        return response.status_code

    def reply(self, sender: str, to: str, body: str) -> int:
        """A phone texts ``body`` to our number ``to``: Twilio posts it to the number's SmsUrl."""
        number = next(n for n in self.numbers.values() if n["phone_number"] == to)
        sid = "SM" + secrets.token_hex(16)
        params = {
            "ToCountry": "US",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": body,
            "To": to,
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": API_VERSION,
        }
        return self.signed_post(number["sms_url"], params)

    def _progress(self, sid: str) -> None:
        """The carrier's receipts: sent, then delivered (or undelivered 30003 for numbers
        ending in 0003), each a signed POST to the message's StatusCallback."""
        message = self.messages[sid]
        url = message.get("status_callback")
        final = "undelivered" if message["to"].endswith("0003") else "delivered"
        for status in ("sent", final):
            time.sleep(0.05)
            with self.lock:
                message["status"] = status
                message["date_updated"] = _rfc2822()
                if status == "undelivered":
                    message["error_code"] = 30003
            if url:
                params = {
                    "MessageSid": sid,
                    "SmsSid": sid,
                    "AccountSid": self.account_sid,
                    "From": message["from"],
                    "To": message["to"],
                    "MessageStatus": status,
                    "SmsStatus": status,
                    "ApiVersion": API_VERSION,
                }
                if status == "undelivered":
                    params["ErrorCode"] = "30003"
                self.signed_post(url, params)

    # --- the API --------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], form: dict[str, str], authorized: bool
    ) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
        if not authorized:
            return _error(401, 20003, "Authenticate")
        if self.fail_next:
            status, code = self.fail_next.pop(0)
            return _error(status, code, "Injected failure")
        if path.startswith("/video/v1/") and self.video is not None:
            answer: tuple[int, dict[str, Any]] = self.video.handle(method, path, query, form)
            return answer
        base = f"/api/{API_VERSION}/Accounts/{self.account_sid}"
        if path == f"{base}/Messages.json" and method == "POST":
            return self._create_message(form)
        if path == f"{base}/Messages.json" and method == "GET":
            rows = [m for m in self.messages.values() if m["to"] == query.get("To", m["to"])]
            return 200, _page("messages", rows, path)
        match = re.fullmatch(rf"{base}/Messages/(SM[0-9a-f]{{32}})\.json", path)
        if match and method == "GET":
            found = self.messages.get(match.group(1))
            if found is None:
                return _error(404, 20404, f"The requested resource {path} was not found")
            return 200, found
        match = re.fullmatch(rf"{base}/AvailablePhoneNumbers/([A-Z]{{2}})/Local\.json", path)
        if match and method == "GET":
            offers = self._available(match.group(1), query)
            return 200, _page("available_phone_numbers", offers, path)
        if path == f"{base}/IncomingPhoneNumbers.json" and method == "POST":
            return self._buy(form)
        if path == f"{base}/IncomingPhoneNumbers.json" and method == "GET":
            rows = [
                n
                for n in self.numbers.values()
                if n["phone_number"] == query.get("PhoneNumber", n["phone_number"])
            ]
            return 200, _page("incoming_phone_numbers", rows, path)
        match = re.fullmatch(rf"{base}/IncomingPhoneNumbers/(PN[0-9a-f]{{32}})\.json", path)
        if match and method == "POST":
            number = self.numbers.get(match.group(1))
            if number is None:
                return _error(404, 20404, f"The requested resource {path} was not found")
            if "SmsUrl" in form:
                number["sms_url"] = form["SmsUrl"]
            for name in ("VoiceUrl", "VoiceMethod", "StatusCallback", "StatusCallbackMethod"):
                if name in form:  # Twilio's snake_case keys in answers
                    number[re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()] = form[name]
            return 200, number
        if match and method == "DELETE":
            with self.lock:
                released = self.numbers.pop(match.group(1), None)
            if released is None:
                return _error(404, 20404, f"The requested resource {path} was not found")
            return 204, {}
        voice = self._voice(method, path, base, form)
        if voice is not None:
            return voice
        match = re.fullmatch(r"/lookups/v2/PhoneNumbers/([^/]+)", path)
        if match and method == "GET":
            return self._lookup(match.group(1))
        return _error(404, 20404, f"The requested resource {path} was not found")

    # --- voice: calls and recordings ----------------------------------------------------------

    def _voice(
        self, method: str, path: str, base: str, form: dict[str, str]
    ) -> tuple[int, Any] | None:
        missing = _error(404, 20404, f"The requested resource {path} was not found")
        if path == f"{base}/Calls.json" and method == "POST":
            for name in ("To", "From", "Url"):
                if not form.get(name):
                    return _error(400, 21205 if name == "Url" else 21201, f"{name} is required")
            sid = "CA" + secrets.token_hex(16)
            now = _rfc2822()
            call = {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form["To"],
                "from": form["From"],
                "status": "queued",
                "direction": "outbound-api",
                "url": form["Url"],
                "status_callback": form.get("StatusCallback"),
                "record": form.get("Record") == "true",
                "date_created": now,
                "date_updated": now,
                "api_version": API_VERSION,
            }
            with self.lock:
                self.calls[sid] = call
            return 201, call
        match = re.fullmatch(rf"{base}/Calls/(CA[0-9a-f]{{32}})\.json", path)
        if match:
            call = self.calls.get(match.group(1))
            if call is None:
                return missing
            if method == "POST":
                if call["status"] in ("completed", "canceled", "failed", "busy", "no-answer"):
                    return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
                with self.lock:
                    if "Url" in form:
                        call["url"] = form["Url"]
                        call.setdefault("redirects", []).append(form["Url"])
                    if form.get("Status") in ("completed", "canceled"):
                        call["status"] = form["Status"]
                    call["date_updated"] = _rfc2822()
            return 200, call
        match = re.fullmatch(rf"{base}/Recordings/(RE[0-9a-f]{{32}})\.(json|wav)", path)
        if match:
            recording = self.recordings.get(match.group(1))
            if recording is None:
                return missing
            if method == "DELETE":
                with self.lock:
                    self.recordings.pop(match.group(1), None)
                return 204, {}
            if match.group(2) == "wav":
                return 200, recording["audio"]
            return 200, {k: v for k, v in recording.items() if k != "audio"}
        return None

    def add_recording(self, call_sid: str, audio: bytes, duration: int) -> str:
        """A recording of a call, as Twilio keeps it (metadata, and its audio as .wav)."""
        sid = "RE" + secrets.token_hex(16)
        self.recordings[sid] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "call_sid": call_sid,
            "duration": str(duration),
            "status": "completed",
            "date_created": _rfc2822(),
            "api_version": API_VERSION,
            "audio": audio,
        }
        return sid

    def add_owned_number(self, phone: str) -> dict[str, Any]:
        """A number bought earlier in the Twilio console (for claim-number)."""
        sid = "PN" + secrets.token_hex(16)
        self.numbers[sid] = _incoming(sid, self.account_sid, phone, "")
        return self.numbers[sid]

    def _create_message(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body")
        if not body:
            return _error(400, 21602, "Message body is required.")
        try:
            valid = phonenumbers.is_valid_number(phonenumbers.parse(to, None))
        except phonenumbers.NumberParseException:
            valid = False
        if to == INVALID_TO or (not valid and not to.startswith("+1500555")):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to == NOT_MOBILE_TO:
            return _error(400, 21614, f"'To' number {to} is not a mobile number")
        if to == OPTED_OUT_TO:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        if not any(n["phone_number"] == sender for n in self.numbers.values()):
            return _error(
                400,
                21606,
                f"The From phone number {sender} is not a valid, SMS-capable inbound "
                "phone number or short code for your account.",
            )
        sid = "SM" + secrets.token_hex(16)
        now = _rfc2822()
        message = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "status_callback": form.get("StatusCallback"),
            "subresource_uris": {},
            "to": to,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        with self.lock:
            self.messages[sid] = message
        if self.send_callbacks:
            threading.Thread(target=self._progress, args=(sid,), daemon=True).start()
        return 201, message

    def _available(self, country: str, query: dict[str, str]) -> list[dict[str, Any]]:
        """Local numbers in the area code that the numbering plan says are valid there (US:
        ``+1 <area> 46N NNNN``; elsewhere after ``7946``, as London's drama numbers); none for
        a country without a numbering plan."""
        area = query.get("AreaCode", "415")
        calling_code = phonenumbers.country_code_for_region(country)
        example = phonenumbers.example_number_for_type(
            country, phonenumbers.PhoneNumberType.FIXED_LINE
        )
        if not calling_code or example is None:
            return []
        length = len(phonenumbers.national_significant_number(example))
        taken = {n["phone_number"] for n in self.numbers.values()}
        out = []
        prefix = "46" if country == "US" else "7946"
        digits = max(1, length - len(area) - len(prefix))
        for step in range(1, 60):
            phone = f"+{calling_code}{area}{prefix}{step * 1117 % 10**digits:0{digits}d}"
            parsed = phonenumbers.parse(phone, None)
            if (
                phone in taken
                or not phonenumbers.is_valid_number(parsed)
                or phonenumbers.region_code_for_number(parsed) != country
            ):
                continue
            out.append(
                {
                    "friendly_name": phonenumbers.format_number(
                        parsed, phonenumbers.PhoneNumberFormat.NATIONAL
                    ),
                    "phone_number": phone,
                    "lata": "722" if country == "US" else None,
                    "locality": "San Francisco" if country == "US" else None,
                    "rate_center": "SNFC CNTRL" if country == "US" else None,
                    "latitude": "37.774900",
                    "longitude": "-122.419400",
                    "region": "CA" if country == "US" else None,
                    "postal_code": "94103" if country == "US" else None,
                    "iso_country": country,
                    "address_requirements": "none",
                    "beta": False,
                    "capabilities": {"voice": True, "SMS": True, "MMS": country in ("US", "CA")},
                }
            )
        return out[: int(query.get("PageSize", "50"))]

    def _buy(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        phone = form.get("PhoneNumber", "")
        if any(n["phone_number"] == phone for n in self.numbers.values()):
            return _error(400, 21422, "PhoneNumber requested is not available")
        sid = "PN" + secrets.token_hex(16)
        number = _incoming(sid, self.account_sid, phone, form.get("SmsUrl", ""))
        with self.lock:
            self.numbers[sid] = number
        return 201, number

    def _lookup(self, phone: str) -> tuple[int, dict[str, Any]]:
        try:
            parsed = phonenumbers.parse(phone, None)
            valid = phonenumbers.is_valid_number(parsed)
        except phonenumbers.NumberParseException:
            return _error(404, 20404, f"The requested resource /PhoneNumbers/{phone} was not found")
        landline = phone.endswith("0199")
        return 200, {
            "calling_country_code": str(parsed.country_code),
            "country_code": phonenumbers.region_code_for_number(parsed),
            "phone_number": phone,
            "national_format": phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.NATIONAL
            ),
            "valid": valid,
            "validation_errors": [] if valid else ["INVALID_BUT_POSSIBLE"],
            "caller_name": None,
            "sim_swap": None,
            "call_forwarding": None,
            "line_type_intelligence": {
                "error_code": None,
                "mobile_country_code": None if landline else "310",
                "mobile_network_code": None if landline else "260",
                "carrier_name": "Pacific Bell" if landline else "T-Mobile USA, Inc.",
                "type": "landline" if landline else "mobile",
            },
            "url": f"https://lookups.twilio.com/v2/PhoneNumbers/{phone}",
        }


def _incoming(sid: str, account: str, phone: str, sms_url: str) -> dict[str, Any]:
    now = _rfc2822()
    return {
        "account_sid": account,
        "api_version": API_VERSION,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "date_created": now,
        "date_updated": now,
        "friendly_name": phone,
        "phone_number": phone,
        "sid": sid,
        "sms_method": "POST",
        "sms_url": sms_url,
        "status": "in-use",
        "uri": f"/{API_VERSION}/Accounts/{account}/IncomingPhoneNumbers/{sid}.json",
    }


def _page(key: str, rows: list[dict[str, Any]], path: str) -> dict[str, Any]:
    return {
        key: rows,
        "end": max(0, len(rows) - 1),
        "first_page_uri": path,
        "next_page_uri": None,
        "page": 0,
        "page_size": 50,
        "previous_page_uri": None,
        "start": 0,
        "uri": path,
        "meta": {"key": key, "next_page_url": None, "page": 0, "page_size": 50},
    }


def _error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def start_fake_twilio() -> Iterator[FakeTwilio]:
    """Serve a :class:`FakeTwilio` on 127.0.0.1 (a generator for pytest fixtures)."""
    import base64

    fake = FakeTwilio()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            expected = (
                "Basic "
                + base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
            )
            status, body = fake.handle(
                method,
                parts.path,
                dict(parse_qsl(parts.query)),
                dict(parse_qsl(raw)),
                self.headers.get("Authorization") == expected,
            )
            self.send_response(status)
            if status == 204:  # Twilio's answer to a DELETE: no body
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if isinstance(body, bytes):  # a recording's media
                self.send_header("Content-Type", "audio/x-wav")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            payload = orjson.dumps(body)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
