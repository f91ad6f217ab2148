"""The real push adapters through their real clients, against local services that check what
APNs, FCM and a Web Push service check (``tests/push_fakes.py``): the wire format, the
authentication (APNs provider token, FCM OAuth bearer, VAPID), token reuse and renewal, and how
each reply is classified (sent, gone, retry later, never)."""

from __future__ import annotations

import email.utils
import json
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import http_ece  # type: ignore[import-untyped]
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from courier.config import Settings
from courier.providers.common import NotSent, Permanent, RecipientGone
from courier.providers.push import PushCredentials, PushDevice, PushMessage
from courier.providers.push.apns import ApnsPush
from courier.providers.push.fcm import FcmPush
from courier.providers.push.vendors import VendorPush
from courier.providers.push.webpush import WebPush
from tests.push_fakes import (
    ApnsAccount,
    Armed,
    FakeFcm,
    PushServices,
    ServiceAccount,
    push_services,
    unb64url,
    vapid_pair,
)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushServices]:
    with push_services(tmp_path_factory.mktemp("push")) as running:
        yield running


def settings_for(services: PushServices, **overrides: Any) -> Settings:
    return Settings(**{**services.settings(), **overrides})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- APNs -------------------------------------------------------------------------------------


class Apns:
    def __init__(self, services: PushServices, **settings: Any) -> None:
        self.services = services
        self.now = time.time()
        self.adapter = ApnsPush(settings_for(services, **settings), clock=lambda: self.now)
        self.account = services.apns.add(ApnsAccount.new())

    def credentials(self, **data: Any) -> PushCredentials:
        return PushCredentials("apn", {**self.account.data(), **data})

    async def send(self, token: str, message: PushMessage, **kw: Any) -> Any:
        kw.setdefault("credentials", self.credentials())
        kw.setdefault("delivery_id", uuid.uuid4())
        return await self.adapter.send(PushDevice("apn", token), message, **kw)


@pytest.fixture
async def apns(services: PushServices) -> Any:
    client = Apns(services)
    yield client
    await client.adapter.close()


async def test_apns_request_is_what_apple_documents(apns: Apns, services: PushServices) -> None:
    token, delivery = secrets.token_hex(32), uuid.uuid4()
    message = PushMessage(
        title="Care team",
        body="New message",
        badge=2,
        sound="default",
        category="MESSAGE",
        data={"channel": "c1", "n": 3},
        collapse_key="channel-c1",
        ttl_seconds=600,
    )
    result = await apns.send(token, message, delivery_id=delivery)
    [got] = services.apns.to(token)
    assert result.vendor_id == str(delivery).upper() == got.headers["apns-id"]
    assert got.http_version == "2" and got.gateway == "production"
    assert got.claims["iss"] == apns.account.team_id
    assert jwt.get_unverified_header(got.authorization)["kid"] == apns.account.key_id
    assert got.headers["apns-topic"] == "org.courier.patient"
    assert got.headers["apns-push-type"] == "alert" and got.headers["apns-priority"] == "10"
    assert got.headers["apns-collapse-id"] == "channel-c1"
    assert int(got.headers["apns-expiration"]) == int(apns.now) + 600
    assert got.payload == {
        "aps": {
            "alert": {"title": "Care team", "body": "New message"},
            "badge": 2,
            "sound": "default",
            "category": "MESSAGE",
        },
        "channel": "c1",
        "n": 3,
    }
    # Nothing to show: a background push, at the priority Apple requires for it.
    quiet = secrets.token_hex(32)
    await apns.send(quiet, PushMessage(data={"sync": True}, ttl_seconds=0))
    [background] = services.apns.to(quiet)
    assert background.headers["apns-push-type"] == "background"
    assert background.headers["apns-priority"] == "5"
    assert background.headers["apns-expiration"] == "0"
    assert background.payload == {"aps": {"content-available": 1}, "sync": True}


async def test_apns_test_mode_goes_to_the_development_gateway(
    apns: Apns, services: PushServices
) -> None:
    token = secrets.token_hex(32)
    await apns.send(token, PushMessage(body="dev"), credentials=apns.credentials())
    dev = PushCredentials("apn", apns.account.data(), test_mode=True)
    await apns.send(token, PushMessage(body="dev"), credentials=dev)
    assert [r.gateway for r in services.apns.to(token)] == ["production", "sandbox"]


