"""The voice sandbox: a telephone network that speaks Twilio's call webhooks.

A call (placed by Courier, or made to one of its lines from the control surface: "call this
line from +1…, press 2, wait, hang up") is walked through the very webhooks Twilio sends:
the call webhook with ``CallStatus`` and the TwiML it answers is followed (``<Say>``,
``<Play>``, ``<Gather>``, ``<Record>``, ``<Redirect>``, ``<Dial>``, ``<Enqueue>``,
``<Hangup>``, ``<Reject>``); a Gather's ``action`` gets ``Digits`` or ``SpeechResult``; a
Record's gets ``RecordingUrl`` and, with ``transcribe``, its ``transcribeCallback`` gets the
words the offline recogniser found in the recording (which holds what the caller said, spoken
by the speech engine); the status callback gets ``completed``/``busy``/``no-answer`` with the
duration. Every request is signed as Twilio signs (``X-Twilio-Signature``), with the sandbox's
auth token. Time is simulated: ``wait`` advances it, nothing sleeps.

Reserved numbers (US 555-01xx) pick an outbound call's fate: ``…0102`` busy, ``…0103`` no
answer, ``…0104`` failed; any other number rings until answered from the control surface.
"""

from __future__ import annotations

import base64
import io
import logging
import uuid
import wave
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from courier.config import Settings
from courier.core import outbound
from courier.core.phone import check_e164
from courier.core.time import utcnow
from courier.providers.common import (
    InboundEvent,
    Permanent,
    ProviderError,
    RawRequest,
    SandboxContext,
    SendResult,
    VendorStatus,
    check_sandbox_token,
    public_base,
    sandbox_signing_key,
    sandbox_token,
)
from courier.providers.sandbox_faults import CONTROL_PARAMS, raise_armed_fault, refused
from courier.providers.sandbox_store import SandboxAdapter, SandboxStore
from courier.providers.speech.offline import resample
from courier.providers.twilio_signature import SIGNATURE_HEADER, sign_twilio, verify_twilio
from courier.providers.voice.base import (
    CALL_STATUSES,
    FINAL_CALL_STATUSES,
    MAX_VOICE_IDENTITY,
    MAX_VOICE_TOKEN_TTL,
    OutboundCall,
    Recording,
    VoiceGrant,
)
from courier.providers.voice.wire import API_VERSION, parse_call_webhook

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    import httpx

log = logging.getLogger("courier.providers.voice.sandbox")

ACCOUNT_SID = "AC" + "0" * 32
TOKEN_ISSUER = "courier-sandbox-voice"
RESERVED_FATES = {"02": "busy", "03": "no-answer", "04": "failed"}
SAMPLE_RATE = 22050  # eSpeak NG's rate: recordings hold what the caller said, unresampled
MAX_TWIML_HOPS = 20  # <Redirect> loops end here


def sandbox_auth_token(settings: Settings) -> str:
    """The sandbox's Twilio auth token: what ``X-Twilio-Signature`` is computed with."""
    return sandbox_signing_key(settings).hex()[:32]


def _reserved_fate(number: str) -> str | None:
    digits = number.lstrip("+")
    if digits.startswith("1") and len(digits) == 11 and digits[4:9] == "55501":
        return RESERVED_FATES.get(digits[-2:])
    return None


def _silence(seconds: float) -> bytes:
    return b"\0\0" * int(SAMPLE_RATE * seconds)


