"""The speech sandbox: the offline engines (real speech, real recognition) plus failures on
demand, so a test can see how Courier behaves when the speech service is down."""

from __future__ import annotations

from collections.abc import Sequence

from courier.config import Settings
from courier.providers.sandbox_faults import raise_armed_fault
from courier.providers.sandbox_store import SandboxAdapter, SandboxStore
from courier.providers.speech.base import MAX_TEXT_CHARS, Audio, Transcript
from courier.providers.speech.offline import RECOGNITION_LOCALES, OfflineSpeech

SYNTHESIS = "synthesize"
RECOGNITION = "transcribe"


class SandboxSpeech(SandboxAdapter):
    name = "sandbox"
    max_text_chars = MAX_TEXT_CHARS
    recognition_locales = RECOGNITION_LOCALES

    def __init__(self, settings: Settings) -> None:
        self.store = SandboxStore(settings, "speech")
        self.engine = OfflineSpeech()

    @property
    def locales(self) -> frozenset[str]:
        return self.engine.locales

    async def synthesize(self, text: str, *, locale: str, voice: str | None = None) -> Audio:
        await raise_armed_fault(self.store, SYNTHESIS)
        return await self.engine.synthesize(text, locale=locale, voice=voice)

    async def transcribe(self, wav: bytes, *, locale: str, hints: Sequence[str] = ()) -> Transcript:
        await raise_armed_fault(self.store, RECOGNITION)
        return await self.engine.transcribe(wav, locale=locale, hints=hints)