async def test_apns_provider_token_is_reused_then_renewed_before_an_hour(
    apns: Apns, services: PushServices
) -> None:
    apns.now = time.time() - 55 * 60  # the first token was made 55 minutes ago
    token = secrets.token_hex(32)
    await apns.send(token, PushMessage(body="1"))
    await apns.send(token, PushMessage(body="2"))
    first, second = (r.authorization for r in services.apns.to(token))
    assert first == second  # reused, not remade per send
    apns.now = time.time()  # 55 minutes on: past the 50 minutes a token is kept
    await apns.send(token, PushMessage(body="3"))
    third = services.apns.to(token)[-1]
    assert third.authorization != first
    assert third.claims["iat"] == int(apns.now)


async def test_apns_expired_provider_token_is_renewed_and_the_send_retried_once(
    apns: Apns, services: PushServices
) -> None:
    token = secrets.token_hex(32)
    await apns.send(token, PushMessage(body="1"))
    old = services.apns.to(token)[0].authorization
    services.apns.expired.add(old)
    seen = len(services.apns.provider_tokens)
    await apns.send(token, PushMessage(body="2"))
    tried = services.apns.provider_tokens[seen:]
    assert tried[0] == old and len(tried) == 2 and tried[1] != old
    assert services.apns.to(token)[-1].authorization == tried[1]
    # A clock so wrong that even a new token is expired: refused for good, after one retry.
    services.apns.expire_all = True
    try:
        seen = len(services.apns.provider_tokens)
        with pytest.raises(Permanent) as refused:
            await apns.send(token, PushMessage(body="3"))
        assert refused.value.code == "ExpiredProviderToken"
        assert len(services.apns.provider_tokens) - seen == 2
    finally:
        services.apns.expire_all = False
    assert [r.payload["aps"]["alert"]["body"] for r in services.apns.to(token)] == ["1", "2"]


async def test_apns_bad_device_tokens_are_gone(apns: Apns, services: PushServices) -> None:
    seen = len(services.apns.provider_tokens)
    with pytest.raises(RecipientGone) as not_hex:
        await apns.send("not-a-token/../../x", PushMessage(body="x"))
    assert not_hex.value.code == "BadDeviceToken"
    assert len(services.apns.provider_tokens) == seen  # never sent: it is no APNs token
    with pytest.raises(RecipientGone) as refused:  # hex, but APNs does not know the format
        await apns.send(secrets.token_hex(20), PushMessage(body="x"))
    assert refused.value.code == "BadDeviceToken"
    assert len(services.apns.provider_tokens) == seen + 1


@pytest.mark.parametrize(
    ("status", "reason", "error"),
    [
        (429, "TooManyRequests", NotSent),
        (500, "InternalServerError", NotSent),
        (503, "ServiceUnavailable", NotSent),
        (410, "ExpiredToken", RecipientGone),
        (413, "PayloadTooLarge", Permanent),
        (400, "BadCollapseId", Permanent),
    ],
)
async def test_apns_replies_are_classified(
    apns: Apns, services: PushServices, status: int, reason: str, error: type[Exception]
) -> None:
    token = secrets.token_hex(32)
    services.apns.armed[token] = Armed(status, {"reason": reason})
    with pytest.raises(error) as caught:
        await apns.send(token, PushMessage(body="x"))
    assert getattr(caught.value, "code", None) == reason
    if error is Permanent:
        assert not isinstance(caught.value, RecipientGone)


async def test_apns_credentials_apple_refuses(apns: Apns, services: PushServices) -> None:
    token = secrets.token_hex(32)
    stranger = ApnsAccount.new()  # a key APNs never issued
    with pytest.raises(Permanent) as unknown_key:
        await apns.send(
            token, PushMessage(body="x"), credentials=PushCredentials("apn", stranger.data())
        )
    assert unknown_key.value.code == "InvalidProviderToken"
    with pytest.raises(Permanent) as topic:
        await apns.send(
            token, PushMessage(body="x"), credentials=apns.credentials(topic="org.other")
        )
    assert topic.value.code == "TopicDisallowed"
    with pytest.raises(Permanent) as missing:
        await apns.send(token, PushMessage(body="x"), credentials=None)
    assert missing.value.code == "MissingProviderToken"
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(Permanent) as wrong_kind:
        await apns.send(token, PushMessage(body="x"), credentials=apns.credentials(key=rsa_pem))
    assert wrong_kind.value.code == "InvalidProviderToken"
    with pytest.raises(Permanent) as reserved:
        await apns.send(token, PushMessage(body="x", data={"aps": {"badge": 9}}))
    assert reserved.value.code == "BadPayload"
    assert services.apns.to(token) == []