class SandboxVoice(SandboxAdapter):
    name = "sandbox"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = SandboxStore(settings, "voice")
        self.auth_token = sandbox_auth_token(settings)

    # --- the Protocol -----------------------------------------------------------------------

    async def place_call(self, call: OutboundCall, *, delivery_id: uuid.UUID) -> SendResult:
        to = _number(call.to, "21211")
        source = _number(call.from_, "21212")
        await raise_armed_fault(self.store, to)
        sid = f"CA{uuid.uuid4().hex}"
        now = utcnow()
        await self.store.put(
            "calls",
            sid,
            {
                "sid": sid,
                "direction": "outbound-api",
                "from": source,
                "to": to,
                "status": "queued",
                "url": call.url,
                "status-callback-url": call.status_callback_url,
                "record": call.record,
                "delivery-id": str(delivery_id),
                "created-at": now.isoformat(),
                "elapsed": 0.0,
                "answered-at": None,
                "said": [],
                "pending": None,
            },
        )
        fate = _reserved_fate(to)
        self.store.later(self._ring(sid, fate))
        return SendResult(vendor_id=sid, vendor_status="queued", accepted_at=now)

    async def hang_up(self, vendor_id: str) -> None:
        call = await self.store.get("calls", vendor_id)
        if call is not None and call["status"] not in FINAL_CALL_STATUSES:
            await self._end(call, "completed" if call["answered-at"] else "canceled")

    async def redirect(self, vendor_id: str, url: str) -> None:
        call = await self._call(vendor_id)
        if call["status"] != "in-progress":
            raise Permanent("21220", "the call is not in progress")
        await self.store.merge("calls", vendor_id, {"pending": None, "url": url})
        await self._fetch_twiml(await self._call(vendor_id), url, {})

    async def fetch(self, vendor_id: str) -> VendorStatus | None:
        call = await self.store.get("calls", vendor_id)
        if call is None:
            return None
        status = CALL_STATUSES.get(call["status"])
        if status is None:
            from courier.providers.common import DeliveryStatus

            status = DeliveryStatus.SENT
        return VendorStatus(vendor_id=vendor_id, status=status, vendor_status=call["status"])

    async def configure_line(
        self, number: str, *, voice_url: str, status_callback_url: str | None = None
    ) -> None:
        key = _number(number, "21421")
        line = {
            "number": key,
            "voice-url": voice_url,
            "status-callback-url": status_callback_url,
        }
        if await self.store.get("lines", key) is None:
            await self.store.put("lines", key, line)
        else:
            await self.store.merge("lines", key, line)

    async def recording(self, vendor_id: str) -> Recording:
        held = await self.store.get("recordings", vendor_id)
        if held is None:
            raise Permanent("20404", f"no recording {vendor_id}")
        return Recording(
            vendor_id=vendor_id,
            content_type="audio/wav",
            audio=base64.b64decode(held["audio"]),
            duration_seconds=float(held["duration"]),
        )

    async def delete_recording(self, vendor_id: str) -> None:
        await self.store.remove("recordings", vendor_id)

    def access_token(self, identity: str, *, ttl: timedelta, room: str | None = None) -> VoiceGrant:
        if not identity or len(identity) > MAX_VOICE_IDENTITY:
            raise Permanent("20101", f"an identity is 1 to {MAX_VOICE_IDENTITY} characters")
        if not timedelta(seconds=1) <= ttl <= MAX_VOICE_TOKEN_TTL:
            raise Permanent("20101", "a token lives 1 second to 24 hours")
        voice: dict[str, Any] = {"incoming": {"allow": True}}
        if room is not None:
            voice["outgoing"] = {"params": {"room": room}}
        token, expires = sandbox_token(  # the shape of Twilio's AccessToken
            self.settings,
            issuer=TOKEN_ISSUER,
            subject=ACCOUNT_SID,
            ttl=ttl,
            grants={"identity": identity, "voice": voice},
        )
        return VoiceGrant(token=token, identity=identity, expires_at=expires, room=room)

    def check_token(self, token: str) -> dict[str, Any]:
        """The claims of a client token this sandbox issued and that is still valid."""
        return check_sandbox_token(self.settings, token, issuer=TOKEN_ISSUER)

    def verify(self, request: RawRequest) -> bool:
        return verify_twilio(self.auth_token, request)

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        return parse_call_webhook(request)

    async def idle(self) -> None:
        await self.store.idle()

    # --- the outside world ------------------------------------------------------------------

    async def dial_in(self, source: str, line: str) -> dict[str, Any]:
        """A phone calls one of Courier's lines: the line's call webhook answers."""
        source, line = _number(source, "21212"), _number(line, "21211")
        configured = await self.store.get("lines", line)
        if configured is None:
            raise Permanent("21421", f"{line} is not a line of this Courier (configure_line)")
        sid = f"CA{uuid.uuid4().hex}"
        call = {
            "sid": sid,
            "direction": "inbound",
            "from": source,
            "to": line,
            "status": "ringing",
            "url": configured["voice-url"],
            "status-callback-url": configured["status-callback-url"],
            "record": False,
            "delivery-id": None,
            "created-at": utcnow().isoformat(),
            "elapsed": 0.0,
            "answered-at": 0.0,
            "said": [],
            "pending": None,
        }
        await self.store.put("calls", sid, call)
        await self._fetch_twiml(call, configured["voice-url"], {})
        return await self.describe(sid)

    async def answer(self, sid: str) -> dict[str, Any]:
        call = await self._call(sid)
        if call["status"] not in ("queued", "ringing"):
            raise Permanent("21220", f"the call is {call['status']}, not ringing")
        await self.store.merge(
            "calls", sid, {"status": "in-progress", "answered-at": call["elapsed"]}
        )
        call = await self._call(sid)
        await self._status(call, "in-progress")
        await self._fetch_twiml(call, call["url"], {})
        return await self.describe(sid)

    async def reject(self, sid: str, fate: str) -> dict[str, Any]:
        call = await self._call(sid)
        if call["status"] not in ("queued", "ringing"):
            raise Permanent("21220", f"the call is {call['status']}, not ringing")
        await self._end(call, fate)
        return await self.describe(sid)

    async def press(self, sid: str, digits: str) -> dict[str, Any]:
        call = await self._live(sid)
        pending = call["pending"] or {}
        if pending.get("verb") == "Record" and digits and digits[-1] in pending["finish"]:
            await self._finish_recording(call)
        elif pending.get("verb") == "Gather" and "dtmf" in pending["input"]:
            await self.store.merge("calls", sid, {"pending": None})
            await self._fetch_twiml(call, pending["action"], {"Digits": digits})
        else:
            raise Permanent("21220", "nobody is listening for digits now")
        return await self.describe(sid)

    async def say(self, sid: str, text: str) -> dict[str, Any]:
        call = await self._live(sid)
        pending = call["pending"] or {}
        if pending.get("verb") == "Gather" and "speech" in pending["input"]:
            await self.store.merge("calls", sid, {"pending": None})
            await self._fetch_twiml(
                call, pending["action"], {"SpeechResult": text, "Confidence": "0.92"}
            )
        elif pending.get("verb") in ("Record", "Dial") and (
            pending["verb"] == "Record" or pending.get("answered")
        ):
            audio = await self._speak(text)
            if pending["verb"] == "Record" or pending.get("record"):
                held = base64.b64decode(pending["audio"])
                pending["audio"] = base64.b64encode(held + audio).decode()
            seconds = len(audio) / 2 / SAMPLE_RATE
            await self.store.merge(
                "calls", sid, {"pending": pending, "elapsed": call["elapsed"] + seconds}
            )
        else:
            raise Permanent("21220", "nobody is listening for speech now")
        return await self.describe(sid)

    async def wait(self, sid: str, seconds: float) -> dict[str, Any]:
        call = await self._live(sid)
        pending = call["pending"] or {}
        elapsed = call["elapsed"] + seconds
        if pending.get("verb") == "Record" or (pending.get("answered") and pending.get("record")):
            pending["audio"] = base64.b64encode(
                base64.b64decode(pending["audio"]) + _silence(seconds)
            ).decode()
        await self.store.merge("calls", sid, {"elapsed": elapsed, "pending": pending or None})
        call = await self._call(sid)
        if pending.get("verb") == "Gather" and seconds >= pending["timeout"]:
            # No input: TwiML goes on with the verbs after the <Gather>.
            await self.store.merge("calls", sid, {"pending": None})
            await self._follow(call, pending["rest"], call["url"])
        elif pending.get("verb") == "Record" and seconds >= pending["timeout"]:
            await self._finish_recording(call)
        return await self.describe(sid)

    async def hang_up_phone(self, sid: str) -> dict[str, Any]:
        call = await self._call(sid)
        if call["status"] in FINAL_CALL_STATUSES:
            raise Permanent("21220", f"the call is already {call['status']}")
        await self._end(call, "completed" if call["status"] == "in-progress" else "canceled")
        return await self.describe(sid)

    async def describe(self, sid: str) -> dict[str, Any]:
        call = await self._call(sid)
        pending = call["pending"] or {}
        return {
            "call-sid": sid,
            "direction": call["direction"],
            "from": call["from"],
            "to": call["to"],
            "status": call["status"],
            "said": call["said"],
            "waiting-for": _waiting_for(pending),
            "elapsed-seconds": round(call["elapsed"], 3),
            "recordings": [
                r["sid"] for r in await self.store.all("recordings") if r["call-sid"] == sid
            ],
        }

    async def client_answer(self, sid: str, token: str | None = None) -> dict[str, Any]:
        """The party a caller's ``<Dial>`` rings picks up: the browser client named in
        ``<Client>`` (with ``token``, only a valid access token of that identity may), or the
        phone of ``<Number>``. From then on what the caller says is recorded when the
        ``<Dial>`` records."""
        call = await self._live(sid)
        pending = call["pending"] or {}
        if pending.get("verb") != "Dial" or pending.get("answered"):
            raise Permanent("21220", "the call is not ringing anyone now")
        if token is not None:
            claims = self.check_token(token)
            identity = claims.get("grants", {}).get("identity")
            if pending.get("client") != identity:
                raise Permanent("20101", f"the token is for {identity!r}, not the dialled client")
        pending.update({"answered": True, "started": call["elapsed"]})
        party = f"client:{pending['client']}" if pending.get("client") else pending.get("number")
        await self.store.merge("calls", sid, {"pending": pending})
        await self._note(sid, f"[connected to {party}]")
        return await self.describe(sid)

    async def _finish_dial_recording(self, call: dict[str, Any]) -> None:
        """The end of a recorded ``<Dial>``: the recording and its status callback."""
        pending = call["pending"] or {}
        audio = base64.b64decode(pending.get("audio", ""))
        duration = len(audio) / 2 / SAMPLE_RATE
        recording_sid = f"RE{uuid.uuid4().hex}"
        await self.store.put(
            "recordings",
            recording_sid,
            {
                "sid": recording_sid,
                "call-sid": call["sid"],
                "audio": base64.b64encode(_wav(audio)).decode(),
                "duration": duration,
                "transcription": None,
            },
        )
        await self.store.merge("calls", call["sid"], {"pending": None})
        if pending.get("recording-status-callback"):
            await self._post(
                pending["recording-status-callback"],
                {
                    **self._params(call),
                    "RecordingSid": recording_sid,
                    "RecordingUrl": f"{public_base(self.settings)}/sandbox/voice/recording"
                    f"?sid={recording_sid}",
                    "RecordingDuration": str(round(duration)),
                    "RecordingStatus": "completed",
                    "RecordingSource": "DialVerb",
                },
            )

    # --- inside -----------------------------------------------------------------------------

    async def _call(self, sid: str) -> dict[str, Any]:
        call = await self.store.get("calls", sid)
        if call is None:
            raise Permanent("20404", f"no call {sid}")
        return call

    async def _live(self, sid: str) -> dict[str, Any]:
        call = await self._call(sid)
        if call["status"] != "in-progress":
            raise Permanent("21220", f"the call is {call['status']}, not in progress")
        return call

    async def _ring(self, sid: str, fate: str | None) -> None:
        call = await self._call(sid)
        await self.store.merge("calls", sid, {"status": "ringing"})
        await self._status({**call, "status": "ringing"}, "ringing")
        if fate is not None:
            await self._end(await self._call(sid), fate)

    def _params(self, call: dict[str, Any], status: str | None = None) -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": API_VERSION,
            "CallSid": call["sid"],
            "CallStatus": status or call["status"],
            "Direction": call["direction"],
            "From": call["from"],
            "To": call["to"],
            "Caller": call["from"],
            "Called": call["to"],
        }

    async def _post(self, url: str, params: dict[str, str]) -> httpx.Response | None:
        """POST a Twilio-signed form to ``url`` (only this Courier's own URLs)."""
        if not self.store.allowed(url):
            raise Permanent("21609", f"the sandbox only calls {public_base(self.settings)}")
        pairs = list(params.items())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: sign_twilio(self.auth_token, url, pairs),
            "User-Agent": "TwilioProxy/1.1 (courier-sandbox-voice)",
        }
        import httpx  # on first use (the client is built on first use too)

        try:
            async with outbound.client(timeout=10.0) as client:
                return await client.post(url, content=urlencode(pairs).encode(), headers=headers)
        except httpx.HTTPError as exc:
            log.warning("sandbox call webhook not delivered", extra={"error": type(exc).__name__})
            return None

    async def _status(self, call: dict[str, Any], status: str, **extra: str) -> None:
        url = call["status-callback-url"]
        if url:
            await self._post(url, {**self._params(call, status), **extra})

    async def _end(self, call: dict[str, Any], status: str) -> None:
        pending = call["pending"] or {}
        if pending.get("verb") == "Record" and status == "completed":
            await self._finish_recording(call, hung_up=True)
            call = await self._call(call["sid"])
        elif pending.get("verb") == "Dial" and pending.get("answered") and pending.get("record"):
            await self._finish_dial_recording(call)
            call = await self._call(call["sid"])
        answered = call["answered-at"]
        duration = int(call["elapsed"] - answered) if answered is not None else 0
        await self.store.merge("calls", call["sid"], {"status": status, "pending": None})
        extra = {"CallDuration": str(duration)} if status == "completed" else {}
        await self._status({**call, "status": status}, status, **extra)

    async def _fetch_twiml(self, call: dict[str, Any], url: str, extra: dict[str, str]) -> None:
        response = await self._post(url, {**self._params(call), **extra})
        if response is None or response.status_code >= 400:
            code = "11200" if response is None else str(response.status_code)
            await self._note(call["sid"], f"[application error {code}]")
            await self._end(await self._call(call["sid"]), "completed")
            return
        await self.store.merge("calls", call["sid"], {"url": url})
        await self._follow(await self._call(call["sid"]), response.text, url)

    async def _note(self, sid: str, line: str) -> None:
        call = await self._call(sid)
        await self.store.merge("calls", sid, {"said": [*call["said"], line]})

    async def _follow(self, call: dict[str, Any], twiml: str, url: str, hops: int = 0) -> None:
        """Carry out TwiML verbs in order, until one waits for the caller or ends the call."""
        import xml.etree.ElementTree as ET  # on first use: only the sandbox's calls read TwiML

        sid = call["sid"]
        try:
            verbs = list(ET.fromstring(twiml)) if twiml.strip() else []
        except ET.ParseError:
            await self._note(sid, "[application error 12100: malformed TwiML]")
            await self._end(await self._call(sid), "completed")
            return
        if call["status"] == "ringing" and call["direction"] == "inbound":
            await self.store.merge("calls", sid, {"status": "in-progress"})
        for index, verb in enumerate(verbs):
            rest = (
                "<Response>"
                + "".join(ET.tostring(v, encoding="unicode") for v in verbs[index + 1 :])
                + "</Response>"
            )
            action = verb.get("action") or url
            if verb.tag in ("Say", "Play"):
                await self._note(sid, _spoken(verb))
            elif verb.tag == "Pause":
                call = await self._call(sid)
                await self.store.merge(
                    "calls", sid, {"elapsed": call["elapsed"] + float(verb.get("length", "1"))}
                )
            elif verb.tag == "Gather":
                for inner in verb:
                    if inner.tag in ("Say", "Play"):
                        await self._note(sid, _spoken(inner))
                pending = {
                    "verb": "Gather",
                    "input": verb.get("input", "dtmf").split(),
                    "action": action,
                    "timeout": float(verb.get("timeout", "5")),
                    "rest": rest,
                }
                await self.store.merge("calls", sid, {"pending": pending})
                return
            elif verb.tag == "Record":
                pending = {
                    "verb": "Record",
                    "action": action,
                    "timeout": float(verb.get("timeout", "5")),
                    "max-length": float(verb.get("maxLength", "3600")),
                    "finish": verb.get("finishOnKey", "1234567890*#"),
                    "transcribe": verb.get("transcribe", "false") == "true",
                    "transcribe-callback": verb.get("transcribeCallback"),
                    "status-callback": verb.get("recordingStatusCallback"),
                    "audio": base64.b64encode(b"").decode(),
                    "started": (await self._call(sid))["elapsed"],
                }
                await self.store.merge("calls", sid, {"pending": pending})
                return
            elif verb.tag == "Redirect":
                if hops >= MAX_TWIML_HOPS:
                    break
                await self._fetch_twiml(await self._call(sid), (verb.text or "").strip(), {})
                return
            elif verb.tag in ("Dial", "Enqueue"):
                target = " ".join((verb.text or "").split()) or ",".join(
                    (child.text or "").strip() for child in verb
                )
                await self._note(sid, f"[{verb.tag.lower()} {target}]")
                pending = {"verb": verb.tag}
                if verb.tag == "Dial":
                    pending = _dial_pending(verb, action)
                await self.store.merge("calls", sid, {"pending": pending})
                return
            elif verb.tag == "Reject":
                fate = "busy" if verb.get("reason") == "busy" else "no-answer"
                await self._end(await self._call(sid), fate)
                return
            elif verb.tag == "Hangup":
                break
        await self._end(await self._call(sid), "completed")

    async def _speak(self, text: str) -> bytes:
        """What the caller says, as audio from the speech engine."""
        from courier.providers.common import providers_for
        from courier.providers.speech import SPEECH

        engine = providers_for(self.settings).get(SPEECH)
        spoken = await engine.synthesize(text, locale="en-US")
        with wave.open(io.BytesIO(spoken.wav), "rb") as source:
            rate, frames = source.getframerate(), source.readframes(source.getnframes())
        return resample(frames, rate, SAMPLE_RATE)

    async def _finish_recording(self, call: dict[str, Any], *, hung_up: bool = False) -> None:
        pending = call["pending"] or {}
        sid = call["sid"]
        audio = base64.b64decode(pending.get("audio", ""))
        duration = len(audio) / 2 / SAMPLE_RATE
        recording_sid = f"RE{uuid.uuid4().hex}"
        wav = _wav(audio)
        await self.store.put(
            "recordings",
            recording_sid,
            {
                "sid": recording_sid,
                "call-sid": sid,
                "audio": base64.b64encode(wav).decode(),
                "duration": duration,
                "transcription": None,
            },
        )
        await self.store.merge("calls", sid, {"pending": None})
        recording_url = f"{public_base(self.settings)}/sandbox/voice/recording?sid={recording_sid}"
        params = {
            **self._params(call),
            "RecordingSid": recording_sid,
            "RecordingUrl": recording_url,
            "RecordingDuration": str(round(duration)),
            "RecordingStatus": "completed",
        }
        if pending.get("status-callback"):
            await self._post(pending["status-callback"], params)
        if pending.get("transcribe") and pending.get("transcribe-callback"):
            await self._transcribe(call, recording_sid, wav, pending["transcribe-callback"])
        if hung_up:
            await self._post(pending["action"], {**params, "CallStatus": "completed"})
        else:
            await self._fetch_twiml(
                await self._call(sid),
                pending["action"],
                {k: v for k, v in params.items() if k.startswith("Recording")},
            )

    async def _transcribe(
        self, call: dict[str, Any], recording_sid: str, wav: bytes, url: str
    ) -> None:
        from courier.providers.common import providers_for
        from courier.providers.speech import SPEECH

        engine = providers_for(self.settings).get(SPEECH)
        try:
            text, status = (await engine.transcribe(wav, locale="en-US")).text, "completed"
        except ProviderError:
            text, status = "", "failed"
        await self.store.merge("recordings", recording_sid, {"transcription": text})
        await self._post(
            url,
            {
                **self._params(call),
                "RecordingSid": recording_sid,
                "TranscriptionSid": f"TR{uuid.uuid4().hex}",
                "TranscriptionStatus": status,
                "TranscriptionText": text,
            },
        )


