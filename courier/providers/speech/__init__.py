"""Speech (text to speech, speech to text): the ``speech`` provider kind.

``COURIER_SPEECH_PROVIDER``: ``sandbox`` (default: the offline engines, plus failures on
demand) or ``offline`` (eSpeak NG and PocketSphinx in this process, nothing else).
"""

from __future__ import annotations

from courier.config import Settings
from courier.providers.common import ProviderKind
from courier.providers.sandbox_faults import FaultParams, fail_next
from courier.providers.speech import sandbox
from courier.providers.speech.base import (
    Audio,
    SpeechEngine,
    SpeechInputError,
    Transcript,
)
from courier.providers.speech.offline import OfflineSpeech

SPEECH: ProviderKind[SpeechEngine] = ProviderKind("speech", setting="speech_provider")


@SPEECH.adapter("sandbox")
def _sandbox(settings: Settings) -> SpeechEngine:
    return sandbox.SandboxSpeech(settings)


@SPEECH.adapter("offline")
def _offline(settings: Settings) -> SpeechEngine:
    return OfflineSpeech()


SPEECH.sandbox_action(
    "fail-next",
    path="failures",
    params=FaultParams,
    summary="Make the next synthesis (target 'synthesize') or transcription (target "
    "'transcribe'), else either, fail with the given error.",
)(fail_next)

__all__ = ["SPEECH", "Audio", "OfflineSpeech", "SpeechEngine", "SpeechInputError", "Transcript"]
