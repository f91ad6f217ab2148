"""The alexa kind's contract, for every adapter: reminders created, updated and deleted through
the Reminders API with Alexa's ids; proactive events announced once per reference id; LWA
tokens obtained once and renewed when refused; failures classified; skill requests accepted
only when signed by Amazon's rules and fresh.

The sandbox is watched through its control surface; the amazon adapter talks HTTP to a local
server that answers as Amazon does (``tests/alexa_fake.py``), and a user's API token is one that
server issued (what a skill request would have carried).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from courier.config import Settings
from courier.core.time import utcnow
from courier.providers.alexa import (
    ALEXA,
    AlexaProvider,
    AlexaReminder,
    ProactiveEvent,
    SkillRequestRejected,
    UserApiAccess,
)
from courier.providers.alexa.signature import load_trusted_roots
from courier.providers.common import (
    SANDBOX_SIGNATURE_HEADER,
    NotSent,
    Permanent,
    Providers,
    RawRequest,
    sandbox_signature,
    sandbox_signing_key,
)
from tests import provider_kinds_support as support
from tests.alexa_fake import FakeAmazon, start_fake_amazon
from tests.alexa_support import CERT_URL, Chains, amazon_headers, make_ca, make_leaf, pem
from tests.provider_kinds_support import World

receiver, world = support.receiver, support.world  # the module's fixtures
ADAPTERS = ["sandbox", "amazon"]


@dataclass(frozen=True)
class Held:
    """A reminder as a user's device holds it, in the same words for every adapter."""

    id: str
    text: str
    scheduled: str
    zone: str
    version: int


class Outside(Protocol):
    """What a test sees of the world outside Courier (the sandbox's controls, or the fake)."""

    def access(self, user: str) -> UserApiAccess | None: ...
    async def reminders(self, user: str) -> list[Held]: ...
    async def events(self, user: str) -> list[dict[str, Any]]: ...
    async def tokens(self) -> tuple[int, int]: ...  # LWA tokens issued, still valid
    async def revoke_tokens(self) -> None: ...
    async def fail_next(self, user: str) -> None: ...  # the next call: 429


def _held(id_key: str, record: dict[str, Any]) -> Held:
    return Held(
        id=str(record[id_key]),
        text=record["alertInfo"]["spokenInfo"]["content"][0]["text"],
        scheduled=record["trigger"]["scheduledTime"],
        zone=record["trigger"]["timeZoneId"],
        version=int(record["version"]),
    )