def _dial_pending(verb: ET.Element, action: str) -> dict[str, Any]:
    clients = [(c.text or "").strip() for c in verb if c.tag == "Client"]
    numbers = [(c.text or "").strip() for c in verb if c.tag == "Number"]
    if not clients and not numbers and (verb.text or "").strip():
        numbers = [(verb.text or "").strip()]
    return {
        "verb": "Dial",
        "client": clients[0] if clients else None,
        "number": numbers[0] if numbers else None,
        "answered": False,
        "record": verb.get("record", "do-not-record") != "do-not-record",
        "recording-status-callback": verb.get("recordingStatusCallback"),
        "action": verb.get("action") or None,
        "audio": "",
    }


def _waiting_for(pending: dict[str, Any]) -> str | None:
    match pending.get("verb"):
        case "Gather":
            return " or ".join("digits" if i == "dtmf" else i for i in pending["input"])
        case "Record":
            return "recording"
        case "Dial":
            return "talking" if pending.get("answered") else "connected"
        case "Enqueue":
            return "connected"
    return None


def _spoken(verb: ET.Element) -> str:
    if verb.tag == "Play":
        return f"[play {(verb.text or '').strip()}]"
    return " ".join((verb.text or "").split())


def _number(value: str, code: str) -> str:
    try:
        return check_e164(value)
    except ValueError as error:
        raise Permanent(code, f"{value!r} is not an E.164 phone number") from error


