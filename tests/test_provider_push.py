"""The push kind's contract: every adapter delivers one notification to one device, reports a
dead token as RecipientGone, refuses oversized payloads, and raises the error classes the
delivery machine acts on.

The sandbox is driven through its control surface, over HTTP; the real adapters (apns, fcm,
webpush, and vendors, which routes each platform to its own) through their real clients,
against the local services of ``tests/push_fakes.py``, which play the phone: what a service
took is what the device shows, a token the service forgets is gone, a failure is armed there.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from courier.config import Settings
from courier.providers.common import NotSent, Permanent, Providers, RecipientGone
from courier.providers.push import PUSH, PushCredentials, PushDevice, PushMessage, PushProvider
from courier.providers.push.base import BatchPushProvider, Platform, PushSend, send_batch
from tests import provider_kinds_support as support
from tests.provider_kinds_support import World
from tests.push_fakes import (
    ApnsAccount,
    Armed,
    FakeFcm,
    PushServices,
    ServiceAccount,
    push_services,
    vapid_pair,
)

receiver, world = support.receiver, support.world  # the module's fixtures

ADAPTER_PLATFORMS: dict[str, tuple[Platform, ...]] = {
    "sandbox": ("apn", "fcm", "web"),
    "apns": ("apn",),
    "fcm": ("fcm",),
    "webpush": ("web",),
    "vendors": ("apn", "fcm", "web"),
}
CASES = [
    (name, platform) for name, platforms in ADAPTER_PLATFORMS.items() for platform in platforms
]
GONE_CODES = {"apn": "Unregistered", "fcm": "UNREGISTERED", "web": "410"}


def test_every_adapter_is_under_contract() -> None:
    assert sorted(PUSH.factories) == sorted(ADAPTER_PLATFORMS)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushServices]:
    with push_services(tmp_path_factory.mktemp("push")) as running:
        yield running


@dataclass
class Harness:
    """An adapter and the world its devices live in (the sandbox's, or the local services)."""

    name: str
    adapter: PushProvider
    world: World
    services: PushServices | None

    def __post_init__(self) -> None:
        self.apns = ApnsAccount.new()
        self.account = ServiceAccount.new()
        self.vapid_private, self.vapid_public = vapid_pair()
        if self.services is not None:
            self.services.apns.add(self.apns)
            self.services.fcm.add(self.account)

    @property
    def real(self) -> PushServices:
        assert self.services is not None
        return self.services

    def device(self, platform: Platform) -> PushDevice:
        if platform == "apn":
            return PushDevice("apn", secrets.token_hex(32))
        if platform == "fcm":
            return PushDevice("fcm", f"fcm-{secrets.token_urlsafe(40)}")
        if self.services is None:
            return PushDevice("web", f"https://push.example.test/{uuid.uuid4().hex}")
        subscription = self.real.web.subscribe(self.vapid_public)
        return PushDevice("web", subscription.endpoint, subscription.keys)

    def credentials(self, platform: Platform, *, test_mode: bool = False) -> PushCredentials:
        data: dict[str, Any] = {
            "apn": self.apns.data(),
            "fcm": self.account.info(),
            "web": {"private-key": self.vapid_private, "public-key": self.vapid_public},
        }[platform]
        return PushCredentials(platform, data, test_mode=test_mode)

    async def send(self, device: PushDevice, message: PushMessage, **kw: Any) -> Any:
        kw.setdefault("delivery_id", uuid.uuid4())
        kw.setdefault("credentials", self.credentials(device.platform))
        return await self.adapter.send(device, message, **kw)

    async def screen(self, device: PushDevice) -> list[dict[str, Any]]:
        """What the device has shown: title, body, badge, data (as the app receives it)."""
        if self.services is None:
            shown: list[dict[str, Any]] = await self.world.act(
                "push", "screen", "GET", token=device.token
            )
            return shown
        if device.platform == "apn":
            out = []
            for r in self.real.apns.to(device.token):
                aps = r.payload["aps"]
                alert = aps.get("alert", {})
                out.append(
                    {
                        "title": alert.get("title"),
                        "body": alert.get("body"),
                        "badge": aps.get("badge"),
                        "data": {k: v for k, v in r.payload.items() if k != "aps"},
                        "delivery-id": r.headers["apns-id"].lower(),
                        "test-mode": r.gateway == "sandbox",
                    }
                )
            return out
        if device.platform == "fcm":
            return [
                {
                    "title": r.message.get("notification", {}).get("title"),
                    "body": r.message.get("notification", {}).get("body"),
                    "badge": r.message["android"].get("notification", {}).get("notification_count"),
                    "data": r.message.get("data", {}),
                }
                for r in self.real.fcm.to(device.token)
            ]
        return [
            {
                "title": r.payload.get("title"),
                "body": r.payload.get("body"),
                "badge": r.payload.get("badge"),
                "data": r.payload.get("data", {}),
            }
            for r in self.real.web.to(device.token)
        ]

    async def uninstall(self, device: PushDevice) -> None:
        if self.services is None:
            assert (await self.world.act("push", "gone", token=device.token))["gone"] is True
        elif device.platform == "apn":
            self.real.apns.gone.add(device.token)
        elif device.platform == "fcm":
            self.real.fcm.gone.add(device.token)
        else:
            self.real.web.gone.add(self.real.web.by_endpoint(device.token))

    async def arm_not_sent(self, device: PushDevice) -> tuple[str, float | None]:
        """The service refuses the next send for now (429, retry in 5 s): the code it gives,
        and the Retry-After the adapter should report."""
        if self.services is None:
            await self.world.act(
                "push",
                "failures",
                error="not-sent",
                code="429",
                target=device.token,
                **{"retry-after": 5},
            )
            return "429", 5
        if device.platform == "apn":  # APNs sends no Retry-After
            self.real.apns.armed[device.token] = Armed(429, {"reason": "TooManyRequests"})
            return "TooManyRequests", None
        if device.platform == "fcm":
            reply = FakeFcm.error(429, "Quota exceeded", "QUOTA_EXCEEDED")
            self.real.fcm.armed[device.token] = Armed(429, _json(reply.body), {"retry-after": "5"})
            return "QUOTA_EXCEEDED", 5
        sub = self.real.web.by_endpoint(device.token)
        self.real.web.armed[sub] = Armed(429, {"reason": "slow down"}, {"retry-after": "5"})
        return "429", 5

    async def arm_permanent(self, device: PushDevice) -> str:
        if self.services is None:
            await self.world.act(
                "push", "failures", error="permanent", code="BadTopic", target=device.token
            )
            return "BadTopic"
        if device.platform == "apn":
            self.real.apns.armed[device.token] = Armed(400, {"reason": "DeviceTokenNotForTopic"})
            return "DeviceTokenNotForTopic"
        if device.platform == "fcm":
            reply = FakeFcm.error(403, "SenderId mismatch", "SENDER_ID_MISMATCH")
            self.real.fcm.armed[device.token] = Armed(403, _json(reply.body))
            return "SENDER_ID_MISMATCH"
        self.real.web.armed[self.real.web.by_endpoint(device.token)] = Armed(400, {})
        return "400"


def _json(body: bytes) -> Any:
    import json

    return json.loads(body)


@pytest.fixture
async def harness(
    request: pytest.FixtureRequest,
    world: World,
    services: PushServices,
    own_providers: Callable[[Settings], Providers],
) -> AsyncIterator[Harness]:
    name: str = request.param
    if name == "sandbox":
        settings = world.settings.model_copy(update={"push_provider": name})
        adapter: PushProvider = own_providers(settings).get(PUSH)
        yield Harness(name, adapter, world, None)
        return
    settings = world.settings.model_copy(update={"push_provider": name, **services.settings()})
    adapter = PUSH.build(settings)
    try:
        yield Harness(name, adapter, world, services)
    finally:
        await adapter.close()  # type: ignore[attr-defined]


def cases(*platforms: Platform) -> Any:
    chosen = [c for c in CASES if not platforms or c[1] in platforms]
    return pytest.mark.parametrize(
        ("harness", "platform"), chosen, indirect=["harness"], ids=[f"{a}-{p}" for a, p in chosen]
    )


@cases()
async def test_a_push_shows_on_the_phone(harness: Harness, platform: Platform) -> None:
    assert isinstance(harness.adapter, PushProvider)
    assert platform in harness.adapter.platforms
    phone = harness.device(platform)
    message = PushMessage(
        title="Care team", body="You have a new message", badge=3, data={"c": "1"}
    )
    delivery = uuid.uuid4()
    result = await harness.send(phone, message, delivery_id=delivery)
    assert result.vendor_id and result.vendor_status == "accepted"
    [shown] = await harness.screen(phone)
    assert shown["title"] == "Care team" and shown["body"] == "You have a new message"
    assert shown["badge"] == 3 and shown["data"] == {"c": "1"}
    if "delivery-id" in shown:  # where the service carries an id of ours (APNs apns-id)
        assert shown["delivery-id"] == str(delivery)
    if harness.name == "sandbox":
        assert shown["platform"] == platform
    # Another phone saw nothing.
    assert await harness.screen(harness.device(platform)) == []


@cases()
async def test_a_gone_token_raises_recipient_gone(harness: Harness, platform: Platform) -> None:
    phone = harness.device(platform)
    await harness.send(phone, PushMessage(body="first"))
    await harness.uninstall(phone)
    with pytest.raises(RecipientGone) as gone:
        await harness.send(phone, PushMessage(body="second"))
    assert gone.value.code == GONE_CODES[platform]
    assert [s["body"] for s in await harness.screen(phone)] == ["first"]


@cases()
async def test_refusals_are_classified(harness: Harness, platform: Platform) -> None:
    phone = harness.device(platform)
    code, retry_after = await harness.arm_not_sent(phone)
    with pytest.raises(NotSent) as refused:
        await harness.send(phone, PushMessage(body="a"))
    assert refused.value.code == code and refused.value.retry_after == retry_after
    await harness.send(phone, PushMessage(body="b"))  # once only
    code = await harness.arm_permanent(phone)
    with pytest.raises(Permanent) as permanent:
        await harness.send(phone, PushMessage(body="c"))
    assert permanent.value.code == code and not isinstance(permanent.value, RecipientGone)
    assert [s["body"] for s in await harness.screen(phone)] == ["b"]


@cases()
async def test_an_oversized_payload_is_refused(harness: Harness, platform: Platform) -> None:
    phone = harness.device(platform)
    with pytest.raises(Permanent) as refused:
        await harness.send(phone, PushMessage(body="x" * 5000))
    assert refused.value.code == "PayloadTooLarge"
    assert await harness.screen(phone) == []


@cases("apn")
async def test_credentials_travel_with_the_send(harness: Harness, platform: Platform) -> None:
    phone = harness.device(platform)
    creds = harness.credentials(platform, test_mode=True)
    await harness.send(phone, PushMessage(body="dev"), credentials=creds)
    await harness.send(phone, PushMessage(body="prod"))
    shown = await harness.screen(phone)
    assert [(s["body"], s["test-mode"]) for s in shown] == [("dev", True), ("prod", False)]


@cases()
async def test_a_batch_has_one_outcome_per_send(harness: Harness, platform: Platform) -> None:
    """``send_batch``: the sandbox takes a batch in one call (``send_many``), the vendors'
    adapters one send per device; either way each send has its own outcome, in order, and
    a refusal of one takes nothing from the others."""
    fine, gone, refused, later = (harness.device(platform) for _ in range(4))
    await harness.uninstall(gone)
    await harness.arm_not_sent(refused)
    credentials = harness.credentials(platform)
    sends = [
        PushSend(uuid.uuid4(), fine, PushMessage(body="one"), credentials),
        PushSend(uuid.uuid4(), gone, PushMessage(body="gone"), credentials),
        PushSend(uuid.uuid4(), refused, PushMessage(body="refused"), credentials),
        PushSend(uuid.uuid4(), later, PushMessage(body="x" * 5000), credentials),
        PushSend(uuid.uuid4(), later, PushMessage(body="two"), credentials),
    ]
    assert isinstance(harness.adapter, BatchPushProvider) == (harness.name == "sandbox")
    outcomes = await send_batch(harness.adapter, sends)
    assert len(outcomes) == len(sends)
    first, dead, not_sent, too_large, second = outcomes
    assert not isinstance(first, Exception) and first.vendor_status == "accepted"
    assert not isinstance(second, Exception) and second.vendor_id != first.vendor_id
    assert isinstance(dead, RecipientGone) and dead.code == GONE_CODES[platform]
    assert isinstance(not_sent, NotSent)
    assert isinstance(too_large, Permanent) and too_large.code == "PayloadTooLarge"
    assert [s["body"] for s in await harness.screen(fine)] == ["one"]
    assert [s["body"] for s in await harness.screen(later)] == ["two"]
    assert await harness.screen(refused) == []
    # The refusal was armed once: the next batch to that device goes through.
    [again] = await send_batch(
        harness.adapter, [PushSend(uuid.uuid4(), refused, PushMessage(body="now"), credentials)]
    )
    assert not isinstance(again, Exception)
    assert [s["body"] for s in await harness.screen(refused)] == ["now"]
    if harness.name == "sandbox":  # the sandbox finds each push it took by its delivery id
        status = await harness.adapter.fetch(
            delivery_id=sends[0].delivery_id, vendor_id=None, recipient=fine.token
        )  # type: ignore[attr-defined]
        assert status is not None and status.vendor_id == first.vendor_id


async def test_the_controls_need_an_admin_and_valid_input(world: World) -> None:
    response = await world.http.post("/sandbox/push/gone", json={"token": "t"})
    assert response.status_code == 401
    response = await world.http.post(
        "/sandbox/push/gone", json={"token": "t"}, headers=world.org.staff
    )
    assert response.status_code == 403
    response = await world.control("push", "failures", error="explode")
    assert response.status_code == 400, response.text
