"""What cannot be declared: the IVR webhook (TwiML, signed by the voice service, not by an
API key), the signed recording downloads (audio bytes, counted) and the TTS endpoint (audio)."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Body, Depends, Request
from starlette.responses import Response, StreamingResponse

from courier.config import Settings
from courier.core.auth import Permission
from courier.core.db import commit
from courier.core.errors import ApiError, ErrorItem, conflict, not_found, unauthorized
from courier.domains.voice import jobs as _jobs  # noqa: F401  (inbound handlers)
from courier.domains.voice import repository as repo
from courier.domains.voice.ivr import answer_call, safe_twiml
from courier.domains.voice.schemas import TtsDocument
from courier.domains.voice.service import DOWNLOAD_PATH, download_allowed
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid
from courier.providers.common import Permanent, providers_for
from courier.providers.inbound import raw_request
from courier.providers.storage import storage_for
from courier.providers.voice import VOICE

log = logging.getLogger("courier.domains.voice")
router = APIRouter(tags=["voice"])
TWIML = "application/xml"
_communicate = context_dependency(Permission.COMMUNICATE, individual_allowed=False)


@router.post(
    "/v1/voice-ivrs/{id}/twiml/",
    response_model=None,
    summary="Call-control webhook: returns TwiML for the call's next step",
    operation_id="twiml-v1-voice-ivrs",
    responses={
        200: {"description": "TwiML", "content": {TWIML: {"schema": {"type": "string"}}}},
        **ERROR_RESPONSES,
    },
)
async def ivr_twiml(id: str, request: Request) -> Response:
    """The voice service's call webhook for the line ``id`` (form-encoded, Twilio's fields,
    signed with ``X-Twilio-Signature``). A signature that does not verify: 401. Anything else
    answers TwiML; a step that cannot be carried out answers an apology and voicemail."""
    settings: Settings = request.app.state.settings
    adapter = providers_for(settings).get(VOICE)
    raw = await raw_request(settings, request, "twiml")
    if not adapter.verify(raw):
        raise unauthorized("the call webhook's X-Twilio-Signature is missing or invalid")
    try:
        ident: uuid.UUID | None = uuid.UUID(id)
    except ValueError:
        ident = None
    body = safe_twiml(settings, None)
    if ident is not None:
        form = {key: value for key, value in raw.form}
        query = {k: v for k, v in request.query_params.items()}
        try:
            async with request.app.state.database.sessionmaker() as session:
                setting = await repo.line_of_webhook(session, ident)
                if setting is not None:
                    body = safe_twiml(settings, setting.id)
                    body = await answer_call(
                        session, settings, setting, query.get("step", ""), query, form
                    )
                    await commit(session)
        except Exception:
            log.exception("the IVR answered a call with its apology", extra={"line": id})
    return Response(content=body, media_type=TWIML)


@router.get(DOWNLOAD_PATH, include_in_schema=False)
async def download_recording(id: str, request: Request) -> Response:
    """A recording's audio through a signed, expiring link (``download-url``); each download
    is counted (``download-count``). A link that is not valid (any more): 403."""
    settings: Settings = request.app.state.settings
    ident = path_uuid(id, "voice recording")
    params = request.query_params
    if not download_allowed(
        settings, ident, params.get("expires", ""), params.get("signature", "")
    ):
        raise ApiError(
            403,
            [ErrorItem("the download link is not valid or has expired", "invalid-signature")],
        )
    async with request.app.state.database.sessionmaker() as session:
        recording = await repo.recording_of_link(session, ident)
        if recording is None or recording.storage_key is None:
            raise not_found("voice recording")
        key = recording.storage_key
        await repo.count_download(session, ident)
        await commit(session)
    storage = storage_for(settings, base_url=str(request.base_url))
    try:
        data = await storage.read(key)
    except FileNotFoundError as exc:
        raise not_found("voice recording") from exc
    return StreamingResponse(
        iter([data]),
        media_type="audio/wav",
        headers={"Content-Disposition": f'attachment; filename="recording-{ident}.wav"'},
    )


@router.post(
    "/v1/tts-synthesizers/",
    status_code=201,
    response_model=None,
    summary="Synthesize speech from text (locale)",
    operation_id="create-v1-tts-synthesizers",
    responses={
        201: {
            "description": "The speech, as a WAV file (16-bit PCM, mono)",
            "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
        },
        **ERROR_RESPONSES,
    },
)
async def synthesize(
    document: TtsDocument = Body(...), ctx: Context = Depends(_communicate)
) -> Response:
    """Speak ``text`` in ``locale`` with the speech engine (eSpeak NG, offline): a WAV file
    (16-bit PCM, mono). ``format`` ``mp3`` is refused (400): no MP3 encoder ships with
    Courier. An unsupported locale, empty or too long text: 400 naming the problem."""
    from courier.providers.speech import SPEECH

    if document.data.type != "tts-synthesizers":
        raise conflict("the type must be tts-synthesizers", "type-mismatch", "/data/type")
    attrs = document.data.attributes
    if attrs.format != "wav":
        raise ApiError(
            400,
            [
                ErrorItem(
                    "only format wav is available: no MP3 encoder ships with Courier",
                    "unsupported-format",
                    pointer="/data/attributes/format",
                )
            ],
        )
    # The speech sandbox keeps its state through connections of its own: end the request's
    # transaction first (on SQLite it would wait on this request's write lock).
    await commit(ctx.session)
    engine = providers_for(ctx.settings).get(SPEECH)
    try:
        audio = await engine.synthesize(attrs.text, locale=attrs.locale)
    except Permanent as exc:
        attribute = "locale" if "locale" in exc.code else "text"
        raise ApiError(
            400, [ErrorItem(exc.message, exc.code, pointer=f"/data/attributes/{attribute}")]
        ) from exc
    return Response(
        content=audio.wav,
        status_code=201,
        media_type="audio/wav",
        headers={"X-Audio-Duration": f"{audio.duration_seconds:.3f}"},
    )