def _wav(pcm: bytes) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return buffer.getvalue()


# --- controls (served as /sandbox/voice/..., `courier sandbox voice ...`) ----------------------


class DialInParams(BaseModel):
    model_config = CONTROL_PARAMS
    from_: str = Field(alias="from", description="The caller's number (E.164).")
    to: str = Field(description="The Courier line called (E.164).")


class CallParams(BaseModel):
    model_config = CONTROL_PARAMS
    call: str = Field(min_length=34, max_length=34, description="The call's sid (CA…).")


class DigitsParams(CallParams):
    digits: str = Field(pattern=r"^[0-9*#w]{1,32}$", description="Keys pressed, e.g. 2 or 1234#.")


class SpeechParams(CallParams):
    text: str = Field(min_length=1, max_length=1000, description="What the caller says.")


class WaitParams(CallParams):
    seconds: float = Field(gt=0, le=3600, description="Simulated seconds of silence.")


class RejectParams(CallParams):
    status: str = Field(pattern="^(busy|no-answer|failed)$", description="busy, no-answer, failed.")


class ClientAnswerParams(CallParams):
    token: str | None = Field(
        default=None,
        max_length=4096,
        description="The browser client's access token (checked against the dialled identity).",
    )


class RecordingParams(BaseModel):
    model_config = CONTROL_PARAMS
    sid: str = Field(min_length=34, max_length=34, description="The recording's sid (RE…).")