@dataclass
class SandboxOutside:
    world: World

    def access(self, user: str) -> UserApiAccess | None:
        return None  # the sandbox authenticates every call with its own LWA tokens

    async def reminders(self, user: str) -> list[Held]:
        held = await self.world.act("alexa", "reminders", "GET", **{"user-id": user})
        return [_held("alert-token", r) for r in held]

    async def events(self, user: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.world.act(
            "alexa", "events", "GET", **{"user-id": user}
        )
        return found

    async def tokens(self) -> tuple[int, int]:
        counts = await self.world.act("alexa", "tokens", "GET")
        return counts["issued"], counts["valid"]

    async def revoke_tokens(self) -> None:
        await self.world.act("alexa", "revoke-tokens")

    async def fail_next(self, user: str) -> None:
        await self.world.act("alexa", "failures", error="not-sent", code="429", target=user)


@dataclass
class AmazonOutside:
    fake: FakeAmazon

    def access(self, user: str) -> UserApiAccess | None:
        return UserApiAccess(token=self.fake.user_token(user), endpoint=self.fake.url)

    async def reminders(self, user: str) -> list[Held]:
        return [_held("alertToken", r) for r in self.fake.held(user)]

    async def events(self, user: str) -> list[dict[str, Any]]:
        return self.fake.announced(user)

    async def tokens(self) -> tuple[int, int]:
        return self.fake.lwa_issued(), self.fake.lwa_valid()

    async def revoke_tokens(self) -> None:
        self.fake.revoke_lwa()

    async def fail_next(self, user: str) -> None:
        self.fake.fail_next(429, retry_after="7")


@pytest.fixture(scope="module")
def amazon() -> Iterator[FakeAmazon]:
    yield from start_fake_amazon()


@pytest.fixture(scope="module")
def chain() -> tuple[x509.Certificate, rsa.RSAPrivateKey, Chains]:
    ca_key, ca = make_ca()
    leaf_key, leaf = make_leaf(ca_key, ca)
    return ca, leaf_key, Chains({CERT_URL: pem(leaf, ca)})


@dataclass
class Alexa:
    adapter: AlexaProvider
    outside: Outside
    key: rsa.RSAPrivateKey  # signs skill requests as Amazon does, under a trusted test CA


@pytest.fixture(params=ADAPTERS)
async def alexa(
    request: pytest.FixtureRequest,
    world: World,
    amazon: FakeAmazon,
    chain: tuple[x509.Certificate, rsa.RSAPrivateKey, Chains],
    own_providers: Callable[[Settings], Providers],
) -> AsyncIterator[Alexa]:
    settings = world.settings.model_copy(
        update={
            "alexa_provider": request.param,
            "alexa_client_id": amazon.client_id,
            "alexa_client_secret": amazon.client_secret,
            "alexa_lwa_url": amazon.lwa_url,
            "alexa_api_url": amazon.url,
        }
    )
    adapter: AlexaProvider = own_providers(settings).get(ALEXA)
    assert isinstance(adapter, AlexaProvider) and adapter.name == request.param
    ca, key, chains = chain
    verifier: Any = getattr(adapter, "skill_requests")  # noqa: B009 (not in the Protocol)
    verifier.fetch = chains.fetch
    verifier.trust([ca])
    outside: Outside = (
        SandboxOutside(world) if request.param == "sandbox" else AmazonOutside(amazon)
    )
    try:
        yield Alexa(adapter, outside, key)
    finally:
        verifier.trust(load_trusted_roots(None))
        close = getattr(adapter, "close", None)
        if close is not None:
            await close()


def reminder(text: str = "Take your blood pressure pill", **changes: object) -> AlexaReminder:
    values: dict[str, object] = {
        "text": text,
        "locale": "en-US",
        "scheduled_local": datetime(2030, 3, 4, 8, 30),
        "time_zone": "America/New_York",
        "recurrence_rules": ["FREQ=WEEKLY;BYDAY=MO;BYHOUR=8;BYMINUTE=30"],
    }
    values.update(changes)
    return AlexaReminder(**values)  # type: ignore[arg-type]


def new_user() -> str:
    return f"amzn1.ask.account.{uuid.uuid4().hex}"


async def test_reminders_live_on_the_device(alexa: Alexa) -> None:
    adapter, outside = alexa.adapter, alexa.outside
    user = new_user()
    access = outside.access(user)
    first = await adapter.create_reminder(reminder(), user_id=user, access=access)
    second = await adapter.create_reminder(
        reminder("Walk for ten minutes"), user_id=user, access=access
    )
    assert first != second
    held = {h.id: h for h in await outside.reminders(user)}
    assert set(held) == {first, second}
    assert held[first].scheduled == "2030-03-04T08:30:00.000"
    assert held[first].zone == "America/New_York"

    await adapter.update_reminder(first, reminder("Take two pills"), user_id=user, access=access)
    updated = {h.id: h for h in await outside.reminders(user)}[first]
    assert (updated.text, updated.version) == ("Take two pills", 2)

    await adapter.delete_reminder(second, user_id=user, access=access)
    await adapter.delete_reminder(second, user_id=user, access=access)  # gone: nothing happens
    assert [h.id for h in await outside.reminders(user)] == [first]
    with pytest.raises(Permanent) as missing:
        await adapter.update_reminder(second, reminder(), user_id=user, access=access)
    assert missing.value.code == "not-found"
    other = new_user()
    with pytest.raises(Permanent) as theirs:  # another user's reminder is not theirs to change
        await adapter.update_reminder(
            first, reminder(), user_id=other, access=outside.access(other)
        )
    assert theirs.value.code == "not-found"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"time_zone": "Mars/Olympus"}, "INVALID_TIMEZONE"),
        ({"recurrence_rules": ["FREQ=SOMETIMES"]}, "INVALID_RECURRENCE"),
        ({"text": ""}, "INVALID_TEXT"),
    ],
)
async def test_bad_reminders_are_refused(
    alexa: Alexa, changes: dict[str, object], code: str
) -> None:
    user = new_user()
    with pytest.raises(Permanent) as refused:
        await alexa.adapter.create_reminder(
            reminder(**changes),  # type: ignore[arg-type]
            user_id=user,
            access=alexa.outside.access(user),
        )
    assert refused.value.code == code
    assert await alexa.outside.reminders(user) == []


def event(
    reference: str | None = None, *, expires: timedelta = timedelta(hours=1)
) -> ProactiveEvent:
    return ProactiveEvent(
        name="AMAZON.MessageAlert.Activated",
        payload={"state": {"status": "UNREAD"}, "messageGroup": {"creator": {"name": "Care"}}},
        reference_id=reference or str(uuid.uuid4()),
        expires_at=utcnow() + expires,
    )


