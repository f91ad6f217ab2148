"""What a message says, computed once per version of its text: sentiment and key phrases.

Both run offline from data shipped inside their packages (no model download, no network):
VADER (``vaderSentiment``) scores sentiment; YAKE (``yake``) extracts key phrases without
training data. They run when a message is posted or its text is edited, never on read, and in
a worker thread so a long message does not stall the event loop.

VADER's lexicon is English; for other languages the sentiment is mostly ``neutral``. YAKE uses
the author's language (from their locale) for its stop words when it knows it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the libraries are imported on first use: YAKE pulls in networkx (~40 MB)
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

Sentiment = Literal["positive", "neutral", "negative"]

# VADER's own thresholds on the compound score (its documentation's recommended cut-offs).
POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05
MAX_PHRASES = 5
MAX_PHRASE_WORDS = 3


@dataclass(frozen=True)
class TextAnalysis:
    sentiment: Sentiment | None
    phrases: dict[str, Any]


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_of(text: str) -> Sentiment | None:
    if not text.strip():
        return None
    compound = float(_analyzer().polarity_scores(text)["compound"])
    if compound >= POSITIVE_AT:
        return "positive"
    if compound <= NEGATIVE_AT:
        return "negative"
    return "neutral"


@lru_cache(maxsize=1)
def yake_languages() -> frozenset[str]:
    """The languages YAKE ships stop words for (two-letter codes, as in a locale es-US)."""
    import yake

    folder = Path(yake.__file__).parent / "core" / "StopwordsList"
    codes = {path.stem.removeprefix("stopwords_") for path in folder.glob("stopwords_*.txt")}
    return frozenset(codes - {"noLang"})


def language_of(locale: str | None) -> str:
    code = (locale or "en")[:2].lower()
    return code if code in yake_languages() else "en"


def phrases_of(text: str, locale: str | None = None) -> dict[str, Any]:
    """``{"language": "en", "keywords": [{"phrase": ..., "score": ...}]}``, most relevant
    first (a lower YAKE score is more relevant); ``{}`` for a blank text."""
    if not text.strip():
        return {}
    import yake

    language = language_of(locale)
    # A fresh extractor per call: it is cheap to build and keeps calls thread-independent.
    extractor = yake.KeywordExtractor(lan=language, n=MAX_PHRASE_WORDS, top=MAX_PHRASES)
    keywords = [
        {"phrase": str(phrase), "score": round(float(score), 6)}
        for phrase, score in extractor.extract_keywords(text)
    ]
    return {"language": language, "keywords": keywords}


def analyse(text: str, locale: str | None = None) -> TextAnalysis:
    return TextAnalysis(sentiment_of(text), phrases_of(text, locale))


async def analyse_async(text: str, locale: str | None = None) -> TextAnalysis:
    return await asyncio.to_thread(analyse, text, locale)
