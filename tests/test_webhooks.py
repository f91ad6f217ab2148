"""Webhooks: registration rules, signed deliveries to a real local receiver, retries, the log.

Deliveries are carried out by the jobs engine (``run_until_idle``) with settings of the test's
own (a short retry base), as a `courier worker` would.
"""

from __future__ import annotations

import http.server
import itertools
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

import courier.domains.webhooks.jobs  # noqa: F401  (registers the job handlers)
from courier.app import create_app
from courier.config import Settings
from courier.events.webhooks import DELIVER_KIND, FANOUT_KIND, retry_delay
from courier.jobs import run_until_idle
from tests.conftest import Org, doc, make_settings

WEBHOOK_KINDS = {FANOUT_KIND, DELIVER_KIND}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "WEBHOOKS.md"


# --- a receiver ------------------------------------------------------------------------------


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that answers with the scripted statuses, then 200."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    def answer(self) -> int:
        return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append(Received(time.monotonic(), headers, body))
            self.send_response(state.answer())
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/courier"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def documented_verify() -> Callable[[str, dict[str, str], bytes], bool]:
    """The ``verify`` function of docs/WEBHOOKS.md, exactly as documented."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match, "docs/WEBHOOKS.md has a Python verification snippet"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)
    verify: Callable[[str, dict[str, str], bytes], bool] = namespace["verify"]
    return verify


async def deliver_all(app: Any, settings: Settings, horizon: float = 10.0) -> int:
    return await run_until_idle(
        app.state.database, settings, kinds=WEBHOOK_KINDS, horizon=horizon, give_up_after=90
    )


async def create_webhook(client: httpx.AsyncClient, org: Org, **attributes: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhooks/", headers=org.admin, json=doc("webhooks", attributes)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["data"]
    return created


async def cause_event(client: httpx.AsyncClient, org: Org) -> str:
    response = await client.post(
        "/v1/api-keys/", headers=org.admin, json=doc("api-keys", {"name": "k", "role": "staff"})
    )
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


# --- tests -----------------------------------------------------------------------------------


async def test_signed_delivery_retried_with_growing_delays(
    app: Any,
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database_url: str,
    data_dir: Path,
) -> None:
    receiver.statuses = [500, 503]  # fails twice, then succeeds
    webhook = await create_webhook(
        client, org, url=receiver.url, **{"event-types": ["api-keys.created"]}
    )
    secret = webhook["attributes"]["secret"]
    assert secret.startswith("whsec_")
    shown = await client.get(f"/v1/webhooks/{webhook['id']}/", headers=org.admin)
    assert "secret" not in shown.json()["data"]["attributes"]
    key_id = await cause_event(client, org)

    worker_settings = make_settings(database_url, data_dir, webhook_retry_base_seconds=1.0)
    await deliver_all(app, worker_settings)

    assert len(receiver.requests) == 3
    verify = documented_verify()
    first = receiver.requests[0]
    payload = orjson.loads(first.body)
    assert set(payload) == {"id", "type", "occurred-at", "data", "resource-type", "resource-id"}
    assert payload["type"] == "api-keys.created"
    assert payload["resource-type"] == "api-keys"
    assert payload["resource-id"] == key_id
    assert payload["data"] == {"id": key_id}
    for number, request in enumerate(receiver.requests, start=1):
        assert request.body == first.body  # the same event each time
        assert request.headers["courier-event-id"] == payload["id"]
        assert request.headers["courier-delivery-attempt"] == str(number)
        assert request.headers["content-type"] == "application/json"
        assert verify(secret, request.headers, request.body)
        assert not verify("whsec_another-secret-entirely", request.headers, request.body)
        assert not verify(secret, request.headers, request.body + b" ")
        # Standard Webhooks: the receiver's library verifies it with the secret as shown.
        assert request.headers["webhook-id"] == payload["id"]
        assert StandardWebhook(secret).verify(request.body, request.headers) == payload
        with pytest.raises(WebhookVerificationError):
            StandardWebhook(secret).verify(request.body + b" ", request.headers)
    first_wait = receiver.requests[1].at - receiver.requests[0].at
    second_wait = receiver.requests[2].at - receiver.requests[1].at
    assert 1.0 <= first_wait < second_wait

    log = await client.get(f"/v1/webhooks/{webhook['id']}/get-deliveries/", headers=org.admin)
    assert log.status_code == 200, log.text
    body = log.json()
    assert body["meta"]["page[total]"] == 3
    attempts = [item["attributes"] for item in body["data"]]
    assert all(item["type"] == "webhook-deliveries" for item in body["data"])
    assert [a["attempt"] for a in attempts] == [3, 2, 1]  # newest first
    assert [a["status-code"] for a in attempts] == [200, 503, 500]
    assert [a["succeeded"] for a in attempts] == [True, False, False]
    assert attempts[0]["next-attempt-at"] is None and attempts[0]["error"] is None
    for failed in attempts[1:]:
        assert failed["next-attempt-at"] is not None
        assert f"HTTP {failed['status-code']}" in failed["error"]
    assert {a["event-id"] for a in attempts} == {payload["id"]}
    assert all(a["webhook-id"] == webhook["id"] and a["duration-ms"] >= 0 for a in attempts)
    paged = await client.get(
        f"/v1/webhooks/{webhook['id']}/get-deliveries/?page[limit]=1&page[offset]=1",
        headers=org.admin,
    )
    assert [i["attributes"]["attempt"] for i in paged.json()["data"]] == [2]


async def test_standard_webhooks_library_verifies_every_kind_of_secret(
    app: Any, client: httpx.AsyncClient, org: Org, receiver: Receiver, settings: Settings
) -> None:
    """A generated ``whsec_`` secret is passed to the library as shown; a secret the owner
    chose is passed as its bytes (docs/WEBHOOKS.md)."""
    generated = await create_webhook(
        client, org, url=receiver.url, **{"event-types": ["api-keys.created"]}
    )
    chosen_secret = "my-own-secret-of-32-characters!!"
    chosen = await create_webhook(
        client,
        org,
        url=receiver.url + "?chosen",
        secret=chosen_secret,
        **{"event-types": ["api-keys.created"]},
    )
    await cause_event(client, org)
    await deliver_all(app, settings, horizon=0)
    assert len(receiver.requests) == 2
    by_secret = {generated["attributes"]["secret"]: False, chosen_secret: False}
    for request in receiver.requests:
        timestamp = int(request.headers["webhook-timestamp"])
        assert abs(timestamp - int(request.headers["courier-timestamp"])) == 0
        assert request.headers["webhook-signature"].startswith("v1,")
        try:
            StandardWebhook(generated["attributes"]["secret"]).verify(request.body, request.headers)
            by_secret[generated["attributes"]["secret"]] = True
        except WebhookVerificationError:
            StandardWebhook(chosen_secret.encode()).verify(request.body, request.headers)
            by_secret[chosen_secret] = True
    assert all(by_secret.values())
    for webhook in (generated, chosen):
        await client.delete(f"/v1/webhooks/{webhook['id']}/", headers=org.admin)


async def test_only_matching_active_webhooks_receive(
    app: Any,
    client: httpx.AsyncClient,
    org: Org,
    other_org: Org,
    receiver: Receiver,
    settings: Settings,
) -> None:
    wanted = await create_webhook(client, org, url=receiver.url, **{"event-types": ["api-keys"]})
    await create_webhook(client, org, url=receiver.url, **{"event-types": ["individuals.*"]})
    paused = await create_webhook(
        client, org, url=receiver.url, active=False, **{"event-types": ["api-keys.*"]}
    )
    await cause_event(client, org)
    await deliver_all(app, settings, horizon=0)
    assert len(receiver.requests) == 1
    # A paused webhook stays quiet; deleted, its log goes with it.
    resumed = await client.patch(
        f"/v1/webhooks/{paused['id']}/",
        headers=org.admin,
        json=doc("webhooks", {"active": True}, paused["id"]),
    )
    assert resumed.status_code == 200, resumed.text
    deleted = await client.delete(f"/v1/webhooks/{wanted['id']}/", headers=org.admin)
    assert deleted.status_code == 200
    await cause_event(client, org)
    await deliver_all(app, settings, horizon=0)
    assert len(receiver.requests) == 2
    gone = await client.get(f"/v1/webhooks/{wanted['id']}/get-deliveries/", headers=org.admin)
    assert gone.status_code == 404
    # Another organization's webhook log is not found; staff keys may not read logs at all.
    foreign = await client.get(
        f"/v1/webhooks/{paused['id']}/get-deliveries/", headers=other_org.admin
    )
    assert foreign.status_code == 404
    staff = await client.get(f"/v1/webhooks/{paused['id']}/get-deliveries/", headers=org.staff)
    assert staff.status_code == 403
    await client.delete(f"/v1/webhooks/{paused['id']}/", headers=org.admin)


@pytest.fixture(scope="module")
async def strict_client(database_url: str, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An app with the production rule: no private addresses, https only."""
    strict = create_app(make_settings(database_url, data_dir, webhook_allow_private=False))
    async with strict.router.lifespan_context(strict):
        transport = httpx.ASGITransport(app=strict)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            yield http


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://127.0.0.1/hooks", "private"),
        ("https://localhost:8443/hooks", "private"),
        ("https://10.1.2.3/hooks", "private"),
        ("https://192.168.0.10/hooks", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://[::1]/hooks", "private"),
        ("https://[fd00::1]/hooks", "private"),
        ("https://[::ffff:10.0.0.1]/hooks", "private"),
        ("https://224.0.0.1/hooks", "multicast"),
        ("https://240.0.0.1/hooks", "reserved"),
        ("https://0.0.0.0/hooks", "private"),
        # IANA special-purpose blocks that Python 3.11's ipaddress calls global, and IPv6
        # addresses that wrap private IPv4 ones (6to4, NAT64, Teredo).
        ("https://192.0.0.8/", "special-purpose"),
        ("https://100.64.0.1/", "special-purpose"),
        ("https://198.18.0.1/", "special-purpose"),
        ("https://192.88.99.1/", "special-purpose"),
        ("https://[2002:7f00:1::]/", "special-purpose"),
        ("https://[2002:a00:1::]/", "special-purpose"),
        ("https://[64:ff9b::7f00:1]/", "special-purpose"),
        ("https://[64:ff9b:1::1]/", "special-purpose"),
        ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "special-purpose"),
        ("https://[2001:db8::1]/", "special-purpose"),
        ("https://[::127.0.0.1]/", "special-purpose"),
        ("https://xn--/", "host"),
        ("https://" + "a" * 300 + "/", "host"),
        ("http://93.184.215.14/hooks", "https"),
        ("ftp://93.184.215.14/hooks", "https"),
        ("not a url", "https"),
        ("https://user:pw@93.184.215.14/hooks", "credentials"),
    ],
)
async def test_unsafe_urls_are_refused(
    strict_client: httpx.AsyncClient, org: Org, url: str, says: str
) -> None:
    response = await strict_client.post(
        "/v1/webhooks/",
        headers=org.admin,
        json=doc("webhooks", {"url": url, "event-types": ["*"]}),
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["source"] == {"pointer": "/data/attributes/url"}
    assert says in error["detail"]


async def test_public_https_urls_are_accepted_and_patches_checked(
    client: httpx.AsyncClient, strict_client: httpx.AsyncClient, org: Org
) -> None:
    # A public address literal passes the production rule. Checked on the rule itself, which
    # the API applies, so that no public URL is ever registered by the suite.
    from courier.events.webhooks import parse_url

    assert str(parse_url("https://93.184.215.14/hooks", allow_private=False)).startswith(
        "https://93.184.215.14/"
    )
    # A webhook registered where private addresses are allowed (loopback, inactive) cannot be
    # patched to one under the production rule.
    created = await client.post(
        "/v1/webhooks/",
        headers=org.admin,
        json=doc(
            "webhooks",
            {"url": "http://127.0.0.1:9/hooks", "event-types": ["*"], "active": False},
        ),
    )
    assert created.status_code == 201, created.text
    ident = created.json()["data"]["id"]
    refused = await strict_client.patch(
        f"/v1/webhooks/{ident}/",
        headers=org.admin,
        json=doc("webhooks", {"url": "https://127.0.0.1/"}, ident),
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["source"] == {"pointer": "/data/attributes/url"}
    await strict_client.delete(f"/v1/webhooks/{ident}/", headers=org.admin)


async def test_delivery_rechecks_the_url(
    app: Any,
    client: httpx.AsyncClient,
    org: Org,
    receiver: Receiver,
    database_url: str,
    data_dir: Path,
) -> None:
    """Registered while private addresses were allowed; by delivery time they are not."""
    webhook = await create_webhook(
        client, org, url=receiver.url, **{"event-types": ["api-keys.created"]}
    )
    await cause_event(client, org)
    strict = make_settings(database_url, data_dir, webhook_allow_private=False)
    await deliver_all(app, strict, horizon=0)
    assert receiver.requests == []
    log = await client.get(f"/v1/webhooks/{webhook['id']}/get-deliveries/", headers=org.admin)
    (attempt,) = [item["attributes"] for item in log.json()["data"]]
    assert attempt["succeeded"] is False and attempt["status-code"] is None
    assert attempt["error"].startswith("url refused") and attempt["next-attempt-at"]
    # Removing the webhook ends its retries.
    await client.delete(f"/v1/webhooks/{webhook['id']}/", headers=org.admin)


LOOPBACK_HOOK = "https://127.0.0.1:9/"  # the discard port: nothing listens, nothing leaves


async def test_webhook_attributes_are_validated(client: httpx.AsyncClient, org: Org) -> None:
    bad_types = await client.post(
        "/v1/webhooks/",
        headers=org.admin,
        json=doc("webhooks", {"url": LOOPBACK_HOOK, "event-types": ["Bad Type!"]}),
    )
    assert bad_types.status_code == 400
    assert bad_types.json()["errors"][0]["source"]["pointer"] == "/data/attributes/event-types"
    no_types = await client.post(
        "/v1/webhooks/",
        headers=org.admin,
        json=doc("webhooks", {"url": LOOPBACK_HOOK, "event-types": []}),
    )
    assert no_types.status_code == 400
    short_secret = await client.post(
        "/v1/webhooks/",
        headers=org.admin,
        json=doc(
            "webhooks",
            {"url": LOOPBACK_HOOK, "event-types": ["*"], "secret": "short"},
        ),
    )
    assert short_secret.status_code == 400
    given = await create_webhook(
        client,
        org,
        url=LOOPBACK_HOOK,
        secret="my-own-secret-of-32-characters!!",
        description="EHR sync",
        **{"event-types": ["messaging-*", "individuals"]},
    )
    assert given["attributes"]["secret"] == "my-own-secret-of-32-characters!!"
    assert given["attributes"]["event-types"] == ["messaging-*", "individuals"]
    null_url = await client.patch(
        f"/v1/webhooks/{given['id']}/",
        headers=org.admin,
        json=doc("webhooks", {"url": None}, given["id"]),
    )
    assert null_url.status_code == 400
    listing = await client.get("/v1/webhooks/?filter[active]=true", headers=org.admin)
    assert given["id"] in {item["id"] for item in listing.json()["data"]}
    assert all("secret" not in item["attributes"] for item in listing.json()["data"])
    staff = await client.get("/v1/webhooks/", headers=org.staff)
    assert staff.status_code == 403


def test_retry_schedule_spans_a_day() -> None:
    base = Settings.model_fields["webhook_retry_base_seconds"].default
    waits = [retry_delay(attempt, base) for attempt in range(1, 15)]
    assert all(w < later for w, later in itertools.pairwise(waits[:9]))
    assert sum(waits) > 86400 > sum(waits[:8])


async def test_refused_private_url_names_the_setting(
    strict_client: httpx.AsyncClient, org: Org
) -> None:
    """The error says what would have worked: the setting that permits private addresses."""
    private = await strict_client.post(
        "/v1/webhooks/",
        headers=org.admin,
        json=doc("webhooks", {"url": "https://127.0.0.1:9/hook", "event-types": ["*"]}),
    )
    assert private.status_code == 400, private.text
    assert "COURIER_WEBHOOK_ALLOW_PRIVATE" in private.json()["errors"][0]["detail"]
    # A URL that no setting would allow does not point at it.
    ftp = await strict_client.post(
        "/v1/webhooks/",
        headers=org.admin,
        json=doc("webhooks", {"url": "ftp://127.0.0.1/hook", "event-types": ["*"]}),
    )
    assert ftp.status_code == 400
    assert "COURIER_WEBHOOK_ALLOW_PRIVATE" not in ftp.json()["errors"][0]["detail"]