def _adapter(ctx: SandboxContext) -> SandboxVoice:
    adapter: SandboxVoice = ctx.adapter
    return adapter


async def call_line(ctx: SandboxContext, params: DialInParams) -> dict[str, Any]:
    return await refused(_adapter(ctx).dial_in(params.from_, params.to))


async def answer_call(ctx: SandboxContext, params: CallParams) -> dict[str, Any]:
    return await refused(_adapter(ctx).answer(params.call))


async def reject_call(ctx: SandboxContext, params: RejectParams) -> dict[str, Any]:
    return await refused(_adapter(ctx).reject(params.call, params.status))


async def press_digits(ctx: SandboxContext, params: DigitsParams) -> dict[str, Any]:
    return await refused(_adapter(ctx).press(params.call, params.digits.replace("w", "")))


async def say_words(ctx: SandboxContext, params: SpeechParams) -> dict[str, Any]:
    return await refused(_adapter(ctx).say(params.call, params.text))


async def wait_silently(ctx: SandboxContext, params: WaitParams) -> dict[str, Any]:
    return await refused(_adapter(ctx).wait(params.call, params.seconds))


async def hang_up_call(ctx: SandboxContext, params: CallParams) -> dict[str, Any]:
    return await refused(_adapter(ctx).hang_up_phone(params.call))


async def client_answer(ctx: SandboxContext, params: ClientAnswerParams) -> dict[str, Any]:
    return await refused(_adapter(ctx).client_answer(params.call, params.token))


async def show_call(ctx: SandboxContext, params: CallParams) -> dict[str, Any]:
    return await refused(_adapter(ctx).describe(params.call))


async def show_recording(ctx: SandboxContext, params: RecordingParams) -> dict[str, Any]:
    adapter = _adapter(ctx)
    recording = await refused(adapter.recording(params.sid))
    held = await adapter.store.get("recordings", params.sid) or {}
    return {
        "sid": recording.vendor_id,
        "content-type": recording.content_type,
        "duration-seconds": round(recording.duration_seconds, 3),
        "audio-base64": base64.b64encode(recording.audio).decode(),
        "transcription": held.get("transcription"),
    }
