"""Speech: text to speech (prompts, the TTS endpoint) and speech to text (transcriptions,
spoken answers), from an engine that runs on this machine or a vendor.

Audio is WAV, 16-bit PCM, mono: what the telephone world and the recognisers take. Bad input
is a :class:`~courier.providers.common.Permanent` error whose ``code`` says which
(``unsupported-locale``, ``text-too-long``, ``empty-text``, ``bad-audio``, ``audio-too-long``),
so an endpoint turns it into a 400 naming the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from courier.providers.common import Permanent

MAX_TEXT_CHARS = 3000  # about four minutes of speech
MAX_AUDIO_SECONDS = 600.0


class SpeechInputError(Permanent):
    """Input the engine cannot take; ``code`` names why."""


@dataclass(frozen=True)
class Audio:
    wav: bytes
    sample_rate: int
    duration_seconds: float
    content_type: str = "audio/wav"


@dataclass(frozen=True)
class Transcript:
    text: str  # lower-case words, as recognisers return them
    confidence: float | None = None  # 0..1 when the engine says


@runtime_checkable
class SpeechEngine(Protocol):
    name: str
    recognition_locales: frozenset[str]  # BCP 47 tags it understands, e.g. "en-US"
    max_text_chars: int

    @property
    def locales(self) -> frozenset[str]:
        """The BCP 47 tags it speaks (a locale of a language it speaks also works)."""
        ...

    async def synthesize(self, text: str, *, locale: str, voice: str | None = None) -> Audio:
        """Speak ``text`` in ``locale`` (a voice of the engine's, or its default)."""
        ...

    async def transcribe(self, wav: bytes, *, locale: str, hints: Sequence[str] = ()) -> Transcript:
        """The words of a WAV recording. ``hints``, when given, are the phrases expected
        (a menu's answers, like Twilio's ``<Gather hints>``): the result is one of them, or
        empty when nothing matched."""
        ...