async def test_proactive_events_once_per_reference(alexa: Alexa) -> None:
    user = new_user()
    announce = event()
    sent = await alexa.adapter.send_event(announce, user_id=user)
    again = await alexa.adapter.send_event(announce, user_id=user)
    assert sent.vendor_id == again.vendor_id
    announced = await alexa.outside.events(user)
    assert len(announced) == 1
    assert announced[0]["event"]["name"] == "AMAZON.MessageAlert.Activated"
    assert announced[0]["referenceId"] == announce.reference_id
    assert announced[0]["relevantAudience"] == {"type": "Unicast", "payload": {"user": user}}
    with pytest.raises(Permanent) as expired:
        await alexa.adapter.send_event(event(expires=timedelta(days=3)), user_id=user)
    assert expired.value.code == "INVALID_EXPIRY"
    assert len(await alexa.outside.events(user)) == 1


async def test_lwa_tokens_are_cached_and_renewed(alexa: Alexa) -> None:
    user = new_user()
    await alexa.adapter.send_event(event(), user_id=user)
    before, _ = await alexa.outside.tokens()
    for _ in range(3):
        await alexa.adapter.send_event(event(), user_id=user)
    assert (await alexa.outside.tokens())[0] == before  # one token for every call
    await alexa.outside.revoke_tokens()
    await alexa.adapter.send_event(event(), user_id=user)  # refused once, renewed, accepted
    issued, valid = await alexa.outside.tokens()
    assert (issued, valid) == (before + 1, 1)
    assert len(await alexa.outside.events(user)) == 5


async def test_a_refusal_that_may_pass_is_not_sent(alexa: Alexa) -> None:
    user = new_user()
    access = alexa.outside.access(user)
    await alexa.outside.fail_next(user)
    with pytest.raises(NotSent):
        await alexa.adapter.create_reminder(reminder(), user_id=user, access=access)
    assert await alexa.outside.reminders(user) == []
    assert await alexa.adapter.create_reminder(reminder(), user_id=user, access=access)
    assert len(await alexa.outside.reminders(user)) == 1


def envelope(when: datetime) -> bytes:
    stamp = when.isoformat(timespec="seconds").replace("+00:00", "Z")
    return orjson.dumps(
        {"version": "1.0", "request": {"type": "LaunchRequest", "timestamp": stamp}}
    )


def signed(alexa: Alexa, body: bytes, *, signed_body: bytes | None = None) -> RawRequest:
    headers = amazon_headers(alexa.key, body if signed_body is None else signed_body)
    return RawRequest("POST", "http://courier.test/v1/ask-entries/", headers, body)


async def test_skill_requests_must_be_signed_by_amazon_and_fresh(alexa: Alexa) -> None:
    fresh = envelope(utcnow())
    accepted = await alexa.adapter.verify_skill_request(signed(alexa, fresh))
    assert accepted["request"]["type"] == "LaunchRequest"
    cases = {
        "bad-signature": RawRequest("POST", "http://courier.test/", {}, fresh),
        "stale-timestamp": signed(alexa, envelope(utcnow() - timedelta(seconds=300))),
        "malformed": signed(alexa, b"[1, 2]"),
        "bad-signature ": signed(alexa, fresh.replace(b"Launch", b"Lunch"), signed_body=fresh),
        "bad-certificate-url": RawRequest(
            "POST",
            "http://courier.test/",
            {**amazon_headers(alexa.key, fresh), "signaturecertchainurl": "https://x.test/a.pem"},
            fresh,
        ),
    }
    for code, request in cases.items():
        with pytest.raises(SkillRequestRejected) as rejected:
            await alexa.adapter.verify_skill_request(request)
        assert rejected.value.code == code.strip()


def sandbox_signed(world: World, body: bytes, *, sign: bool = True) -> RawRequest:
    url = f"{world.settings.public_url}/v1/ask-entries/"
    headers = {"content-type": "application/json"}
    if sign:
        key = sandbox_signing_key(world.settings)
        headers[SANDBOX_SIGNATURE_HEADER.lower()] = sandbox_signature(key, url, body)
    return RawRequest("POST", url, headers, body)


async def test_only_the_sandbox_takes_its_own_signature(alexa: Alexa, world: World) -> None:
    fresh = sandbox_signed(world, envelope(utcnow()))
    if alexa.adapter.name != "sandbox":
        with pytest.raises(SkillRequestRejected) as refused:
            await alexa.adapter.verify_skill_request(fresh)
        assert refused.value.code == "bad-signature"
        return
    assert (await alexa.adapter.verify_skill_request(fresh))["request"]["type"] == "LaunchRequest"
    for code, request in {
        "bad-signature": sandbox_signed(world, envelope(utcnow()), sign=False),
        "stale-timestamp": sandbox_signed(world, envelope(utcnow() - timedelta(seconds=300))),
        "malformed": sandbox_signed(world, b"[1, 2]"),
    }.items():
        with pytest.raises(SkillRequestRejected) as rejected:
            await alexa.adapter.verify_skill_request(request)
        assert rejected.value.code == code
