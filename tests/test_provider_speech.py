"""The speech kind's contract: real speech from text, real words from speech, offline.
A known sentence is spoken, decoded as WAV, and transcribed back; bad input is refused with
a code an endpoint turns into a clear 400."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable

import pytest

from courier.config import Settings
from courier.providers.common import NotSent, Providers
from courier.providers.speech import SPEECH, SpeechEngine, SpeechInputError
from courier.providers.speech.base import MAX_TEXT_CHARS
from tests import provider_kinds_support as support
from tests.provider_kinds_support import World

receiver, world = support.receiver, support.world  # the module's fixtures
ADAPTERS = ["sandbox", "offline"]
SENTENCE = "please call the clinic tomorrow morning"


@pytest.fixture(params=ADAPTERS)
def speech(
    request: pytest.FixtureRequest, world: World, own_providers: Callable[[Settings], Providers]
) -> SpeechEngine:
    settings = world.settings.model_copy(update={"speech_provider": request.param})
    engine: SpeechEngine = own_providers(settings).get(SPEECH)
    assert isinstance(engine, SpeechEngine)
    return engine


async def test_speak_then_hear_a_known_sentence(speech: SpeechEngine) -> None:
    audio = await speech.synthesize(SENTENCE, locale="en-US")
    with wave.open(io.BytesIO(audio.wav), "rb") as decoded:
        assert decoded.getnchannels() == 1 and decoded.getsampwidth() == 2
        seconds = decoded.getnframes() / decoded.getframerate()
    # Six words of speech: a couple of seconds, not silence and not minutes.
    assert 1.0 < seconds < 8.0 and abs(seconds - audio.duration_seconds) < 0.01
    heard = await speech.transcribe(audio.wav, locale="en-US")
    assert {"tomorrow", "morning"} <= set(heard.text.split()), heard.text


async def test_hints_pick_the_phrase_said(speech: SpeechEngine) -> None:
    audio = await speech.synthesize("I would like to speak to a nurse", locale="en-US")
    heard = await speech.transcribe(
        audio.wav, locale="en-US", hints=["yes", "no", "speak to a nurse", "billing"]
    )
    assert heard.text == "speak to a nurse"


async def test_other_languages_are_spoken(speech: SpeechEngine) -> None:
    assert "en-US" in speech.locales
    spanish = await speech.synthesize("su cita es mañana a las diez", locale="es-MX")
    assert spanish.duration_seconds > 1.0


@pytest.mark.parametrize(
    ("text", "locale", "code"),
    [
        ("hello", "xx-YY", "unsupported-locale"),
        ("hello", "not a locale", "unsupported-locale"),
        ("   ", "en-US", "empty-text"),
        ("a" * (MAX_TEXT_CHARS + 1), "en-US", "text-too-long"),
    ],
)
async def test_bad_text_is_refused(speech: SpeechEngine, text: str, locale: str, code: str) -> None:
    with pytest.raises(SpeechInputError) as refused:
        await speech.synthesize(text, locale=locale)
    assert refused.value.code == code and refused.value.message


async def test_bad_audio_is_refused(speech: SpeechEngine) -> None:
    with pytest.raises(SpeechInputError) as refused:
        await speech.transcribe(b"RIFF not really", locale="en-US")
    assert refused.value.code == "bad-audio"
    audio = await speech.synthesize("hello", locale="en-US")
    with pytest.raises(SpeechInputError) as unsupported:
        await speech.transcribe(audio.wav, locale="fr-FR")
    assert unsupported.value.code == "unsupported-locale" and "en-US" in unsupported.value.message


async def test_the_sandbox_fails_on_demand(
    world: World, own_providers: Callable[[Settings], Providers]
) -> None:
    settings = world.settings.model_copy(update={"speech_provider": "sandbox"})
    engine = own_providers(settings).get(SPEECH)
    await world.act("speech", "failures", error="not-sent", code="503", target="synthesize")
    with pytest.raises(NotSent):
        await engine.synthesize("hello", locale="en-US")
    assert (await engine.synthesize("hello", locale="en-US")).duration_seconds > 0
