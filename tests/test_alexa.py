"""Alexa over HTTP: the skill endpoint accepts only requests signed under a trusted chain for
echo-api.amazon.com (a local CA made here), links Alexa users to individuals, reads the next
reminder; reminders expand their RRULE in local time and are synced to the sandbox by a job;
subscriptions come from skill events and proactive events are sent through the adapter."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from courier.jobs import run_until_idle
from courier.jobs.registry import load_job_modules
from courier.providers.alexa import ALEXA
from courier.providers.alexa.sandbox import SandboxAlexa
from courier.providers.alexa.signature import load_trusted_roots
from courier.providers.common import providers_for
from tests.alexa_support import CERT_URL, Chains, make_ca, make_leaf, pem
from tests.conftest import Org, doc, make_settings
from tests.factories import make_individual_id

APP_ID = "amzn1.ask.skill.test-skill"
NY = ZoneInfo("America/New_York")


@dataclass
class Skill:
    client: httpx.AsyncClient
    key: rsa.RSAPrivateKey
    chains: Chains
    other_key: rsa.RSAPrivateKey  # a leaf for another host, under the same CA
    other_url: str

    def envelope(
        self,
        request_type: str = "LaunchRequest",
        *,
        user: str,
        token: str | None = None,
        at: datetime | None = None,
        **request: Any,
    ) -> bytes:
        system_user: dict[str, Any] = {"userId": user}
        if token is not None:
            system_user["accessToken"] = token
        stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return orjson.dumps(
            {
                "version": "1.0",
                "context": {
                    "System": {"application": {"applicationId": APP_ID}, "user": system_user}
                },
                "request": {
                    "type": request_type,
                    "requestId": f"amzn1.echo-api.request.{uuid.uuid4()}",
                    "timestamp": stamp,
                    "locale": "en-US",
                    **request,
                },
            }
        )

    async def post(
        self,
        body: bytes,
        *,
        signed_body: bytes | None = None,
        url: str = CERT_URL,
        key: rsa.RSAPrivateKey | None = None,
    ) -> httpx.Response:
        signature = (key or self.key).sign(
            signed_body if signed_body is not None else body, padding.PKCS1v15(), hashes.SHA256()
        )
        return await self.client.post(
            "/v1/ask-entries/",
            content=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "SignatureCertChainUrl": url,
                "Signature-256": base64.b64encode(signature).decode(),
            },
        )


@pytest.fixture(scope="module")
def certificates() -> tuple[Any, ...]:
    ca_key, ca = make_ca()
    leaf_key, leaf = make_leaf(ca_key, ca)
    other_key, other = make_leaf(ca_key, ca, host="not-echo.example.test")
    return ca, leaf_key, leaf, other_key, other


@pytest.fixture
async def skill(
    app: Any, client: httpx.AsyncClient, certificates: tuple[Any, ...]
) -> AsyncIterator[Skill]:
    ca, leaf_key, leaf, other_key, other = certificates
    other_url = "https://s3.amazonaws.com/echo.api/other-host.pem"
    chains = Chains({CERT_URL: pem(leaf, ca), other_url: pem(other, ca)})
    adapter = providers_for(app.state.settings).get(ALEXA)
    assert isinstance(adapter, SandboxAlexa)
    verifier = adapter.skill_requests
    saved = verifier.fetch
    verifier.fetch = chains.fetch
    verifier.trust([ca])
    try:
        yield Skill(client, leaf_key, chains, other_key, other_url)
    finally:
        verifier.fetch = saved
        verifier.trust(load_trusted_roots(None))


async def individual_token(client: httpx.AsyncClient, org: Org, person: str) -> str:
    minted = await client.post(
        "/v1/access-tokens/",
        json=doc("access-tokens", {"individual-id": person}),
        headers=org.staff,
    )
    assert minted.status_code == 201, minted.text
    token: str = minted.json()["data"]["attributes"]["token"]
    return token


async def make_reminder(
    client: httpx.AsyncClient, org: Org, person: str, **attrs: Any
) -> dict[str, Any]:
    values = {
        "individual-id": person,
        "name": "Blood pressure pill",
        "reminder-content": "Time to take your blood pressure pill",
        "reminder-rrule": "FREQ=WEEKLY;BYDAY=MO",
        "reminder-time-local": "2020-01-06T08:30",
        "tz-info": "America/New_York",
    }
    values.update(attrs)
    created = await client.post(
        "/v1/ask-reminders/", json=doc("ask-reminders", values), headers=org.staff
    )
    assert created.status_code == 201, created.text
    data: dict[str, Any] = created.json()["data"]
    return data


async def run_jobs(app: Any) -> None:
    load_job_modules(app.state.settings)  # as a worker process does
    await run_until_idle(app.state.database, app.state.settings)


def speech(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == "1.0"
    text: str = body["response"].get("outputSpeech", {}).get("text", "")
    return text


# --- the skill endpoint: only genuine requests ---------------------------------------------------


async def test_signed_request_is_answered_and_forgeries_refused(
    skill: Skill, client: httpx.AsyncClient, org: Org
) -> None:
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    body = skill.envelope(user=user)
    answered = await skill.post(body)
    assert "link your account" in speech(answered)
    assert answered.json()["response"]["card"] == {"type": "LinkAccount"}

    flipped = bytearray(body)
    flipped[len(flipped) // 2] ^= 0x01
    refused = await skill.post(bytes(flipped), signed_body=body)
    assert refused.status_code == 401, refused.text
    assert "Signature-256" in refused.json()["message"]

    old = skill.envelope(user=user, at=datetime.now(UTC) - timedelta(seconds=200))
    stale = await skill.post(old)
    assert stale.status_code == 400
    assert stale.json()["errors"][0]["code"] == "stale-timestamp"

    for bad_url in (
        "http://s3.amazonaws.com/echo.api/echo-api-cert-test.pem",
        "https://notamazon.com/echo.api/echo-api-cert-test.pem",
        "https://s3.amazonaws.com/EcHo.aPi/echo-api-cert-test.pem",
        "https://s3.amazonaws.com:563/echo.api/echo-api-cert-test.pem",
        "https://s3.amazonaws.com/invalid.path/echo-api-cert-test.pem",
        "https://s3.amazonaws.com/echo.api/../invalid.path/echo-api-cert-test.pem",
    ):
        wrong = await skill.post(body, url=bad_url)
        assert wrong.status_code == 400, bad_url
        assert wrong.json()["errors"][0]["code"] == "bad-certificate-url"
    # The rules allow these spellings (host case, explicit port 443, a path that normalises).
    for good_url in (
        "https://S3.AMAZONAWS.COM/echo.api/echo-api-cert-test.pem",
        "https://s3.amazonaws.com:443/echo.api/echo-api-cert-test.pem",
        "https://s3.amazonaws.com/echo.api/../echo.api/echo-api-cert-test.pem",
    ):
        skill.chains.served[good_url] = skill.chains.served[CERT_URL]
        assert (await skill.post(body, url=good_url)).status_code == 200, good_url

    another_host = await skill.post(body, url=skill.other_url, key=skill.other_key)
    assert another_host.status_code == 401
    assert "echo-api.amazon.com" in another_host.json()["message"]

    unsigned = await client.post(
        "/v1/ask-entries/", content=body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401
    # Nothing was linked by any of them: a link needs a valid request with a token.
    assert "link your account" in speech(await skill.post(skill.envelope(user=user)))


async def test_chain_is_fetched_once(skill: Skill) -> None:
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    for _ in range(3):
        assert (await skill.post(skill.envelope(user=user))).status_code == 200
    assert skill.chains.fetched.count(CERT_URL) <= 1


async def test_untrusted_root_is_refused(
    skill: Skill, app: Any, settings: Any, tmp_path: Path
) -> None:
    # A chain under a CA the installation does not trust: refused, whatever it signs.
    stranger_key, stranger = make_ca()
    key, leaf = make_leaf(stranger_key, stranger)
    url = "https://s3.amazonaws.com/echo.api/stranger.pem"
    skill.chains.served[url] = pem(leaf, stranger)
    refused = await skill.post(skill.envelope(user="amzn1.ask.account.x"), url=url, key=key)
    assert refused.status_code == 401
    # The trusted roots are a setting: a bundle holding this CA makes the same chain good.
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(pem(stranger))
    adapter = SandboxAlexa(
        make_settings(
            str(settings.database_url), Path(settings.data_dir), alexa_trusted_roots=str(bundle)
        )
    )
    adapter.skill_requests.fetch = skill.chains.fetch
    body = skill.envelope(user="amzn1.ask.account.x")
    signature = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    from courier.providers.common import RawRequest

    envelope = await adapter.verify_skill_request(
        RawRequest(
            "POST",
            "http://courier.test/v1/ask-entries/",
            {"signaturecertchainurl": url, "signature-256": base64.b64encode(signature).decode()},
            body,
        )
    )
    assert envelope["request"]["type"] == "LaunchRequest"


# --- account linking, the launch request, intents -----------------------------------------------


async def test_launch_reads_the_linked_individuals_next_reminder(
    skill: Skill, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    person = await make_individual_id(client, org)
    await make_reminder(
        client,
        org,
        person,
        name="Walk",
        **{"reminder-rrule": "FREQ=DAILY", "reminder-time-local": "2020-01-01T17:00"},
    )
    await make_reminder(client, org, person)
    token = await individual_token(client, org, person)
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"

    launched = await skill.post(skill.envelope(user=user, token=token))
    text = speech(launched)
    # The sooner of the two: the daily walk at 5 PM unless the Monday pill comes first.
    now = datetime.now(NY)
    walk = now.replace(hour=17, minute=0, second=0, microsecond=0)
    walk = walk if walk > now else walk + timedelta(days=1)
    days = (0 - now.weekday()) % 7
    pill = (now + timedelta(days=days)).replace(hour=8, minute=30, second=0, microsecond=0)
    pill = pill if pill > now else pill + timedelta(days=7)
    expected = ("Blood pressure pill", "8:30 AM") if pill < walk else ("Walk", "5:00 PM")
    assert text.startswith(f"Your next reminder is {expected[0]},"), text
    assert expected[1] in text
    assert launched.json()["response"]["shouldEndSession"] is False

    # Linked: later requests without the token are answered for the same person.
    listed = speech(
        await skill.post(
            skill.envelope("IntentRequest", user=user, intent={"name": "GetRemindersIntent"})
        )
    )
    assert listed.startswith("You have 2 reminders.") and "Walk" in listed

    messages = speech(
        await skill.post(
            skill.envelope("IntentRequest", user=user, intent={"name": "ReadMessagesIntent"})
        )
    )
    assert messages == "You have no new messages from your care team."

    ack = speech(
        await skill.post(
            skill.envelope("IntentRequest", user=user, intent={"name": "AcknowledgeIntent"})
        )
    )
    assert "Thank you" in ack
    ended = await skill.post(
        skill.envelope("SessionEndedRequest", user=user, reason="USER_INITIATED")
    )
    assert ended.status_code == 200 and "outputSpeech" not in ended.json()["response"]

    # The reminders made before the link are synced to this user's device once linked.
    await run_jobs(app)
    held = (
        await client.get("/sandbox/alexa/reminders", params={"user-id": user}, headers=org.admin)
    ).json()["data"]
    texts = sorted(r["alertInfo"]["spokenInfo"]["content"][0]["text"] for r in held)
    assert texts == [
        "Time to take your blood pressure pill",
        "Time to take your blood pressure pill",
    ]


# --- "read my new messages": PHI-safe unless the organization opts in ------------------------


async def post_message(
    client: httpx.AsyncClient, org: Org, channel: str, author: str, text: str
) -> str:
    posted = await client.post(
        "/v1/messaging-messages/",
        json=doc(
            "messaging-messages", {"channel-id": channel, "individual-id": author, "message": text}
        ),
        headers=org.staff,
    )
    assert posted.status_code == 201, posted.text
    ident: str = posted.json()["data"]["id"]
    return ident


async def set_read_text(client: httpx.AsyncClient, org: Org, value: bool) -> None:
    response = await client.post(
        "/v1/org-preferences/",
        json=doc("org-preferences", {"name": "alexa-read-message-text", "value-js": value}),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text


async def test_new_messages_say_how_many_and_from_whom_never_the_text(
    skill: Skill, client: httpx.AsyncClient, org: Org
) -> None:
    patient = await make_individual_id(client, org, **{"first-name": "Pat"})
    nurse = await make_individual_id(
        client, org, **{"first-name": "Nora", "last-name": "Quinn", "account-type": "provider"}
    )
    doctor = await make_individual_id(
        client, org, **{"first-name": "Dev", "last-name": "Rao", "account-type": "provider"}
    )
    channel = (
        await client.post(
            "/v1/messaging-channels/",
            json=doc("messaging-channels", {"individual-ids": [patient, nurse, doctor]}),
            headers=org.staff,
        )
    ).json()["data"]["id"]
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    token = await individual_token(client, org, patient)
    await skill.post(skill.envelope(user=user, token=token))

    async def read_messages() -> str:
        return speech(
            await skill.post(
                skill.envelope("IntentRequest", user=user, intent={"name": "ReadMessagesIntent"})
            )
        )

    secrets = ["Your potassium was 5.9", "Please stop the lisinopril", "Call us about the biopsy"]
    await post_message(client, org, channel, patient, "My own question")  # not new to them
    await post_message(client, org, channel, nurse, secrets[0])
    await post_message(client, org, channel, nurse, secrets[1])
    last = await post_message(client, org, channel, doctor, secrets[2])

    said = await read_messages()
    assert said == (
        "You have 3 new messages from your care team: 2 from Nora Quinn and 1 from Dev Rao. "
        "Please open the app to read them."
    )
    assert not any(word in said.lower() for word in ("potassium", "lisinopril", "biopsy"))

    # The organization lets the skill read the text: oldest first, with who wrote it.
    await set_read_text(client, org, True)
    said = await read_messages()
    assert said == (
        "You have 3 new messages from your care team. "
        "From Nora Quinn: Your potassium was 5.9. From Nora Quinn: Please stop the lisinopril. "
        "From Dev Rao: Call us about the biopsy."
    )
    # Only what is unread: once the patient read them in the app, nothing is new.
    acked = await client.post(
        f"/v1/messaging-messages/{last}/ack/", json={"individual-id": patient}, headers=org.staff
    )
    assert acked.status_code in (200, 201), acked.text
    assert await read_messages() == "You have no new messages from your care team."

    # Back to the default: the text is never read again.
    await post_message(client, org, channel, doctor, "Your scan is clear")
    await set_read_text(client, org, False)
    said = await read_messages()
    assert said == (
        "You have 1 new message from your care team, from Dev Rao. "
        "Please open the app to read them."
    )


async def test_opted_in_reading_stops_after_five(
    skill: Skill, client: httpx.AsyncClient, org: Org
) -> None:
    patient = await make_individual_id(client, org)
    nurse = await make_individual_id(
        client, org, **{"first-name": "Nora", "last-name": "Quinn", "account-type": "provider"}
    )
    channel = (
        await client.post(
            "/v1/messaging-channels/",
            json=doc("messaging-channels", {"individual-ids": [patient, nurse]}),
            headers=org.staff,
        )
    ).json()["data"]["id"]
    for number in range(1, 8):
        await post_message(client, org, channel, nurse, f"Note {number}")
    await set_read_text(client, org, True)
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    token = await individual_token(client, org, patient)
    said = speech(
        await skill.post(
            skill.envelope(
                "IntentRequest", user=user, token=token, intent={"name": "ReadMessagesIntent"}
            )
        )
    )
    assert said.startswith("You have 7 new messages from your care team. From Nora Quinn: Note 1.")
    assert "Note 5." in said and "Note 6" not in said
    assert said.endswith("2 more messages in the app.")


async def test_an_api_key_as_access_token_links_nobody(skill: Skill, org: Org) -> None:
    secret = org.staff["Authorization"].removeprefix("Bearer ")
    answered = await skill.post(skill.envelope(user="amzn1.ask.account.k", token=secret))
    assert "link your account" in speech(answered)


# --- reminders: RRULE in local time, sync through the adapter ------------------------------------


async def test_weekly_reminder_keeps_local_time_across_dst_and_syncs(
    skill: Skill, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    person = await make_individual_id(client, org)
    token = await individual_token(client, org, person)
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    await skill.post(skill.envelope(user=user, token=token))  # linked

    # Weekly on Mondays at 08:30 New York time, from a Monday far enough ahead that the five
    # listed occurrences straddle the spring change of 2031 (9 March).
    created = await make_reminder(
        client,
        org,
        person,
        **{
            "reminder-time-local": "2031-02-24T08:30",
            "reminder-rrule": "RRULE:FREQ=WEEKLY;BYDAY=MO",
        },
    )
    attributes = created["attributes"]
    assert attributes["reminder-rrule"] == "FREQ=WEEKLY;BYDAY=MO"
    assert attributes["synced-to-alexa"] is False and attributes["alexa-reminder-id"] is None
    occurrences = [
        datetime.fromisoformat(t.replace("Z", "+00:00")) for t in attributes["next-occurrences"]
    ]
    assert len(occurrences) == 5
    local = [o.astimezone(NY) for o in occurrences]
    assert {(t.hour, t.minute, t.weekday()) for t in local} == {(8, 30, 0)}
    assert [t.date().isoformat() for t in local][:3] == ["2031-02-24", "2031-03-03", "2031-03-10"]
    assert {o.hour for o in occurrences} == {13, 12}  # the UTC instant moves, not the local time

    await run_jobs(app)
    got = await client.get(f"/v1/ask-reminders/{created['id']}/", headers=org.readonly)
    synced = got.json()["data"]["attributes"]
    assert synced["synced-to-alexa"] is True and synced["sync-error"] is None
    held = (
        await client.get("/sandbox/alexa/reminders", params={"user-id": user}, headers=org.admin)
    ).json()["data"]
    assert [r["alert-token"] for r in held] == [synced["alexa-reminder-id"]]
    assert held[0]["trigger"]["scheduledTime"] == "2031-02-24T08:30:00.000"
    assert held[0]["trigger"]["recurrence"] == {"recurrenceRules": ["FREQ=WEEKLY;BYDAY=MO"]}

    # A change is synced again: the device holds the new text under the same id.
    patched = await client.patch(
        f"/v1/ask-reminders/{created['id']}/",
        json=doc("ask-reminders", {"reminder-content": "Two pills today"}, created["id"]),
        headers=org.staff,
    )
    assert (
        patched.status_code == 200
        and patched.json()["data"]["attributes"]["synced-to-alexa"] is False
    )
    await run_jobs(app)
    held = (
        await client.get("/sandbox/alexa/reminders", params={"user-id": user}, headers=org.admin)
    ).json()["data"]
    assert held[0]["alertInfo"]["spokenInfo"]["content"][0]["text"] == "Two pills today"
    assert held[0]["version"] == 2

    listed = await client.get(
        "/v1/ask-reminders/", params={"individual-id": person}, headers=org.readonly
    )
    assert [r["id"] for r in listed.json()["data"]] == [created["id"]]


async def test_failed_sync_shows_its_error_and_retries(
    skill: Skill, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    person = await make_individual_id(client, org)
    token = await individual_token(client, org, person)
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    await skill.post(skill.envelope(user=user, token=token))
    armed = await client.post(
        "/sandbox/alexa/failures", json={"error": "not-sent", "target": user}, headers=org.admin
    )
    assert armed.status_code == 200, armed.text
    created = await make_reminder(client, org, person)
    await run_jobs(app)
    failed = (await client.get(f"/v1/ask-reminders/{created['id']}/", headers=org.staff)).json()[
        "data"
    ]["attributes"]
    assert failed["synced-to-alexa"] is False
    assert failed["sync-error"]
    await run_until_idle(app.state.database, app.state.settings, horizon=120.0)
    done = (await client.get(f"/v1/ask-reminders/{created['id']}/", headers=org.staff)).json()[
        "data"
    ]["attributes"]
    assert done["synced-to-alexa"] is True and done["sync-error"] is None


async def test_unlinked_individual_shows_why_not_synced(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    person = await make_individual_id(client, org)
    created = await make_reminder(client, org, person, **{"reminder-rrule": None})
    await run_jobs(app)
    got = (await client.get(f"/v1/ask-reminders/{created['id']}/", headers=org.staff)).json()[
        "data"
    ]["attributes"]
    assert got["synced-to-alexa"] is False and "not linked" in got["sync-error"]


@pytest.mark.parametrize(
    ("attrs", "pointer"),
    [
        ({"reminder-rrule": "FREQ=SOMETIMES"}, "reminder-rrule"),
        ({"reminder-rrule": "DTSTART:20300101T000000\nRRULE:FREQ=DAILY"}, "reminder-rrule"),
        ({"reminder-time-local": "2030-03-04T08:30:00Z"}, "reminder-time-local"),
        ({"reminder-time-local": "2030-02-30T08:30"}, "reminder-time-local"),
        ({"tz-info": "Mars/Olympus"}, "tz-info"),
        ({"reminder-content": "x" * 251}, "reminder-content"),
        # Rules whose expansion is unbounded: each list of reminders spent seconds (MINUTELY
        # from 2020: 25 s) or searched to the year 9999 (a day that never exists).
        ({"reminder-rrule": "FREQ=MINUTELY"}, "reminder-rrule"),
        ({"reminder-rrule": "FREQ=SECONDLY;COUNT=99999999999"}, "reminder-rrule"),
        ({"reminder-rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, "reminder-rrule"),
        ({"reminder-rrule": "FREQ=DAILY;COUNT=100000"}, "reminder-rrule"),
        (
            {"reminder-rrule": "FREQ=YEARLY;BYMONTH=2", "reminder-time-local": "2030-01-30T08:30"},
            "reminder-rrule",
        ),
        (
            {"reminder-rrule": "FREQ=DAILY", "reminder-time-local": "1960-01-01T08:30"},
            "reminder-time-local",
        ),
    ],
)
async def test_bad_reminders_are_refused(
    client: httpx.AsyncClient, org: Org, attrs: dict[str, Any], pointer: str
) -> None:
    person = await make_individual_id(client, org)
    values = {
        "individual-id": person,
        "name": "n",
        "reminder-content": "c",
        "reminder-time-local": "2030-03-04T08:30",
        "tz-info": "America/New_York",
        **attrs,
    }
    refused = await client.post(
        "/v1/ask-reminders/", json=doc("ask-reminders", values), headers=org.staff
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["errors"][0]["source"]["pointer"] == f"/data/attributes/{pointer}"


async def test_a_patch_to_an_unbounded_rule_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, org: Org
) -> None:
    person = await make_individual_id(client, org)
    created = await make_reminder(client, org, person)
    ident = created["id"]
    for attrs in (
        {"reminder-rrule": "FREQ=HOURLY"},
        {"reminder-time-local": "1969-12-29T08:30"},
        {"reminder-rrule": "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=4"},
    ):
        refused = await client.patch(
            f"/v1/ask-reminders/{ident}/",
            json=doc("ask-reminders", attrs, ident),
            headers=org.staff,
        )
        assert refused.status_code == 400, refused.text
    got = (await client.get(f"/v1/ask-reminders/{ident}/", headers=org.staff)).json()["data"]
    assert got["attributes"]["reminder-rrule"] == "FREQ=WEEKLY;BYDAY=MO"
    assert got["attributes"]["reminder-time-local"] == "2020-01-06T08:30"
    assert len(got["attributes"]["next-occurrences"]) == 5


async def test_reminders_list_needs_individual_and_stays_in_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    missing = await client.get("/v1/ask-reminders/", headers=org.staff)
    assert (
        missing.status_code == 400
        and missing.json()["errors"][0]["source"]["parameter"] == "individual-id"
    )
    person = await make_individual_id(client, org)
    created = await make_reminder(client, org, person)
    assert (
        await client.get(f"/v1/ask-reminders/{created['id']}/", headers=other_org.admin)
    ).status_code == 404
    stranger = await make_individual_id(client, other_org)
    refused = await client.post(
        "/v1/ask-reminders/",
        json=doc(
            "ask-reminders",
            {
                "individual-id": stranger,
                "name": "n",
                "reminder-content": "c",
                "reminder-time-local": "2030-03-04T08:30",
                "tz-info": "America/New_York",
            },
        ),
        headers=org.staff,
    )
    assert refused.status_code == 404


# --- subscriptions and proactive events -----------------------------------------------------------


async def test_subscription_events_and_proactive_send(
    skill: Skill, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    person = await make_individual_id(client, org)
    token = await individual_token(client, org, person)
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    changed = await skill.post(
        skill.envelope(
            "AlexaSkillEvent.ProactiveSubscriptionChanged",
            user=user,
            token=token,
            body={
                "subscriptions": [
                    {"eventName": "AMAZON.MessageAlert.Activated"},
                    {"eventName": "AMAZON.MedicationReminder.Activated"},
                ]
            },
        )
    )
    assert changed.status_code == 200, changed.text
    listed = await client.get(
        "/v1/ask-subscriptions/", params={"filter[user-id]": person}, headers=org.staff
    )
    assert listed.status_code == 200
    [subscription] = listed.json()["data"]
    attributes = subscription["attributes"]
    assert attributes["alexa-user-id"] == user and attributes["alexa-app-id"] == APP_ID
    assert attributes["registered-events"] == [
        "AMAZON.MedicationReminder.Activated",
        "AMAZON.MessageAlert.Activated",
    ]
    by_skill = await client.get(
        "/v1/ask-subscriptions/",
        params={"filter[skill-id]": attributes["skill-id"], "filter[user-id]": person},
        headers=org.staff,
    )
    assert [s["id"] for s in by_skill.json()["data"]] == [subscription["id"]]
    none = await client.get(
        "/v1/ask-subscriptions/", params={"filter[skill-id]": str(uuid.uuid4())}, headers=org.staff
    )
    assert none.json()["data"] == []

    sent = await client.post(
        f"/v1/ask-subscriptions/{subscription['id']}/send/",
        json={
            "event": {
                "name": "AMAZON.MessageAlert.Activated",
                "payload": {
                    "state": {"status": "UNREAD", "freshness": "NEW"},
                    "messageGroup": {
                        "creator": {"name": "Your care team"},
                        "count": 1,
                        "urgency": "URGENT",
                    },
                },
            },
            "expire": 3600,
        },
        headers=org.staff,
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["state"] == "accepted"
    await run_jobs(app)
    announced = (
        await client.get("/sandbox/alexa/events", params={"user-id": user}, headers=org.admin)
    ).json()["data"]
    assert [e["event"]["name"] for e in announced] == ["AMAZON.MessageAlert.Activated"]
    assert announced[0]["referenceId"] == sent.json()["id"]
    assert announced[0]["relevantAudience"] == {"type": "Unicast", "payload": {"user": user}}

    bad = await client.post(
        f"/v1/ask-subscriptions/{subscription['id']}/send/",
        json={"event": {"name": "AMAZON.MessageAlert.Activated"}, "expire": 10},
        headers=org.staff,
    )
    assert bad.status_code == 400

    # Unsubscribing (no events left) removes the subscription.
    await skill.post(
        skill.envelope("AlexaSkillEvent.ProactiveSubscriptionChanged", user=user, body={})
    )
    gone = await client.get(f"/v1/ask-subscriptions/{subscription['id']}/", headers=org.staff)
    assert gone.status_code == 404


async def test_purge_removes_alexa_data(
    skill: Skill, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    person = await make_individual_id(client, org)
    token = await individual_token(client, org, person)
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    await skill.post(skill.envelope(user=user, token=token))
    created = await make_reminder(client, org, person)
    await run_jobs(app)
    assert (
        len(
            (
                await client.get(
                    "/sandbox/alexa/reminders", params={"user-id": user}, headers=org.admin
                )
            ).json()["data"]
        )
        == 1
    )
    purge = await client.post(
        "/v1/purge-data/",
        json=doc("system-purges", {"entity-type": "individual", "entity-id": person}),
        headers=org.admin,
    )
    assert purge.status_code in (200, 201, 202), purge.text
    await run_jobs(app)
    assert (
        await client.get(f"/v1/ask-reminders/{created['id']}/", headers=org.staff)
    ).status_code == 404
    assert (
        await client.get("/sandbox/alexa/reminders", params={"user-id": user}, headers=org.admin)
    ).json()["data"] == []
    assert "link your account" in speech(await skill.post(skill.envelope(user=user)))
