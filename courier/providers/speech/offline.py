"""Speech on this machine, from engines that install with pip: eSpeak NG for text to speech
(``espeakng-loader``: its wheel ships the library and its voices) and PocketSphinx for speech
to text (``pocketsphinx``: its wheel ships a US English model). Nothing leaves the machine,
which suits patient data, and the README's two set-up commands are still all it takes.

Both engines are C libraries with process-wide state: each is driven from one thread at a
time (a lock) and off the event loop (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import re
import threading
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from courier.providers.speech.base import (
    MAX_AUDIO_SECONDS,
    MAX_TEXT_CHARS,
    Audio,
    SpeechInputError,
    Transcript,
)

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")
RECOGNITION_LOCALES = frozenset({"en-US"})
DEFAULT_VARIANT = "f3"  # a clear, calm voice; telephone prompts are spoken slower than speech
DEFAULT_RATE_WPM = 140
MODEL_RATE = 16000  # PocketSphinx's US English model is wideband
NOISE_SEED = 1  # eSpeak NG's noise generator, at the start of every utterance (see speak)


class _Espeak:
    """eSpeak NG through ctypes, synchronous mode, samples collected by a callback."""

    _SYNTH_CALLBACK = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )
    _AUDIO_OUTPUT_SYNCHRONOUS = 2
    _CHARS_UTF8 = 1
    _PARAM_RATE = 1

    def __init__(self) -> None:
        import espeakng_loader  # type: ignore[import-untyped]

        self.data_path = Path(espeakng_loader.get_data_path())
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(
            self._AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), 0
        )
        if rate <= 0:
            raise RuntimeError(f"eSpeak NG did not start (data at {self.data_path})")
        self.sample_rate = int(rate)
        self._lib = lib
        self._chunks: list[bytes] = []
        self._callback = self._SYNTH_CALLBACK(self._collect)  # kept: C holds a pointer to it
        lib.espeak_SetSynthCallback(self._callback)
        self.voices = {  # "en-us" -> "en-US": every language file the wheel ships
            path.name.lower(): path.name
            for path in (self.data_path / "lang").rglob("*")
            if path.is_file()
        }

    def _collect(self, samples: Any, count: int, _events: Any) -> int:
        if samples and count > 0:
            self._chunks.append(ctypes.string_at(samples, count * 2))
        return 0

    def voice_for(self, locale: str) -> str | None:
        """The eSpeak voice of a BCP 47 locale: the exact one, else the language's."""
        tag = locale.lower()
        if tag in self.voices:
            return tag
        language = tag.split("-")[0]
        return language if language in self.voices else None

    def speak(self, text: str, voice: str, rate_wpm: int) -> bytes:
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SpeechInputError("unsupported-voice", f"eSpeak NG has no voice {voice!r}")
        self._lib.espeak_SetParameter(self._PARAM_RATE, rate_wpm, 0)
        encoded = text.encode("utf-8") + b"\0"
        self._chunks = []
        # eSpeak NG seeds the noise of breathy voices (the default variant's "breath") from
        # the clock: the same text came out different each time, and PocketSphinx misheard
        # some of those renderings ("please call the clinic tomorrow morning" as "read all the
        # creek and ordeal", about one in a few hundred). Each utterance now starts from one
        # seed, so a prompt's noise is the same every time it is spoken. (The pitch flutter
        # still runs on from the previous utterance: a static inside the library.) With seed
        # 1 the recogniser heard that sentence in 300 renderings of 300; with 12345, in 142
        # of 150.
        self._lib.espeak_ng_SetRandSeed(NOISE_SEED)
        self._lib.espeak_Synth(encoded, len(encoded), 0, 0, 0, self._CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        pcm, self._chunks = b"".join(self._chunks), []
        return pcm


class _Recognizer:
    """PocketSphinx decoders (one per sample rate), free-form or restricted to hints."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder  # type: ignore[import-untyped]

        self._decoder_class = Decoder
        self._decoders: dict[int, Any] = {}

    def decoder(self, sample_rate: int) -> Any:
        if sample_rate not in self._decoders:
            window = int(sample_rate * 0.025625) + 1
            nfft = 1 << (window - 1).bit_length()
            self._decoders[sample_rate] = self._decoder_class(
                samprate=sample_rate, nfft=nfft, loglevel="FATAL"
            )
        return self._decoders[sample_rate]

    def recognize(self, pcm: bytes, sample_rate: int, hints: Sequence[str]) -> Transcript:
        if sample_rate < MODEL_RATE:  # the model is wideband: narrowband audio is raised to it
            pcm, sample_rate = resample(pcm, sample_rate, MODEL_RATE), MODEL_RATE
        decoder = self.decoder(sample_rate)
        phrases = [p for p in (_hint_words(h) for h in hints) if p and _known(decoder, p)]
        if phrases:
            alternatives = " | ".join(" ".join(words) for words in phrases)
            decoder.add_jsgf_string(
                "hints", f"#JSGF V1.0;\ngrammar hints;\npublic <s> = {alternatives};"
            )
            decoder.activate_search("hints")
        else:
            decoder.activate_search("_default")
        silence = b"\0" * (sample_rate // 2) * 2  # the recogniser wants a little on each side
        decoder.start_utt()
        decoder.process_raw(silence + pcm + silence, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        if hypothesis is None:
            return Transcript(text="", confidence=None)
        words = [w for w in hypothesis.hypstr.split() if not w.startswith("<") and w != "[NOISE]"]
        return Transcript(text=" ".join(words))  # PocketSphinx gives no usable confidence


def resample(pcm: bytes, rate: int, target: int) -> bytes:
    """16-bit mono PCM at another sample rate (linear interpolation)."""
    import numpy as np  # imported on use: a process that never resamples does not load it

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if rate == target or len(samples) == 0:
        return pcm
    count = int(len(samples) * target / rate)
    positions = np.linspace(0, len(samples) - 1, count)
    return np.interp(positions, np.arange(len(samples)), samples).astype("<i2").tobytes()


def _hint_words(hint: str) -> list[str]:
    return re.findall(r"[a-z']+", hint.lower())


def _known(decoder: Any, words: list[str]) -> bool:
    return all(decoder.lookup_word(word) is not None for word in words)


def _wav(pcm: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def read_wav(data: bytes) -> tuple[bytes, int]:
    """Mono 16-bit PCM samples and the sample rate of a WAV file (stereo is mixed down)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as source:
            channels, width, rate = (
                source.getnchannels(),
                source.getsampwidth(),
                source.getframerate(),
            )
            frames = source.readframes(source.getnframes())
    except (wave.Error, EOFError) as error:
        raise SpeechInputError("bad-audio", "audio must be a PCM WAV file") from error
    if width != 2:
        raise SpeechInputError("bad-audio", "audio must be 16-bit PCM WAV")
    if not 8000 <= rate <= 48000:
        raise SpeechInputError("bad-audio", "audio must be sampled at 8 to 48 kHz")
    import numpy as np

    samples = np.frombuffer(frames[: len(frames) - len(frames) % (2 * channels)], dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    if len(samples) / rate > MAX_AUDIO_SECONDS:
        raise SpeechInputError(
            "audio-too-long", f"audio longer than {int(MAX_AUDIO_SECONDS)} seconds"
        )
    return samples.tobytes(), rate


def check_locale(locale: str, supported: frozenset[str] | None = None) -> None:
    if not _LOCALE.match(locale or ""):
        raise SpeechInputError("unsupported-locale", f"{locale!r} is not a BCP 47 locale (en-US)")
    if supported is not None and locale.lower() not in {s.lower() for s in supported}:
        raise SpeechInputError(
            "unsupported-locale",
            f"speech recognition in {locale} is not available "
            f"(available: {', '.join(sorted(supported))})",
        )


def check_text(text: str, max_chars: int) -> str:
    cleaned = text.replace("\0", "").strip()
    if not cleaned:
        raise SpeechInputError("empty-text", "there is no text to speak")
    if len(cleaned) > max_chars:
        raise SpeechInputError(
            "text-too-long", f"text is {len(cleaned)} characters; at most {max_chars} are spoken"
        )
    return cleaned


class OfflineSpeech:
    """The ``offline`` speech adapter: eSpeak NG and PocketSphinx, in this process."""

    name = "offline"
    max_text_chars = MAX_TEXT_CHARS
    recognition_locales = RECOGNITION_LOCALES

    _espeak: _Espeak | None = None
    _recognizer: _Recognizer | None = None
    _tts_lock = threading.Lock()  # the C libraries are process-wide: one user at a time
    _stt_lock = threading.Lock()

    def __init__(self, *, variant: str | None = DEFAULT_VARIANT, rate_wpm: int = DEFAULT_RATE_WPM):
        self.variant = variant
        self.rate_wpm = rate_wpm

    @classmethod
    def _tts(cls) -> _Espeak:
        if cls._espeak is None:
            cls._espeak = _Espeak()
        return cls._espeak

    @property
    def locales(self) -> frozenset[str]:
        with self._tts_lock:
            return frozenset(self._tts().voices.values())

    async def synthesize(self, text: str, *, locale: str, voice: str | None = None) -> Audio:
        check_locale(locale)
        spoken = check_text(text, self.max_text_chars)
        return await asyncio.to_thread(self._synthesize, spoken, locale, voice)

    def _synthesize(self, text: str, locale: str, voice: str | None) -> Audio:
        with self._tts_lock:
            engine = self._tts()
            base = engine.voice_for(locale)
            if base is None:
                raise SpeechInputError(
                    "unsupported-locale", f"there is no voice for {locale} (e.g. en-US, es, fr)"
                )
            variant = voice or self.variant
            pcm = engine.speak(text, f"{base}+{variant}" if variant else base, self.rate_wpm)
            rate = engine.sample_rate
        return Audio(wav=_wav(pcm, rate), sample_rate=rate, duration_seconds=len(pcm) / 2 / rate)

    async def transcribe(self, wav: bytes, *, locale: str, hints: Sequence[str] = ()) -> Transcript:
        check_locale(locale, self.recognition_locales)
        pcm, rate = read_wav(wav)
        return await asyncio.to_thread(self._transcribe, pcm, rate, list(hints))

    def _transcribe(self, pcm: bytes, rate: int, hints: list[str]) -> Transcript:
        with self._stt_lock:
            if OfflineSpeech._recognizer is None:
                OfflineSpeech._recognizer = _Recognizer()
            return OfflineSpeech._recognizer.recognize(pcm, rate, hints)
