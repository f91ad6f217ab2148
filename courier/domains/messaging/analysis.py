"""What a message says, computed once per version of its text: sentiment and key phrases.

Both run offline from data shipped inside their packages (no model download, no network):
VADER (``vaderSentiment``) scores sentiment; YAKE (``yake``) extracts key phrases without
training data. They run when a message is posted or its text is edited, never on read, and in
a worker thread so a long message does not stall the event loop.

Both run in a job (``messaging-messages.analyse``) after the post or edit commits, never in the
request: the message reads ``analyzed: false`` with no sentiment and no phrases until then, and
a ``messaging-messages.analyzed`` event tells its channel when they are there. There is one job
per version of a text; a worker keeps the results of the texts it analysed last, so a bulk
message's copies are analysed once per worker, not once per recipient. A result is written only
if the text is still the one analysed (an edit in between queues its own job).

VADER's lexicon is English; for other languages the sentiment is mostly ``neutral``. YAKE uses
the author's language (from their locale) for its stop words when it knows it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.messaging import repository as repo
from courier.domains.messaging.schemas import MESSAGE_TYPE
from courier.jobs.outbox import enqueue, job_row
from courier.jsonapi.changes import Actor, change, write_changes

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


@cache
def _extractor(language: str) -> Any:
    """One YAKE extractor per language per worker (its stop words are read once). It keeps no
    state between calls (each builds its own data from the text), so threads may share it."""
    import yake

    return yake.KeywordExtractor(lan=language, n=MAX_PHRASE_WORDS, top=MAX_PHRASES)


def phrases_of(text: str, locale: str | None = None) -> dict[str, Any]:
    """``{"language": "en", "keywords": [{"phrase": ..., "score": ...}]}``, most relevant
    first (a lower YAKE score is more relevant); ``{}`` for a blank text."""
    if not text.strip():
        return {}
    language = language_of(locale)
    extractor = _extractor(language)
    keywords = [
        {"phrase": str(phrase), "score": round(float(score), 6)}
        for phrase, score in extractor.extract_keywords(text)
    ]
    return {"language": language, "keywords": keywords}


def analyse(text: str, locale: str | None = None) -> TextAnalysis:
    return TextAnalysis(sentiment_of(text), phrases_of(text, locale))


# --- the job ------------------------------------------------------------------------------------

ANALYSE_JOB = "messaging-messages.analyse"
ANALYSIS_ACTOR = Actor("system", "message-analysis")


async def enqueue_analysis(
    session: AsyncSession, organization_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
) -> None:
    """Queue the analysis of ``message_ids`` (just written or edited) in the caller's
    transaction, a job each (inserted together): they run once that commits."""
    for ident in message_ids:
        await enqueue(session, ANALYSE_JOB, {"message_id": ident}, organization_id=organization_id)


def analysis_jobs(
    organization_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
) -> list[dict[str, Any]]:
    """The ``jobs`` rows of :func:`enqueue_analysis`, for a caller that writes them with the
    messages (then :func:`courier.jobs.outbox.mark_enqueued`)."""
    return [
        job_row(ANALYSE_JOB, {"message_id": ident}, organization_id=organization_id)
        for ident in message_ids
    ]


@lru_cache(maxsize=64)
def _analysed(text: str, language: str) -> TextAnalysis:
    return analyse(text, language)


def _analyse_all(texts: Sequence[tuple[str, str | None]]) -> dict[tuple[str, str], TextAnalysis]:
    """Each distinct (text, language) once; recent ones come from the worker's cache."""
    keys = dict.fromkeys((body, language_of(locale)) for body, locale in texts)
    return {key: _analysed(*key) for key in keys}


async def analyse_messages(
    session: AsyncSession, organization_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
) -> int:
    """Compute and store the sentiment and phrases of those of ``message_ids`` that still
    wait for them; each stored result publishes ``messaging-messages.analyzed`` to the
    message's audience. Returns how many were stored. Never commits."""
    found = await repo.unanalysed_messages(session, organization_id, message_ids)
    if not found:
        return 0
    authors = {row.individual_id for row in found if row.individual_id is not None}
    locales: dict[uuid.UUID, str | None] = {}
    if authors:
        rows = await repo.author_locales(session, organization_id, authors)
        locales = {ident: locale for ident, locale in rows}
    texts = [(row.message, locales.get(row.individual_id)) for row in found]
    results = await asyncio.to_thread(_analyse_all, texts)
    stored = []
    for row, (body, locale) in zip(found, texts, strict=True):
        result = results[(body, language_of(locale))]
        if await repo.store_analysis(
            session, organization_id, row.id, body, result.sentiment, result.phrases
        ):
            stored.append(row)
    channels = {row.channel_id for row in stored if not row.draft}
    audiences: dict[uuid.UUID, list[uuid.UUID]] = {channel: [] for channel in channels}
    if channels:
        pairs = await repo.subscriber_pairs(session, organization_id, channels)
        for channel_id, individual_id in pairs:
            audiences[channel_id].append(individual_id)

    def audience(row: Any) -> list[uuid.UUID]:  # a draft's: its author's
        if row.draft:
            return [row.individual_id] if row.individual_id else []
        return audiences.get(row.channel_id, [])

    write_changes(
        session,
        [
            change(
                MESSAGE_TYPE,
                row.id,
                "analyzed",
                fields=("sentiment", "phrases"),
                audience=audience(row),
                organization_id=organization_id,
                data={"channel-id": str(row.channel_id)},
                audited=False,
            )
            for row in stored
        ],
        actor=ANALYSIS_ACTOR,
        request_id=None,
        organization_id=organization_id,
    )
    return len(stored)
