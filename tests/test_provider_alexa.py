"""The alexa kind's contract: reminders created, updated and deleted through the Reminders
API with Alexa's ids; proactive events announced once per reference id; LWA tokens obtained
once and renewed when refused; skill requests accepted only when signed and fresh."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import orjson
import pytest

from courier.core.time import utcnow
from courier.providers.alexa import (
    ALEXA,
    AlexaProvider,
    AlexaReminder,
    ProactiveEvent,
    SkillRequestRejected,
)
from courier.providers.common import (
    SANDBOX_SIGNATURE_HEADER,
    NotSent,
    Permanent,
    RawRequest,
    providers_for,
    sandbox_signature,
    sandbox_signing_key,
)
from tests import provider_kinds_support as support
from tests.provider_kinds_support import World

receiver, world = support.receiver, support.world  # the module's fixtures
ADAPTERS = ["sandbox"]


@pytest.fixture(params=ADAPTERS)
def alexa(request: pytest.FixtureRequest, world: World) -> AlexaProvider:
    settings = world.settings.model_copy(update={"alexa_provider": request.param})
    adapter: AlexaProvider = providers_for(settings).get(ALEXA)
    assert isinstance(adapter, AlexaProvider)
    return adapter


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


async def test_reminders_live_on_the_device(alexa: AlexaProvider, world: World) -> None:
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    first = await alexa.create_reminder(reminder(), user_id=user)
    second = await alexa.create_reminder(reminder("Walk for ten minutes"), user_id=user)
    assert first != second
    held = await world.act("alexa", "reminders", "GET", **{"user-id": user})
    assert {r["alert-token"] for r in held} == {first, second}
    trigger = next(r for r in held if r["alert-token"] == first)["trigger"]
    assert trigger["scheduledTime"] == "2030-03-04T08:30:00.000"
    assert trigger["timeZoneId"] == "America/New_York"

    await alexa.update_reminder(first, reminder("Take two pills"), user_id=user)
    held = await world.act("alexa", "reminders", "GET", **{"user-id": user})
    updated = next(r for r in held if r["alert-token"] == first)
    assert updated["alertInfo"]["spokenInfo"]["content"][0]["text"] == "Take two pills"
    assert updated["version"] == 2

    await alexa.delete_reminder(second, user_id=user)
    await alexa.delete_reminder(second, user_id=user)  # already gone: nothing happens
    held = await world.act("alexa", "reminders", "GET", **{"user-id": user})
    assert [r["alert-token"] for r in held] == [first]
    with pytest.raises(Permanent) as missing:
        await alexa.update_reminder(second, reminder(), user_id=user)
    assert missing.value.code == "not-found"
    with pytest.raises(Permanent):  # another user's reminder is not theirs to change
        await alexa.update_reminder(first, reminder(), user_id="amzn1.ask.account.other")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"time_zone": "Mars/Olympus"}, "INVALID_TIMEZONE"),
        ({"recurrence_rules": ["FREQ=SOMETIMES"]}, "INVALID_RECURRENCE"),
        ({"text": ""}, "INVALID_TEXT"),
    ],
)
async def test_bad_reminders_are_refused(
    alexa: AlexaProvider, changes: dict[str, object], code: str
) -> None:
    with pytest.raises(Permanent) as refused:
        await alexa.create_reminder(reminder(**changes), user_id="amzn1.ask.account.x")  # type: ignore[arg-type]
    assert refused.value.code == code


async def test_proactive_events_once_per_reference(alexa: AlexaProvider, world: World) -> None:
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    event = ProactiveEvent(
        name="AMAZON.MessageAlert.Activated",
        payload={"state": {"status": "UNREAD"}, "messageGroup": {"creator": {"name": "Care"}}},
        reference_id=str(uuid.uuid4()),
        expires_at=utcnow() + timedelta(hours=1),
    )
    sent = await alexa.send_event(event, user_id=user)
    again = await alexa.send_event(event, user_id=user)
    assert sent.vendor_id == again.vendor_id
    announced = await world.act("alexa", "events", "GET", **{"user-id": user})
    assert len(announced) == 1
    assert announced[0]["event"]["name"] == "AMAZON.MessageAlert.Activated"
    assert announced[0]["relevantAudience"] == {"type": "Unicast", "payload": {"user": user}}
    with pytest.raises(Permanent) as expired:
        await alexa.send_event(
            ProactiveEvent(
                name="AMAZON.MessageAlert.Activated",
                payload={},
                reference_id=str(uuid.uuid4()),
                expires_at=utcnow() + timedelta(days=3),
            ),
            user_id=user,
        )
    assert expired.value.code == "INVALID_EXPIRY"


async def test_lwa_tokens_are_cached_and_renewed(alexa: AlexaProvider, world: World) -> None:
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    await alexa.create_reminder(reminder(), user_id=user)
    before = await world.act("alexa", "tokens", "GET")
    for _ in range(3):
        await alexa.create_reminder(reminder(), user_id=user)
    assert (await world.act("alexa", "tokens", "GET"))["issued"] == before["issued"]
    await world.act("alexa", "revoke-tokens")
    await alexa.create_reminder(reminder(), user_id=user)  # refused once, renewed, accepted
    after = await world.act("alexa", "tokens", "GET")
    assert after["issued"] == before["issued"] + 1 and after["valid"] == 1


async def test_armed_failure(alexa: AlexaProvider, world: World) -> None:
    user = f"amzn1.ask.account.{uuid.uuid4().hex}"
    await world.act("alexa", "failures", error="not-sent", code="429", target=user)
    with pytest.raises(NotSent):
        await alexa.create_reminder(reminder(), user_id=user)
    assert await alexa.create_reminder(reminder(), user_id=user)


def skill_request(world: World, body: bytes, *, sign: bool = True) -> RawRequest:
    url = f"{world.settings.public_url}/v1/ask-entries/"
    headers = {"content-type": "application/json"}
    if sign:
        key = sandbox_signing_key(world.settings)
        headers[SANDBOX_SIGNATURE_HEADER.lower()] = sandbox_signature(key, url, body)
    return RawRequest("POST", url, headers, body)


async def test_skill_requests_must_be_signed_and_fresh(alexa: AlexaProvider, world: World) -> None:
    def envelope(when: datetime) -> bytes:
        stamp = when.isoformat(timespec="seconds").replace("+00:00", "Z")
        return orjson.dumps(
            {"version": "1.0", "request": {"type": "LaunchRequest", "timestamp": stamp}}
        )

    fresh = envelope(utcnow())
    accepted = await alexa.verify_skill_request(skill_request(world, fresh))
    assert accepted["request"]["type"] == "LaunchRequest"
    cases = {
        "bad-signature": skill_request(world, fresh, sign=False),
        "stale-timestamp": skill_request(world, envelope(utcnow() - timedelta(seconds=300))),
        "malformed": skill_request(world, b"[1, 2]"),
    }
    flipped = skill_request(world, fresh)
    cases["bad-signature "] = RawRequest(
        "POST", flipped.url, flipped.headers, fresh.replace(b"Launch", b"Lunch")
    )
    for code, request in cases.items():
        with pytest.raises(SkillRequestRejected) as rejected:
            await alexa.verify_skill_request(request)
        assert rejected.value.code == code.strip()
