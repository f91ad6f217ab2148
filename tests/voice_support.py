"""Helpers of the voice tests: a line (text account, a voice-capable number, a voice
setting), signed call webhooks as the voice service sends them, and the voice factories of
the contract tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from courier.jobs import run_until_idle
from courier.providers.twilio_signature import SIGNATURE_HEADER, sign_twilio
from courier.providers.voice.sandbox import sandbox_auth_token
from tests.conftest import Org, doc
from tests.factories import created_id, factory, text_number

CALLER = "+14155550150"


def app_of(client: httpx.AsyncClient) -> Any:
    return client._transport.app  # type: ignore[attr-defined]


async def run_jobs(client: httpx.AsyncClient, *kinds: str) -> int:
    import courier.domains.voice.jobs  # noqa: F401  (handlers)

    app = app_of(client)
    return await run_until_idle(app.state.database, app.state.settings, kinds=list(kinds) or None)


async def make_line(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    """A voice setting on a freshly provisioned number; its line configured."""
    number = await text_number(client, org)
    made = await client.post(
        "/v1/voice-settings/",
        headers=org.admin,
        json=doc(
            "voice-settings",
            {
                "phone-number": number["attributes"]["phone-number"],
                "wait-message": "Please hold, a nurse will be with you shortly",
                **attributes,
            },
        ),
    )
    assert made.status_code == 201, made.text
    await run_jobs(client, "voice.configure-line")
    got = await client.get(f"/v1/voice-settings/{made.json()['data']['id']}/", headers=org.admin)
    line: dict[str, Any] = got.json()["data"]
    return line


async def webhook(
    client: httpx.AsyncClient,
    url: str,
    form: dict[str, str],
    *,
    forged: bool = False,
) -> httpx.Response:
    """POST ``form`` to Courier's ``url`` (public URL) signed as the voice service signs."""
    settings = app_of(client).state.settings
    pairs = list(form.items())
    signature = sign_twilio(sandbox_auth_token(settings), url, pairs)
    if forged:
        signature = signature[:-4] + "AAAA"
    parts = urlsplit(url)
    return await client.post(
        parts.path + (f"?{parts.query}" if parts.query else ""),
        content=urlencode(pairs).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: signature,
        },
    )


def call_form(
    sid: str, caller: str = CALLER, status: str = "in-progress", **extra: str
) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": caller,
        "To": "+13035550100",
        **extra,
    }


@factory("voice-settings")
async def make_voice_setting(client: httpx.AsyncClient, org: Org) -> str:
    ident: str = (await make_line(client, org))["id"]
    return ident


@factory("voice-tasks")
async def make_voice_task(client: httpx.AsyncClient, org: Org) -> str:
    line = await make_line(client, org)
    made = await client.post(
        f"/v1/voice-settings/{line['id']}/run-task/",
        headers=org.admin,
        json={"method": "refresh_queue_entries"},
    )
    return await created_id(made)


async def queued_call(
    client: httpx.AsyncClient, line_id: str, sid: str, caller: str = CALLER
) -> None:
    from courier.domains.voice.service import twiml_url

    settings = app_of(client).state.settings
    import uuid

    answered = await webhook(
        client, twiml_url(settings, uuid.UUID(line_id), "queue"), call_form(sid, caller)
    )
    assert answered.status_code == 200 and "<Enqueue" in answered.text, answered.text


@factory("voice-queue-entries")
async def make_voice_queue_entry(client: httpx.AsyncClient, org: Org) -> str:
    import uuid

    line = await make_line(client, org)
    await queued_call(client, line["id"], f"CA{uuid.uuid4().hex}")
    listed = await client.get(
        "/v1/voice-queue-entries/", params={"setting-id": line["id"]}, headers=org.admin
    )
    ident: str = listed.json()["data"][0]["id"]
    return ident


@factory("voice-queue-agents")
async def make_voice_queue_agent(client: httpx.AsyncClient, org: Org) -> str:
    line = await make_line(client, org)
    made = await client.post(
        "/v1/voice-queue-agents/",
        headers=org.admin,
        json=doc("voice-queue-agents", {"setting-id": line["id"]}),
    )
    return await created_id(made)


@factory("voice-recordings")
async def make_voice_recording(client: httpx.AsyncClient, org: Org) -> str:
    import uuid

    from courier.core.time import now_ms
    from courier.models.voice import VoiceRecording

    line = await make_line(client, org)
    async with app_of(client).state.database.sessionmaker() as session:
        row = VoiceRecording(
            id=uuid.uuid4(),
            organization_id=uuid.UUID(org.id),
            setting_id=uuid.UUID(line["id"]),
            call_sid=f"CA{uuid.uuid4().hex}",
            recording_sid=f"RE{uuid.uuid4().hex}",
            phone_number=CALLER,
            kind="voicemail",
            state="failed",
            download_count=0,
            created_at=now_ms(),
            last_modified_at=now_ms(),
        )
        session.add(row)
        await session.commit()
    return str(row.id)
