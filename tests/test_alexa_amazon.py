"""The amazon alexa adapter through its real HTTP client (httpx) against a local server that
answers as Login with Amazon and the Alexa APIs do (``tests/alexa_fake.py``): the wire format,
the LWA token cache (expiry, renewal, a token refused once), the classification of Amazon's
answers, the user's API token and the Skill Messaging API that asks for a fresh one; then
Courier over HTTP with ``COURIER_ALEXA_PROVIDER=amazon``: a linked user's request leaves its
token, the sync job creates the reminder on the device with it, and without one Courier asks
Alexa and syncs when the ``Messaging.MessageReceived`` request brings a fresh token."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from courier.app import create_app
from courier.config import Settings
from courier.core.time import utcnow
from courier.domains.alexa.service import DELETE_JOB, SYNC_JOB
from courier.jobs import run_until_idle
from courier.jobs.registry import load_job_modules
from courier.models.alexa import AlexaUserToken
from courier.providers.alexa import ALEXA, AlexaReminder, ProactiveEvent, UserApiAccess
from courier.providers.alexa.amazon import AmazonAlexa
from courier.providers.alexa.base import AWAITING_USER_TOKEN
from courier.providers.common import NotSent, Permanent, providers_for
from tests.alexa_fake import PROACTIVE_SCOPE, SKILL_MESSAGING_SCOPE, FakeAmazon, start_fake_amazon
from tests.alexa_support import CERT_URL, Chains, amazon_headers, make_ca, make_leaf, pem
from tests.conftest import Org, create_org, doc, make_settings, openapi_checked
from tests.factories import make_individual_id

APP_ID = "amzn1.ask.skill.amazon-test"


@pytest.fixture
def fake() -> Iterator[FakeAmazon]:
    yield from start_fake_amazon()


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def amazon_settings(fake: FakeAmazon, tmp_path: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "alexa_provider": "amazon",
        "alexa_client_id": fake.client_id,
        "alexa_client_secret": fake.client_secret,
        "alexa_lwa_url": fake.lwa_url,
        "alexa_api_url": fake.url,
    }
    values.update(changes)
    return Settings(**values)


@pytest.fixture
async def alexa(fake: FakeAmazon, tmp_path: Path) -> AsyncIterator[tuple[AmazonAlexa, Clock]]:
    clock = Clock()
    adapter = AmazonAlexa(amazon_settings(fake, tmp_path), clock=clock)
    try:
        yield adapter, clock
    finally:
        await adapter.close()


def reminder(text: str = "Time for your blood pressure pill") -> AlexaReminder:
    return AlexaReminder(
        text=text,
        locale="en-US",
        scheduled_local=datetime(2031, 2, 24, 8, 30),
        time_zone="America/New_York",
        recurrence_rules=("FREQ=WEEKLY;BYDAY=MO",),
    )


def event(user_visible: str = "Care team", **changes: Any) -> ProactiveEvent:
    values: dict[str, Any] = {
        "name": "AMAZON.MessageAlert.Activated",
        "payload": {
            "state": {"status": "UNREAD", "freshness": "NEW"},
            "messageGroup": {"creator": {"name": user_visible}, "count": 1},
        },
        "reference_id": str(uuid.uuid4()),
        "expires_at": utcnow() + timedelta(hours=2),
    }
    values.update(changes)
    return ProactiveEvent(**values)


def new_user() -> str:
    return f"amzn1.ask.account.{uuid.uuid4().hex}"


# --- the wire format ------------------------------------------------------------------------


async def test_reminder_and_event_wire_format(
    alexa: tuple[AmazonAlexa, Clock], fake: FakeAmazon
) -> None:
    adapter, _ = alexa
    user = new_user()
    access = UserApiAccess(fake.user_token(user), fake.url)
    alert = await adapter.create_reminder(reminder(), user_id=user, access=access)
    [held] = fake.held(user)
    assert held["alertToken"] == alert
    assert held["trigger"] == {
        "type": "SCHEDULED_ABSOLUTE",
        "scheduledTime": "2031-02-24T08:30:00.000",
        "timeZoneId": "America/New_York",
        "recurrence": {"recurrenceRules": ["FREQ=WEEKLY;BYDAY=MO"]},
    }
    assert held["alertInfo"] == {
        "spokenInfo": {
            "content": [{"locale": "en-US", "text": "Time for your blood pressure pill"}]
        }
    }
    assert held["pushNotification"] == {"status": "ENABLED"}
    sent_at = datetime.fromisoformat(held["requestTime"])
    assert sent_at.tzinfo is None  # local wall-clock form, as Amazon's examples write it
    assert abs(sent_at.replace(tzinfo=UTC) - utcnow()) < timedelta(minutes=1)
    # Reminder calls carry the user's token, never an LWA one.
    assert fake.lwa_issued() == 0

    multicast = event()
    result = await adapter.send_event(multicast, user_id=None)
    assert (result.vendor_id, result.vendor_status) == (multicast.reference_id, "accepted")
    [posted] = fake.events
    assert posted["stage"] == "live"
    assert posted["relevantAudience"] == {"type": "Multicast", "payload": {}}
    assert posted["event"] == {"name": multicast.name, "payload": multicast.payload}
    assert posted["localizedAttributes"] == []
    for stamp in (posted["timestamp"], posted["expiryTime"]):
        assert stamp.endswith("Z") and datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert fake.count("POST", "/v1/proactiveEvents/") == 1


async def test_development_stage(fake: FakeAmazon, tmp_path: Path) -> None:
    adapter = AmazonAlexa(amazon_settings(fake, tmp_path, alexa_events_stage="development"))
    try:
        await adapter.send_event(event(), user_id=new_user())
    finally:
        await adapter.close()
    assert fake.count("POST", "/v1/proactiveEvents/stages/development") == 1
    assert [e["stage"] for e in fake.events] == ["development"]


async def test_lwa_client_credentials_request(fake: FakeAmazon, tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    async def spy(request: httpx.Request) -> None:
        seen.append(request)

    adapter = AmazonAlexa(amazon_settings(fake, tmp_path))
    client = adapter._http()
    client.event_hooks["request"] = [spy]
    try:
        await adapter.send_event(event(), user_id=new_user())
    finally:
        await adapter.close()
    token_request = next(r for r in seen if r.url.path == "/auth/o2/token")
    assert token_request.method == "POST"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(token_request.content.decode())) == {
        "grant_type": "client_credentials",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "scope": PROACTIVE_SCOPE,
    }
    api = next(r for r in seen if r.url.path.startswith("/v1/proactiveEvents"))
    assert api.headers["authorization"].startswith("Bearer Atc|")
    assert api.headers["content-type"] == "application/json"


# --- the LWA token cache --------------------------------------------------------------------


async def test_token_kept_until_shortly_before_it_expires(
    alexa: tuple[AmazonAlexa, Clock], fake: FakeAmazon
) -> None:
    adapter, clock = alexa
    user = new_user()
    await adapter.send_event(event(), user_id=user)
    clock.now += 3600 - 61  # still more than a minute left: the same token
    await adapter.send_event(event(), user_id=user)
    assert fake.lwa_issued() == 1
    clock.now += 2  # less than a minute left: a new one before Amazon would refuse it
    await adapter.send_event(event(), user_id=user)
    assert fake.lwa_issued() == 2
    assert len(fake.announced(user)) == 3


async def test_token_refused_early_is_renewed_once(
    alexa: tuple[AmazonAlexa, Clock], fake: FakeAmazon
) -> None:
    adapter, _ = alexa
    user = new_user()
    await adapter.send_event(event(), user_id=user)
    fake.expire_lwa()  # Amazon refuses it (403 from the Proactive Events API) before its time
    await adapter.send_event(event(), user_id=user)
    assert fake.lwa_issued() == 2 and fake.lwa_valid() == 1
    assert len(fake.announced(user)) == 2


async def test_401_renews_the_token_once_then_gives_up(
    alexa: tuple[AmazonAlexa, Clock], fake: FakeAmazon
) -> None:
    adapter, _ = alexa
    fake.fail_next(401, path="/v1/proactiveEvents", code="INVALID_ACCESS_TOKEN")
    await adapter.send_event(event(), user_id=new_user())  # 401, new token, accepted
    assert fake.lwa_issued() == 2
    fake.fail_next(401, path="/v1/proactiveEvents", times=2)
    with pytest.raises(NotSent) as refused:
        await adapter.send_event(event(), user_id=new_user())
    assert refused.value.code == "401"
    assert fake.lwa_issued() == 3  # the held token, refused; one renewal, refused: give up
    assert fake.count("POST", "/v1/proactiveEvents/") == 4
    await adapter.send_event(event(), user_id=new_user())  # the refused token is not reused
    assert fake.lwa_issued() == 4 and len(fake.events) == 2


# --- classification of Amazon's answers -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(429, "7", 7.0), (500, None, None), (503, "2", 2.0), (504, None, None)],
)
async def test_throttled_or_failing_amazon_is_retried(
    alexa: tuple[AmazonAlexa, Clock],
    fake: FakeAmazon,
    status: int,
    retry_after: str | None,
    expected: float | None,
) -> None:
    adapter, _ = alexa
    user = new_user()
    access = UserApiAccess(fake.user_token(user), fake.url)
    fake.fail_next(status, path="/v1/alerts/reminders", code="THROTTLED", retry_after=retry_after)
    with pytest.raises(NotSent) as refused:
        await adapter.create_reminder(reminder(), user_id=user, access=access)
    assert refused.value.retry_after == expected
    assert refused.value.code == "THROTTLED"
    fake.fail_next(status, path="/v1/proactiveEvents", retry_after=retry_after)
    with pytest.raises(NotSent):
        await adapter.send_event(event(), user_id=user)
    assert fake.held(user) == [] and fake.announced(user) == []


async def test_bad_requests_are_permanent(
    alexa: tuple[AmazonAlexa, Clock], fake: FakeAmazon
) -> None:
    adapter, _ = alexa
    user = new_user()
    access = UserApiAccess(fake.user_token(user), fake.url)
    fake.fail_next(403, path="/v1/alerts/reminders", code="MAX_REMINDERS_EXCEEDED")
    with pytest.raises(Permanent) as forbidden:
        await adapter.create_reminder(reminder(), user_id=user, access=access)
    assert forbidden.value.code == "MAX_REMINDERS_EXCEEDED"
    with pytest.raises(Permanent) as bad:
        await adapter.send_event(event(name="NOT.AN.EVENT.NAME"), user_id=user)
    assert bad.value.code == "INVALID_EVENT_NAME"
    assert "400" in bad.value.message


async def test_lwa_refusing_the_credentials_is_permanent(fake: FakeAmazon, tmp_path: Path) -> None:
    wrong = AmazonAlexa(amazon_settings(fake, tmp_path, alexa_client_secret="not-the-secret"))
    missing = AmazonAlexa(amazon_settings(fake, tmp_path, alexa_client_id=None))
    try:
        with pytest.raises(Permanent) as refused:
            await wrong.send_event(event(), user_id=new_user())
        assert refused.value.code == "invalid_client"
        with pytest.raises(Permanent) as unset:
            await missing.send_event(event(), user_id=new_user())
        assert unset.value.code == "no-credentials"
        fake.fail_next(503, path="/auth/o2/token", retry_after="3")
        right = AmazonAlexa(amazon_settings(fake, tmp_path))
        with pytest.raises(NotSent) as busy:
            await right.send_event(event(), user_id=new_user())
        assert busy.value.retry_after == 3.0
        await right.send_event(event(), user_id=new_user())
        await right.close()
    finally:
        await wrong.close()
        await missing.close()
    assert fake.lwa_issued() == 1


async def test_unreachable_amazon_is_not_sent(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = f"http://127.0.0.1:{port}"
    adapter = AmazonAlexa(
        Settings(
            data_dir=tmp_path,
            alexa_client_id="id",
            alexa_client_secret="secret",
            alexa_lwa_url=closed + "/auth/o2/token",
            alexa_api_url=closed,
        )
    )
    try:
        with pytest.raises(NotSent) as down:
            await adapter.send_event(event(), user_id=new_user())
        assert down.value.code == "unreachable"
        with pytest.raises(NotSent):
            await adapter.delete_reminder(
                "a1", user_id="u", access=UserApiAccess("token", "https://api.amazonalexa.test")
            )
    finally:
        await adapter.close()


# --- the user's API token --------------------------------------------------------------------


async def test_without_a_user_token_alexa_is_asked_for_one(
    alexa: tuple[AmazonAlexa, Clock], fake: FakeAmazon
) -> None:
    adapter, clock = alexa
    user = new_user()
    with pytest.raises(NotSent) as waiting:
        await adapter.create_reminder(reminder(), user_id=user)
    assert waiting.value.code == AWAITING_USER_TOKEN and waiting.value.retry_after == 30.0
    assert fake.skill_messages == [
        (user, {"data": {"courier": "api-access-token"}, "expiresAfterSeconds": 3600})
    ]
    assert fake.lwa_scopes() == [SKILL_MESSAGING_SCOPE]
    # A refused (expired) token asks too, but not twice within a minute for the same user.
    stale = UserApiAccess(fake.user_token(user), fake.url)
    fake.revoke_user_tokens(user)
    for call in (
        adapter.update_reminder("a1", reminder(), user_id=user, access=stale),
        adapter.delete_reminder("a1", user_id=user, access=None),
    ):
        with pytest.raises(NotSent) as again:
            await call
        assert again.value.code == AWAITING_USER_TOKEN
    assert len(fake.skill_messages) == 1
    clock.now += 61
    with pytest.raises(NotSent):
        await adapter.create_reminder(reminder(), user_id=user, access=stale)
    assert len(fake.skill_messages) == 2
    assert fake.held(user) == []
    # With the fresh token the message brought, the same calls go through.
    fresh = UserApiAccess(fake.user_token(user), fake.url)
    alert = await adapter.create_reminder(reminder(), user_id=user, access=fresh)
    await adapter.update_reminder(alert, reminder("Two pills"), user_id=user, access=fresh)
    assert [h["version"] for h in fake.held(user)] == [2]
    await adapter.delete_reminder(alert, user_id=user, access=fresh)
    assert fake.held(user) == []


async def test_user_endpoint_only_when_it_is_amazons(
    alexa: tuple[AmazonAlexa, Clock], fake: FakeAmazon
) -> None:
    adapter, _ = alexa
    assert adapter._user_api(UserApiAccess("t", "https://api.eu.amazonalexa.com")) == (
        "https://api.eu.amazonalexa.com"
    )
    assert adapter._user_api(UserApiAccess("t", fake.url)) == fake.url
    # A host that is neither Amazon's nor the configured one: the configured one is used.
    user = new_user()
    elsewhere = UserApiAccess(fake.user_token(user), "https://collector.example.test")
    assert adapter._user_api(elsewhere) == fake.url
    assert await adapter.create_reminder(reminder(), user_id=user, access=elsewhere)
    assert len(fake.held(user)) == 1


# --- Courier over HTTP with the amazon adapter -----------------------------------------------


@dataclass
class Installation:
    app: Any
    client: httpx.AsyncClient
    org: Org
    key: rsa.RSAPrivateKey
    fake: FakeAmazon

    def envelope(
        self,
        request_type: str,
        *,
        user: str,
        token: str | None = None,
        api_token: str | None = None,
        **request: Any,
    ) -> bytes:
        system_user: dict[str, Any] = {"userId": user}
        if token is not None:
            system_user["accessToken"] = token
        system: dict[str, Any] = {
            "application": {"applicationId": APP_ID},
            "user": system_user,
            "apiEndpoint": self.fake.url,
        }
        if api_token is not None:
            system["apiAccessToken"] = api_token
        return orjson.dumps(
            {
                "version": "1.0",
                "context": {"System": system},
                "request": {
                    "type": request_type,
                    "requestId": f"amzn1.echo-api.request.{uuid.uuid4()}",
                    "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "locale": "en-US",
                    **request,
                },
            }
        )

    async def ask(self, body: bytes) -> httpx.Response:
        return await self.client.post(
            "/v1/ask-entries/", content=body, headers=amazon_headers(self.key, body)
        )

    async def run_jobs(self, *, every_kind: bool = False) -> None:
        load_job_modules(self.app.state.settings)
        await run_until_idle(
            self.app.state.database,
            self.app.state.settings,
            kinds=None if every_kind else {SYNC_JOB, DELETE_JOB},
        )


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeAmazon]:
    yield from start_fake_amazon()


@pytest.fixture(scope="module")
async def installation(
    database_url: str, data_dir: Path, module_fake: FakeAmazon
) -> AsyncIterator[Installation]:
    fake = module_fake
    settings = make_settings(
        database_url,
        data_dir,
        alexa_provider="amazon",
        alexa_client_id=fake.client_id,
        alexa_client_secret=fake.client_secret,
        alexa_lwa_url=fake.lwa_url,
        alexa_api_url=fake.url,
    )
    ca_key, ca = make_ca()
    leaf_key, leaf = make_leaf(ca_key, ca)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        adapter = providers_for(settings).get(ALEXA)
        assert isinstance(adapter, AmazonAlexa)
        adapter.skill_requests.fetch = Chains({CERT_URL: pem(leaf, ca)}).fetch
        adapter.skill_requests.trust([ca])
        async with openapi_checked(application, base_url="http://courier.test") as client:
            yield Installation(application, client, await create_org(client), leaf_key, fake)
        await adapter.close()


async def linked_person(site: Installation, user: str, api_token: str | None) -> str:
    person = await make_individual_id(site.client, site.org)
    minted = await site.client.post(
        "/v1/access-tokens/",
        json=doc("access-tokens", {"individual-id": person}),
        headers=site.org.staff,
    )
    assert minted.status_code == 201, minted.text
    token = minted.json()["data"]["attributes"]["token"]
    answered = await site.ask(
        site.envelope("LaunchRequest", user=user, token=token, api_token=api_token)
    )
    assert answered.status_code == 200, answered.text
    return person


async def make_reminder(site: Installation, person: str, **attrs: Any) -> str:
    values = {
        "individual-id": person,
        "name": "Blood pressure pill",
        "reminder-content": "Time to take your blood pressure pill",
        "reminder-rrule": "FREQ=WEEKLY;BYDAY=MO",
        "reminder-time-local": "2031-02-24T08:30",
        "tz-info": "America/New_York",
        **attrs,
    }
    created = await site.client.post(
        "/v1/ask-reminders/", json=doc("ask-reminders", values), headers=site.org.staff
    )
    assert created.status_code == 201, created.text
    ident: str = created.json()["data"]["id"]
    return ident


async def reminder_state(site: Installation, ident: str) -> dict[str, Any]:
    got = await site.client.get(f"/v1/ask-reminders/{ident}/", headers=site.org.staff)
    assert got.status_code == 200, got.text
    attributes: dict[str, Any] = got.json()["data"]["attributes"]
    return attributes


async def test_a_linked_users_token_syncs_reminders(installation: Installation) -> None:
    site, fake = installation, installation.fake
    user = new_user()
    api_token = fake.user_token(user)
    person = await linked_person(site, user, api_token)
    [sealed] = await kept_tokens(site, user)
    assert api_token not in sealed and api_token.split(".")[1] not in sealed  # sealed at rest
    ident = await make_reminder(site, person)
    await site.run_jobs()
    state = await reminder_state(site, ident)
    assert state["synced-to-alexa"] is True and state["sync-error"] is None
    [held] = fake.held(user)
    assert held["alertToken"] == state["alexa-reminder-id"]
    assert held["alertInfo"]["spokenInfo"]["content"][0]["text"] == (
        "Time to take your blood pressure pill"
    )
    assert [u for u, _ in fake.skill_messages if u == user] == []

    # The individual purged: the reminder is removed from the device with the same token.
    purge = await site.client.post(
        "/v1/purge-data/",
        json=doc("system-purges", {"entity-type": "individual", "entity-id": person}),
        headers=site.org.admin,
    )
    assert purge.status_code in (200, 201, 202), purge.text
    await site.run_jobs(every_kind=True)
    assert (
        await site.client.get(f"/v1/ask-reminders/{ident}/", headers=site.org.staff)
    ).status_code == 404
    assert fake.held(user) == []


async def test_without_a_token_courier_asks_alexa_and_syncs_when_it_comes(
    installation: Installation,
) -> None:
    site, fake = installation, installation.fake
    user = new_user()
    person = await linked_person(site, user, api_token=None)  # a request without a token
    ident = await make_reminder(site, person, **{"reminder-content": "Walk for ten minutes"})
    await site.run_jobs()
    waiting = await reminder_state(site, ident)
    assert waiting["synced-to-alexa"] is False
    assert waiting["sync-error"].startswith(f"{AWAITING_USER_TOKEN}:")
    assert [u for u, _ in fake.skill_messages].count(user) == 1
    assert fake.held(user) == []

    # Alexa delivers the skill message: a signed request carrying a fresh token.
    delivered = await site.ask(
        site.envelope(
            "Messaging.MessageReceived",
            user=user,
            api_token=fake.user_token(user),
            message={"courier": "api-access-token"},
        )
    )
    assert delivered.status_code == 200, delivered.text
    assert "outputSpeech" not in delivered.json()["response"]
    await site.run_jobs()
    synced = await reminder_state(site, ident)
    assert synced["synced-to-alexa"] is True and synced["sync-error"] is None
    assert [h["alertToken"] for h in fake.held(user)] == [synced["alexa-reminder-id"]]


async def test_a_refused_token_is_dropped_and_replaced(installation: Installation) -> None:
    site, fake = installation, installation.fake
    user = new_user()
    person = await linked_person(site, user, fake.user_token(user))
    fake.revoke_user_tokens(user)  # Amazon no longer takes the token Courier holds
    ident = await make_reminder(site, person)
    await site.run_jobs()
    assert (await reminder_state(site, ident))["sync-error"].startswith(AWAITING_USER_TOKEN)
    asked = [u for u, _ in fake.skill_messages].count(user)
    assert asked == 1
    # The next request of the user (any request) brings a good token; the retry then syncs.
    answered = await site.ask(
        site.envelope(
            "IntentRequest",
            user=user,
            api_token=fake.user_token(user),
            intent={"name": "GetRemindersIntent"},
        )
    )
    assert answered.status_code == 200
    await site.run_jobs()
    assert (await reminder_state(site, ident))["synced-to-alexa"] is True
    assert len(fake.held(user)) == 1


async def test_tokens_of_strangers_are_not_kept(installation: Installation) -> None:
    site, fake = installation, installation.fake
    stranger = new_user()
    answered = await site.ask(
        site.envelope("LaunchRequest", user=stranger, api_token=fake.user_token(stranger))
    )
    assert "link your account" in answered.json()["response"]["outputSpeech"]["text"]
    assert await kept_tokens(site, stranger) == []


async def kept_tokens(site: Installation, user: str) -> list[str]:
    """The sealed tokens Courier keeps for an Alexa user."""
    async with site.app.state.database.sessionmaker() as session:
        stmt = select(AlexaUserToken.token_sealed).where(AlexaUserToken.alexa_user_id == user)
        return list((await session.execute(stmt)).scalars())