async def test_apns_unreachable_is_not_sent(services: PushServices) -> None:
    client = Apns(services, apns_url=f"https://127.0.0.1:{closed_port()}")
    with pytest.raises(NotSent):
        await client.send(secrets.token_hex(32), PushMessage(body="x"))
    await client.adapter.close()


async def test_apns_certificate_of_an_untrusted_ca_is_refused(services: PushServices) -> None:
    client = Apns(services, push_ca_file=None)  # the fake's test CA is not trusted now
    with pytest.raises(NotSent):
        await client.send(secrets.token_hex(32), PushMessage(body="x"))
    await client.adapter.close()


# --- FCM -----------------------------------------------------------------------------------------


class Fcm:
    def __init__(self, services: PushServices, **settings: Any) -> None:
        self.adapter = FcmPush(settings_for(services, **settings))
        self.account = services.fcm.add(ServiceAccount.new())

    def credentials(self, **data: Any) -> PushCredentials:
        return PushCredentials("fcm", {**self.account.info(), **data})

    async def send(self, token: str, message: PushMessage, **kw: Any) -> Any:
        kw.setdefault("credentials", self.credentials())
        kw.setdefault("delivery_id", uuid.uuid4())
        return await self.adapter.send(PushDevice("fcm", token), message, **kw)


@pytest.fixture
async def fcm(services: PushServices) -> Any:
    client = Fcm(services)
    yield client
    await client.adapter.close()


def fcm_token() -> str:
    return f"fcm-{secrets.token_urlsafe(40)}"


async def test_fcm_message_is_what_fcm_documents(fcm: Fcm, services: PushServices) -> None:
    token = fcm_token()
    message = PushMessage(
        title="Care team",
        body="New message",
        badge=4,
        sound="default",
        category="MESSAGE",
        data={"channel": "c1", "n": 3, "tags": ["a"]},
        collapse_key="channel-c1",
        ttl_seconds=3600,
    )
    result = await fcm.send(token, message)
    [got] = services.fcm.to(token)
    assert result.vendor_id.startswith("projects/courier-test/messages/")
    assert got.project == "courier-test"
    assert got.bearer in services.fcm.issued  # a token its endpoint issued to this account
    sent = got.message
    assert sent["token"] == token
    assert sent["notification"] == {"title": "Care team", "body": "New message"}
    assert sent["data"] == {"channel": "c1", "n": "3", "tags": '["a"]'}  # FCM takes strings
    assert sent["android"] == {
        "priority": "high",
        "collapse_key": "channel-c1",
        "ttl": "3600s",
        "notification": {"notification_count": 4, "sound": "default", "click_action": "MESSAGE"},
    }
    assert sent["apns"]["payload"] == {
        "aps": {"badge": 4, "sound": "default", "category": "MESSAGE"}
    }
    assert sent["apns"]["headers"]["apns-collapse-id"] == "channel-c1"
    assert sent["webpush"]["headers"] == {"Urgency": "high", "TTL": "3600"}
    # A data-only message wakes the app quietly.
    quiet = fcm_token()
    await fcm.send(quiet, PushMessage(data={"sync": "1"}))
    [background] = services.fcm.to(quiet)
    assert "notification" not in background.message
    assert background.message["android"] == {"priority": "normal"}
    assert background.message["apns"]["payload"] == {"aps": {"content-available": 1}}


async def test_fcm_access_token_is_kept_and_renewed(fcm: Fcm, services: PushServices) -> None:
    before = services.fcm.token_requests
    token = fcm_token()
    await fcm.send(token, PushMessage(body="1"))
    await fcm.send(token, PushMessage(body="2"))
    assert services.fcm.token_requests == before + 1  # one sign-in for both
    # FCM stops taking the token (revoked, expired early): signed in again, sent once more.
    services.fcm.revoke_all()
    await fcm.send(token, PushMessage(body="3"))
    assert services.fcm.token_requests == before + 2
    bearers = [r.bearer for r in services.fcm.to(token)]
    assert bearers[0] == bearers[1] != bearers[2]
    # A token that lives less than google-auth's safety margin is renewed before each send.
    services.fcm.token_lifetime = 200
    services.fcm.revoke_all()
    try:
        await fcm.send(token, PushMessage(body="4"))  # refused, signed in: a short-lived token
        await fcm.send(token, PushMessage(body="5"))
    finally:
        services.fcm.token_lifetime = 3600
    assert services.fcm.token_requests == before + 4
    assert [r.message["notification"]["body"] for r in services.fcm.to(token)] == list("12345")


