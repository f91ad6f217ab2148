"""Telephone calls: the ``voice`` provider kind.

``COURIER_VOICE_PROVIDER=sandbox`` (default) or ``twilio`` (``twilio.py``); both speak
Twilio's call webhooks (``wire.py``).
"""

from __future__ import annotations

from courier.config import Settings
from courier.providers.common import ProviderKind
from courier.providers.sandbox_faults import FaultParams, fail_next
from courier.providers.voice import sandbox
from courier.providers.voice.base import OutboundCall, Recording, VoiceProvider

VOICE: ProviderKind[VoiceProvider] = ProviderKind("voice", setting="voice_provider")


@VOICE.adapter("sandbox")
def _sandbox(settings: Settings) -> VoiceProvider:
    return sandbox.SandboxVoice(settings)


@VOICE.adapter("twilio")
def _twilio(settings: Settings) -> VoiceProvider:
    from courier.providers.voice.twilio import TwilioVoice

    return TwilioVoice(settings)


for _name, _path, _method, _params, _handler, _summary in (
    ("call", "call", "POST", sandbox.DialInParams, sandbox.call_line,
     "A phone calls one of Courier's lines (from, to); the line's TwiML is followed."),
    ("answer", "answer", "POST", sandbox.CallParams, sandbox.answer_call,
     "The callee picks up a ringing call placed by Courier."),
    ("reject", "reject", "POST", sandbox.RejectParams, sandbox.reject_call,
     "A ringing call ends busy, unanswered (no-answer) or failed."),
    ("press", "press", "POST", sandbox.DigitsParams, sandbox.press_digits,
     "The caller presses keys (a Gather's Digits, or a Record's finish key)."),
    ("say", "say", "POST", sandbox.SpeechParams, sandbox.say_words,
     "The caller speaks (a Gather's SpeechResult, or words into a recording)."),
    ("wait", "wait", "POST", sandbox.WaitParams, sandbox.wait_silently,
     "Simulated silence: a Gather or Record times out."),
    ("hang-up", "hang-up", "POST", sandbox.CallParams, sandbox.hang_up_call,
     "The caller hangs up (a recording in progress is completed)."),
    ("client-answer", "client-answer", "POST", sandbox.ClientAnswerParams, sandbox.client_answer,
     "The browser client (or phone) a caller's <Dial> rings picks up (token: its access token)."),
    ("show", "calls", "GET", sandbox.CallParams, sandbox.show_call,
     "A call's state: what it heard, what it waits for."),
    ("recording", "recording", "GET", sandbox.RecordingParams, sandbox.show_recording,
     "A recording's audio (WAV, base64) and transcription."),
    ("fail-next", "failures", "POST", FaultParams, fail_next,
     "Make the next call placed (to a number, else any) fail with the given error."),
):  # fmt: skip
    VOICE.sandbox_action(
        _name,
        path=_path,
        method="GET" if _method == "GET" else "POST",
        params=_params,
        summary=_summary,
    )(_handler)

__all__ = ["VOICE", "OutboundCall", "Recording", "VoiceProvider"]
