"""``POST /v1/ask-entries/``: the Alexa skill's endpoint. Not declared as a resource: Alexa
calls it with no API key, and it is authenticated by Amazon's request signature instead
(the alexa adapter's ``verify_skill_request``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from courier.config import Settings
from courier.core.db import commit
from courier.core.errors import bad_request, unauthorized
from courier.domains.alexa.skill import answer, application_allowed
from courier.providers.alexa import ALEXA, AlexaProvider, SkillRequestRejected
from courier.providers.common import providers_for
from courier.providers.inbound import raw_request

router = APIRouter(tags=["alexa"])

# Refused as malformed (400); the rest (signature, certificate) as unauthenticated (401).
MALFORMED = {"malformed", "stale-timestamp", "bad-certificate-url"}


@router.post(
    "/v1/ask-entries/",
    status_code=200,
    summary="Alexa skill request endpoint (signed requests only)",
    operation_id="create-v1-ask-entries",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["request"],
                        "properties": {
                            "request": {
                                "type": "object",
                                "properties": {
                                    "timestamp": {"type": "string"},
                                    "type": {"type": "string"},
                                },
                            }
                        },
                        "additionalProperties": True,
                    }
                }
            },
        }
    },
    responses={
        200: {"description": "The Alexa response envelope", "content": {"application/json": {}}},
        400: {"description": "Malformed, stale, or a certificate URL Amazon does not use"},
        401: {"description": "The signature or certificate chain is not Amazon's"},
    },
)
async def ask_entries(request: Request) -> JSONResponse:
    """Called by Alexa, not by API clients: no API key; the request must carry Amazon's
    signature (``SignatureCertChainUrl``, ``Signature-256``) and a timestamp within 150
    seconds. Answers LaunchRequest (the linked individual's next reminder), the skill's
    intents, SessionEndedRequest and skill events (docs/ALEXA.md)."""
    settings: Settings = request.app.state.settings
    adapter: AlexaProvider = providers_for(settings).get(ALEXA)
    raw = await raw_request(settings, request, "ask-entries")
    try:
        envelope = await adapter.verify_skill_request(raw)
    except SkillRequestRejected as rejected:
        if rejected.code in MALFORMED:
            raise bad_request(rejected.message, rejected.code or "malformed") from rejected
        raise unauthorized(rejected.message) from rejected
    if not application_allowed(settings, envelope):
        raise bad_request(
            "this skill is not served here (COURIER_ALEXA_SKILL_IDS)", "unknown-skill"
        )
    async with request.app.state.database.sessionmaker() as session:
        result: dict[str, Any] = await answer(session, settings, envelope)
        await commit(session)
    return JSONResponse(result)