async def test_fcm_service_account_refusals(fcm: Fcm, services: PushServices) -> None:
    token = fcm_token()
    stranger = ServiceAccount.new()  # Google knows no such account
    with pytest.raises(Permanent) as unknown:
        await fcm.send(
            token, PushMessage(body="x"), credentials=PushCredentials("fcm", stranger.info())
        )
    assert unknown.value.code == "invalid_grant"
    with pytest.raises(Permanent) as broken:
        await fcm.send(
            token, PushMessage(body="x"), credentials=PushCredentials("fcm", {"project_id": "p"})
        )
    assert broken.value.code == "THIRD_PARTY_AUTH_ERROR"
    with pytest.raises(Permanent) as other_project:
        await fcm.send(
            token,
            PushMessage(body="x"),
            credentials=fcm.credentials(**{"project-id": "someone-else"}),
        )
    assert other_project.value.code == "SENDER_ID_MISMATCH"
    # The file's JSON text, under service-account, works as the object does.
    wrapped = {"service-account": json.dumps(fcm.account.info())}
    await fcm.send(token, PushMessage(body="ok"), credentials=PushCredentials("fcm", wrapped))
    assert [r.message["notification"]["body"] for r in services.fcm.to(token)] == ["ok"]


def fcm_error(status: int, code: str | None, **headers: str) -> Armed:
    reply = FakeFcm.error(status, "refused", code)
    return Armed(status, json.loads(reply.body), headers)


@pytest.mark.parametrize(
    ("armed", "error", "code", "retry_after"),
    [
        (fcm_error(404, "UNREGISTERED"), RecipientGone, "UNREGISTERED", None),
        (fcm_error(404, None), RecipientGone, "NOT_FOUND", None),
        (fcm_error(400, "INVALID_ARGUMENT"), Permanent, "INVALID_ARGUMENT", None),
        (fcm_error(401, "THIRD_PARTY_AUTH_ERROR"), Permanent, "THIRD_PARTY_AUTH_ERROR", None),
        (fcm_error(503, "UNAVAILABLE", **{"retry-after": "7"}), NotSent, "UNAVAILABLE", 7),
        (fcm_error(500, "INTERNAL"), NotSent, "INTERNAL", None),
        (fcm_error(429, "QUOTA_EXCEEDED"), NotSent, "QUOTA_EXCEEDED", None),
    ],
)
async def test_fcm_replies_are_classified(
    fcm: Fcm,
    services: PushServices,
    armed: Armed,
    error: type[Exception],
    code: str,
    retry_after: float | None,
) -> None:
    token = fcm_token()
    services.fcm.armed[token] = armed
    with pytest.raises(error) as caught:
        await fcm.send(token, PushMessage(body="x"))
    assert getattr(caught.value, "code", None) == code
    if error is NotSent:
        assert caught.value.retry_after == retry_after  # type: ignore[attr-defined]
    if error is Permanent:
        assert not isinstance(caught.value, RecipientGone)


async def test_fcm_retry_after_as_a_date(fcm: Fcm, services: PushServices) -> None:
    token = fcm_token()
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    services.fcm.armed[token] = fcm_error(429, "QUOTA_EXCEEDED", **{"retry-after": when})
    with pytest.raises(NotSent) as refused:
        await fcm.send(token, PushMessage(body="x"))
    assert refused.value.retry_after is not None and 100 < refused.value.retry_after <= 120


async def test_fcm_refuses_reserved_data_keys_as_fcm_does(fcm: Fcm, services: PushServices) -> None:
    token = fcm_token()
    with pytest.raises(Permanent) as refused:
        await fcm.send(token, PushMessage(body="x", data={"google.sent_time": "1"}))
    assert refused.value.code == "INVALID_ARGUMENT"
    assert services.fcm.to(token) == []


