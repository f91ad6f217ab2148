"""Helpers of the voice-call tests: people with phones, a conference or a survey, the call
legs as stored, and the voice service's requests (status callbacks and TwiML fetches) signed
as Twilio signs them with the sandbox's auth token."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from courier.core.tenancy import scoped
from courier.models.voice_call import VoiceDialLog
from courier.providers.common import callback_url
from courier.providers.twilio_signature import sign_twilio
from courier.providers.voice.sandbox import sandbox_auth_token
from tests.conftest import Org, doc
from tests.factories import make_individual_id, text_number
from tests.notify_support import app_of, new_phone, run_jobs

SURVEY: dict[str, Any] = {
    "greeting": "Hello, this is your clinic with two questions.",
    "questions": [
        {
            "name": "pain",
            "prompt": "On a scale from 0 to 9, how bad is your pain today?",
            "answer": "dtmf",
            "min": 0,
            "max": 9,
            "digits": 1,
            "retries": 1,
        },
        {
            "name": "sleep",
            "prompt": "Did you sleep well? Say yes or no.",
            "answer": "speech",
            "choices": ["yes", "no"],
            "retries": 2,
        },
    ],
    "goodbye": "Thank you, goodbye.",
}


async def person(
    client: httpx.AsyncClient, org: Org, *, provider: bool = False, phone: bool = True
) -> str:
    attributes: dict[str, Any] = {"first-name": "Nurse" if provider else "Ana"}
    if provider:
        attributes["account-type"] = "provider"
    if phone:
        attributes["phone"] = new_phone()
    return await make_individual_id(client, org, **attributes)


async def caller_id(client: httpx.AsyncClient, org: Org) -> None:
    """The organization's text account and a number: the calls' caller id."""
    await text_number(client, org)


async def start_conference(
    client: httpx.AsyncClient, org: Org, individual: str, provider: str | None, **more: Any
) -> httpx.Response:
    attributes: dict[str, Any] = {"individual-id": individual, **more}
    if provider is not None:
        attributes["provider-id"] = provider
    return await client.post(
        "/v1/voice-conferences/",
        headers=org.staff,
        json=doc("voice-conferences", attributes),
    )


async def start_survey(
    client: httpx.AsyncClient, org: Org, individual: str, spec: Any = None, **more: Any
) -> httpx.Response:
    return await client.post(
        "/v1/voice-surveys/",
        headers=org.staff,
        json=doc(
            "voice-surveys",
            {"individual-id": individual, "spec": SURVEY if spec is None else spec, **more},
        ),
    )


async def legs(
    client: httpx.AsyncClient,
    org: Org,
    *,
    conference: str | None = None,
    survey: str | None = None,
) -> list[VoiceDialLog]:
    """The call legs as stored (with their delivery ids), oldest first."""
    stmt = select(VoiceDialLog).order_by(VoiceDialLog.created_at, VoiceDialLog.role)
    if conference is not None:
        stmt = stmt.where(VoiceDialLog.conference_id == uuid.UUID(conference))
    if survey is not None:
        stmt = stmt.where(VoiceDialLog.survey_id == uuid.UUID(survey))
    async with app_of(client).state.database.sessionmaker() as session:
        return list(
            (await session.execute(scoped(stmt, VoiceDialLog, uuid.UUID(org.id)))).scalars()
        )


async def _post_signed(
    client: httpx.AsyncClient, url: str, params: list[tuple[str, str]], *, signed: bool = True
) -> httpx.Response:
    settings = app_of(client).state.settings
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        headers["X-Twilio-Signature"] = sign_twilio(sandbox_auth_token(settings), url, params)
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    return await client.post(path, content=urlencode(params), headers=headers)


def call_params(leg: VoiceDialLog, status: str) -> list[tuple[str, str]]:
    return [
        ("AccountSid", "AC" + "0" * 32),
        ("CallSid", call_sid(leg)),
        ("CallStatus", status),
        ("Direction", "outbound-api"),
        ("From", leg.from_number or "+13035550100"),
        ("To", leg.to_number),
    ]


def call_sid(leg: VoiceDialLog) -> str:
    return "CA" + leg.id.hex


async def report(client: httpx.AsyncClient, leg: VoiceDialLog, status: str, **extra: str) -> None:
    """The voice service's status callback for the leg's call, applied by the jobs."""
    settings = app_of(client).state.settings
    assert leg.delivery_id is not None
    url = callback_url(settings, "voice", "status", delivery_id=leg.delivery_id)
    response = await _post_signed(client, url, [*call_params(leg, status), *extra.items()])
    assert response.status_code == 204, response.text
    await run_jobs(client, horizon=0.5)


async def twiml(
    client: httpx.AsyncClient,
    leg: VoiceDialLog,
    *,
    query: str = "",
    signed: bool = True,
    **form: str,
) -> httpx.Response:
    """The voice service fetching the leg's next TwiML (the call answered, or a Gather's
    answer with ``Digits`` / ``SpeechResult``)."""
    from courier.domains.voice_calls.calls import call_url

    url = call_url(app_of(client).state.settings, leg.id) + (f"?{query}" if query else "")
    return await _post_signed(
        client, url, [*call_params(leg, "in-progress"), *form.items()], signed=signed
    )


__all__ = [
    "SURVEY",
    "caller_id",
    "legs",
    "person",
    "report",
    "run_jobs",
    "start_conference",
    "start_survey",
    "twiml",
]
