"""The push kind's contract: every adapter delivers one notification to one device, reports a
dead token as RecipientGone, refuses oversized payloads, and raises the error classes the
delivery machine acts on. The sandbox is driven through its control surface, over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from courier.providers.common import NotSent, Permanent, RecipientGone, providers_for
from courier.providers.push import PUSH, PushCredentials, PushDevice, PushMessage, PushProvider
from tests import provider_kinds_support as support
from tests.provider_kinds_support import World

receiver, world = support.receiver, support.world  # the module's fixtures
ADAPTERS = ["sandbox"]


@pytest.fixture(params=ADAPTERS)
def push(request: pytest.FixtureRequest, world: World) -> PushProvider:
    settings = world.settings.model_copy(update={"push_provider": request.param})
    adapter: PushProvider = providers_for(settings).get(PUSH)
    assert isinstance(adapter, PushProvider)
    return adapter


def device(platform: Any = "apn") -> PushDevice:
    return PushDevice(platform=platform, token=f"tok-{uuid.uuid4().hex}")


async def test_a_push_shows_on_the_phone(push: PushProvider, world: World) -> None:
    phone = device("fcm")
    message = PushMessage(
        title="Care team", body="You have a new message", badge=3, data={"c": "1"}
    )
    delivery = uuid.uuid4()
    result = await push.send(phone, message, delivery_id=delivery)
    assert result.vendor_id and result.vendor_status == "accepted"
    shown = await world.act("push", "screen", "GET", token=phone.token)
    assert len(shown) == 1
    assert shown[0]["title"] == "Care team" and shown[0]["body"] == "You have a new message"
    assert shown[0]["badge"] == 3 and shown[0]["data"] == {"c": "1"}
    assert shown[0]["delivery-id"] == str(delivery) and shown[0]["platform"] == "fcm"
    # Another phone saw nothing.
    assert await world.act("push", "screen", "GET", token=device().token) == []


@pytest.mark.parametrize(
    ("platform", "code"), [("apn", "Unregistered"), ("fcm", "UNREGISTERED"), ("web", "410")]
)
async def test_a_gone_token_raises_recipient_gone(
    push: PushProvider, world: World, platform: Any, code: str
) -> None:
    phone = device(platform)
    await push.send(phone, PushMessage(body="first"), delivery_id=uuid.uuid4())
    assert (await world.act("push", "gone", token=phone.token))["gone"] is True
    with pytest.raises(RecipientGone) as gone:
        await push.send(phone, PushMessage(body="second"), delivery_id=uuid.uuid4())
    assert gone.value.code == code
    assert [s["body"] for s in await world.act("push", "screen", "GET", token=phone.token)] == [
        "first"
    ]


async def test_armed_failures_fail_the_next_send_once(push: PushProvider, world: World) -> None:
    phone = device("web")
    await world.act(
        "push", "failures", error="not-sent", code="429", target=phone.token, **{"retry-after": 5}
    )
    with pytest.raises(NotSent) as refused:
        await push.send(phone, PushMessage(body="a"), delivery_id=uuid.uuid4())
    assert refused.value.code == "429" and refused.value.retry_after == 5
    await push.send(phone, PushMessage(body="b"), delivery_id=uuid.uuid4())  # once only
    await world.act("push", "failures", error="permanent", code="BadTopic", target=phone.token)
    with pytest.raises(Permanent) as permanent:
        await push.send(phone, PushMessage(body="c"), delivery_id=uuid.uuid4())
    assert permanent.value.code == "BadTopic" and not isinstance(permanent.value, RecipientGone)


async def test_an_oversized_payload_is_refused(push: PushProvider) -> None:
    with pytest.raises(Permanent) as refused:
        await push.send(device(), PushMessage(body="x" * 5000), delivery_id=uuid.uuid4())
    assert refused.value.code == "PayloadTooLarge"


async def test_credentials_travel_with_the_send(push: PushProvider, world: World) -> None:
    phone = device("apn")
    creds = PushCredentials(platform="apn", data={"team-id": "T"}, test_mode=True)
    await push.send(phone, PushMessage(body="dev"), delivery_id=uuid.uuid4(), credentials=creds)
    assert (await world.act("push", "screen", "GET", token=phone.token))[0]["test-mode"] is True


async def test_the_controls_need_an_admin_and_valid_input(world: World) -> None:
    response = await world.http.post("/sandbox/push/gone", json={"token": "t"})
    assert response.status_code == 401
    response = await world.http.post(
        "/sandbox/push/gone", json={"token": "t"}, headers=world.org.staff
    )
    assert response.status_code == 403
    response = await world.control("push", "failures", error="explode")
    assert response.status_code == 400, response.text