async def test_fcm_token_endpoint_unreachable_is_not_sent(services: PushServices) -> None:
    client = Fcm(services, fcm_token_url=f"https://127.0.0.1:{closed_port()}/token")
    with pytest.raises(NotSent):
        await client.send(fcm_token(), PushMessage(body="x"))
    await client.adapter.close()


# --- Web Push ------------------------------------------------------------------------------------


class Web:
    def __init__(self, services: PushServices, **settings: Any) -> None:
        self.services = services
        self.adapter = WebPush(settings_for(services, **settings))
        self.private, self.public = vapid_pair()

    def subscribe(self) -> PushDevice:
        subscription = self.services.web.subscribe(self.public)
        return PushDevice("web", subscription.endpoint, subscription.keys)

    def credentials(self, **data: Any) -> PushCredentials:
        return PushCredentials(
            "web", {"private-key": self.private, "public-key": self.public, **data}
        )

    async def send(self, device: PushDevice, message: PushMessage, **kw: Any) -> Any:
        kw.setdefault("credentials", self.credentials())
        kw.setdefault("delivery_id", uuid.uuid4())
        return await self.adapter.send(device, message, **kw)


@pytest.fixture
async def web(services: PushServices) -> Any:
    client = Web(services)
    yield client
    await client.adapter.close()


async def test_webpush_payload_is_decrypted_by_the_subscription(
    web: Web, services: PushServices
) -> None:
    device = web.subscribe()
    message = PushMessage(
        title="Care team",
        body="New message",
        badge=1,
        category="MESSAGE",
        data={"channel": "c1"},
        collapse_key="channel-c1",
        ttl_seconds=60,
    )
    result = await web.send(device, message)
    [got] = services.web.to(device.token)
    assert result.vendor_id.startswith(f"{services.web.url}/m/")
    assert got.payload == {
        "title": "Care team",
        "body": "New message",
        "badge": 1,
        "category": "MESSAGE",
        "data": {"channel": "c1"},
    }
    assert b"Care team" not in got.body  # encrypted on the way
    # Only the subscription's own key opens it.
    with pytest.raises(http_ece.ECEException):
        http_ece.decrypt(
            got.body,
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=unb64url(device.keys["auth"]),
            version="aes128gcm",
        )
    assert got.headers["content-encoding"] == "aes128gcm"
    assert got.headers["ttl"] == "60" and got.headers["urgency"] == "high"
    assert got.headers["topic"] == "channel-c1"
    assert got.vapid_key == web.public
    assert got.claims["aud"] == services.web.url
    assert got.claims["sub"] == "mailto:push@courier.test"
    assert time.time() < got.claims["exp"] <= time.time() + 12 * 3600 + 5
    # No TTL asked: the service keeps it four weeks; a long collapse key becomes a valid Topic.
    await web.send(device, PushMessage(data={"sync": 1}, collapse_key="x" * 80))
    second = services.web.to(device.token)[1]
    assert second.payload == {"data": {"sync": 1}}
    assert second.headers["ttl"] == str(28 * 24 * 3600) and second.headers["urgency"] == "normal"
    assert len(second.headers["topic"]) == 32


async def test_webpush_vapid_credentials(web: Web, services: PushServices) -> None:
    device = web.subscribe()
    await web.send(
        device,
        PushMessage(body="1"),
        credentials=web.credentials(subject="https://clinic.test:8443/contact"),
    )
    assert services.web.to(device.token)[0].claims["sub"] == "https://clinic.test:8443/contact"
    _, other_public = vapid_pair()
    with pytest.raises(Permanent) as mismatch:
        await web.send(
            device,
            PushMessage(body="2"),
            credentials=web.credentials(**{"public-key": other_public}),
        )
    assert mismatch.value.code == "BadVapidKey"
    with pytest.raises(Permanent) as garbage:
        await web.send(
            device,
            PushMessage(body="2"),
            credentials=web.credentials(**{"private-key": "abc", "public-key": None}),
        )
    assert garbage.value.code == "BadVapidKey"
    # A subscription made with another application server key: the service refuses the JWT.
    other = Web(services)
    with pytest.raises(Permanent) as foreign:
        await other.send(device, PushMessage(body="3"))
    assert foreign.value.code == "403"
    no_subject = WebPush(settings_for(services, webpush_vapid_subject=None, public_url=None))
    with pytest.raises(Permanent) as anonymous:
        await no_subject.send(
            device, PushMessage(body="4"), delivery_id=uuid.uuid4(), credentials=web.credentials()
        )
    assert anonymous.value.code == "BadVapidKey"
    # A PEM private key works as the raw one does.
    pem_key = ec.generate_private_key(ec.SECP256R1())
    pem = pem_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    open_device = services.web.subscribe(None)
    await web.send(
        PushDevice("web", open_device.endpoint, open_device.keys),
        PushMessage(body="pem"),
        credentials=PushCredentials("web", {"private-key": pem}),
    )
    assert services.web.to(open_device.endpoint)[0].payload == {"body": "pem"}
    assert [r.payload["body"] for r in services.web.to(device.token)] == ["1"]


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (410, {}, RecipientGone, None),
        (404, {}, RecipientGone, None),
        (429, {"retry-after": "9"}, NotSent, 9),
        (500, {}, NotSent, None),
        (503, {"retry-after": "3"}, NotSent, 3),
        (413, {}, Permanent, None),
        (401, {}, Permanent, None),
    ],
)
async def test_webpush_replies_are_classified(
    web: Web,
    services: PushServices,
    status: int,
    headers: dict[str, str],
    error: type[Exception],
    retry_after: float | None,
) -> None:
    device = web.subscribe()
    services.web.armed[services.web.by_endpoint(device.token)] = Armed(status, {}, headers)
    with pytest.raises(error) as caught:
        await web.send(device, PushMessage(body="x"))
    assert getattr(caught.value, "code", None) == str(status)
    if error is NotSent:
        assert caught.value.retry_after == retry_after  # type: ignore[attr-defined]
    if error is Permanent:
        assert not isinstance(caught.value, RecipientGone)


async def test_webpush_endpoints_and_subscriptions_are_checked(
    web: Web, services: PushServices
) -> None:
    device = web.subscribe()
    guarded = WebPush(settings_for(services, webpush_allow_private=False))
    with pytest.raises(Permanent) as private:  # a loopback address: refused by default
        await guarded.send(
            device, PushMessage(body="x"), delivery_id=uuid.uuid4(), credentials=web.credentials()
        )
    assert private.value.code == "BadEndpoint" and not isinstance(private.value, RecipientGone)
    plain = PushDevice("web", device.token.replace("https://", "http://"), device.keys)
    with pytest.raises(Permanent) as http:
        await guarded.send(
            plain, PushMessage(body="x"), delivery_id=uuid.uuid4(), credentials=web.credentials()
        )
    assert http.value.code == "BadEndpoint"
    with pytest.raises(Permanent) as keyless:
        await web.send(PushDevice("web", device.token), PushMessage(body="x"))
    assert keyless.value.code == "BadSubscription"
    broken = PushDevice("web", device.token, {"p256dh": "AAAA", "auth": device.keys["auth"]})
    with pytest.raises(Permanent) as bad_key:
        await web.send(broken, PushMessage(body="x"))
    assert bad_key.value.code == "BadSubscription"
    assert services.web.to(device.token) == []


# --- vendors: each platform to its service -----------------------------------------------------


async def test_vendors_route_each_platform_to_its_service(services: PushServices) -> None:
    adapter = VendorPush(settings_for(services))
    apns_account = services.apns.add(ApnsAccount.new())
    account = services.fcm.add(ServiceAccount.new())
    private, public = vapid_pair()
    subscription = services.web.subscribe(public)
    sends = [
        (PushDevice("apn", secrets.token_hex(32)), PushCredentials("apn", apns_account.data())),
        (PushDevice("fcm", fcm_token()), PushCredentials("fcm", account.info())),
        (
            PushDevice("web", subscription.endpoint, subscription.keys),
            PushCredentials("web", {"private-key": private}),
        ),
    ]
    for device, credentials in sends:
        await adapter.send(
            device,
            PushMessage(body=device.platform),
            delivery_id=uuid.uuid4(),
            credentials=credentials,
        )
    assert services.apns.to(sends[0][0].token)[0].payload["aps"]["alert"]["body"] == "apn"
    assert services.fcm.to(sends[1][0].token)[0].message["notification"]["body"] == "fcm"
    assert services.web.to(subscription.endpoint)[0].payload["body"] == "web"
    with pytest.raises(Permanent) as unknown:
        await adapter.send(
            PushDevice("pager", "x"), PushMessage(body="x"), delivery_id=uuid.uuid4()
        )  # type: ignore[arg-type]
    assert unknown.value.code == "unsupported-platform"
    await adapter.close()
