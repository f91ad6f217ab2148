"""End to end over HTTP against a real `courier serve` and a real `courier worker`: provision a
number, send a text, signed status callbacks in order, a reply from the phone through the
sandbox (or the fake Twilio), a forged callback refused; then the channel bridge: consent by
text, set-sms, a provider's post texted, the patient's reply posted into the channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sms_support import Courier, Receiver, doc, new_org, start_receiver, until
from tests.twilio_fake import FakeTwilio, start_fake_twilio

PATIENT = "+14155552671"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from start_receiver()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    yield from start_fake_twilio()


def run(database_url: str, data_dir: Path, tmp_path: Path, **settings: str) -> Courier:
    courier = Courier(database_url, data_dir, tmp_path, settings)
    courier.serve()
    courier.worker()
    return courier


def flow(courier: Courier, receiver: Receiver, reply: Any) -> None:
    with httpx.Client(base_url=courier.base, timeout=30) as http:
        admin = new_org(http)
        headers = {"Authorization": admin["Authorization"]}
        account = http.post("/v1/text-accounts/", json=doc("text-accounts", {}), headers=headers)
        assert account.status_code == 201, account.text
        secret = account.json()["data"]["attributes"]["callback-secret"]
        assert secret and account.json()["data"]["attributes"]["has-credentials"] is False
        again = http.get(f"/v1/text-accounts/{account.json()['data']['id']}/", headers=headers)
        assert again.json()["data"]["attributes"]["callback-secret"] is None

        created = http.post(
            "/v1/text-account-numbers/",
            json=doc("text-account-numbers", {"area-code": "415", "notes": "front desk"}),
            headers=headers,
        )
        assert created.status_code == 201, created.text
        assert created.json()["data"]["attributes"]["status"] == "pending"
        number_id = created.json()["data"]["id"]

        def active() -> dict[str, Any] | None:
            got = http.get(f"/v1/text-account-numbers/{number_id}/", headers=headers).json()
            attributes: dict[str, Any] = got["data"]["attributes"]
            assert attributes["status"] != "failed", attributes
            return attributes if attributes["status"] == "active" else None

        number = until(active, "the number to be provisioned\n" + courier.logs_text())
        assert number["phone-number"].startswith("+1415") and number["capability-sms"]
        assert number["rate-center"] and number["region"] == "CA" and number["twilio-id"]

        sent = http.post(
            "/v1/texts/",
            json=doc(
                "texts",
                {
                    "target": PATIENT,
                    "message": "Your appointment is tomorrow at 9. Reply YES to confirm.",
                    "callback-status-url": receiver.url + "/status",
                    "callback-url": receiver.url + "/reply",
                    "callback-json": {"appointment": 42},
                    "expected-responses": ["YES", "NO"],
                },
            ),
            headers=headers,
        )
        assert sent.status_code == 201, sent.text
        text = sent.json()["data"]
        assert text["attributes"]["from"] == number["phone-number"]
        assert text["attributes"]["status"] == "accepted"

        def statuses() -> list[str]:
            return [
                p.json()["status"] for p in receiver.posts if p.json()["type"] == "texts.status"
            ]

        until(lambda: "delivered" in statuses(), "delivered\n" + courier.logs_text())
        assert statuses() == ["accepted", "queued", "sending", "sent", "delivered"]
        for post in receiver.posts:
            assert receiver.signed_by(secret, post)
            assert post.json()["callback-json"] == {"appointment": 42}
            assert post.json()["text-id"] == text["id"]
        got = http.get(f"/v1/texts/{text['id']}/", headers=headers).json()["data"]["attributes"]
        assert got["status"] == "delivered" and got["twilio-sid"].startswith("SM")

        reply(http, headers, PATIENT, number["phone-number"], " yes! ")

        def replies() -> list[Any]:
            return [p.json() for p in receiver.posts if p.json()["type"] == "texts.reply"]

        until(replies, "the reply\n" + courier.logs_text())
        (answer,) = replies()
        assert answer["message"] == " yes! " and answer["from"] == PATIENT
        assert answer["matched-response"] is None and answer["unexpected"] is True
        reply(http, headers, PATIENT, number["phone-number"], "no")
        until(lambda: len(replies()) == 2, "the second reply")
        assert replies()[1]["matched-response"] == "NO"

        forged = http.post(
            f"/v1/texts/{text['id']}/callback/?d=00000000-0000-4000-8000-000000000000",
            data={"MessageSid": got["twilio-sid"], "MessageStatus": "failed"},
            headers={"X-Twilio-Signature": "forged", "X-Courier-Sandbox-Signature": "v1=00"},
        )
        assert forged.status_code == 401, forged.text
        assert forged.json()["statusCode"] == 401
        final = http.get(f"/v1/texts/{text['id']}/", headers=headers).json()["data"]
        assert final["attributes"]["status"] == "delivered"

        logs = http.get(f"/v1/text-number-logs/?number-id={number_id}", headers=headers)
        assert logs.status_code == 200

        bridge(courier, http, headers, number_id, number["phone-number"], reply)


def bridge(
    courier: Courier,
    http: httpx.Client,
    headers: dict[str, str],
    number_id: str,
    phone_number: str,
    reply: Any,
) -> None:
    """The channel bridge: the patient consents by text, set-sms texts them, a provider's post
    follows them to the phone, and their reply from the phone lands in the channel."""

    def made(response: httpx.Response) -> str:
        assert response.status_code == 201, response.text
        ident: str = response.json()["data"]["id"]
        return ident

    provider = made(
        http.post(
            "/v1/individuals/",
            json=doc(
                "individuals",
                {"first-name": "Dana", "last-name": "Lee", "account-type": "provider"},
            ),
            headers=headers,
        )
    )
    patient = made(
        http.post(
            "/v1/individuals/",
            json=doc("individuals", {"first-name": "Pat", "last-name": "Doe"}),
            headers=headers,
        )
    )
    user = made(
        http.post(
            "/v1/users/",
            json=doc(
                "users", {"username": "pat", "phone": PATIENT, "primary-individual-id": patient}
            ),
            headers=headers,
        )
    )
    consent = made(
        http.post(
            "/v1/user-consents/",
            json=doc(
                "user-consents",
                {"user-id": user, "args": {"messages": {"initial": "May we text you? YES/NO"}}},
            ),
            headers=headers,
        )
    )
    reply(http, headers, PATIENT, phone_number, "YES")

    def accepted() -> bool:
        got = http.get(f"/v1/user-consents/{consent}/", headers=headers).json()
        return bool(got["data"]["attributes"]["state"] == "accepted")

    until(accepted, "the consent\n" + courier.logs_text())
    channel = made(
        http.post(
            "/v1/messaging-channels/",
            json=doc(
                "messaging-channels",
                {"individual-ids": [provider, patient], "text-number-id": number_id},
            ),
            headers=headers,
        )
    )
    turned_on = http.post(
        f"/v1/messaging-channels/{channel}/set-sms/",
        json={"active": True, "initial-message": "Your care team can now text you here."},
        headers=headers,
    )
    assert turned_on.status_code == 201, turned_on.text
    assert turned_on.json()["data"]["attributes"]["with-sms"] is True
    posted = http.post(
        "/v1/messaging-messages/",
        json=doc(
            "messaging-messages",
            {"channel-id": channel, "individual-id": provider, "message": "Labs look fine."},
        ),
        headers=headers,
    )
    assert posted.status_code == 201, posted.text
    account_id = http.get(f"/v1/text-account-numbers/{number_id}/", headers=headers).json()["data"][
        "attributes"
    ]["account-id"]

    def bridged() -> list[tuple[str, str]]:
        texts = http.get(
            "/v1/texts/",
            params={"account-id": account_id, "filter[target]": PATIENT, "sort": "created-at"},
            headers=headers,
        ).json()["data"]
        done = [
            (t["attributes"]["message"], t["attributes"]["status"])
            for t in texts
            if t["attributes"]["purpose"] == "bridge"
        ]
        return done if all(status == "delivered" for _m, status in done) else []

    delivered = until(lambda: len(bridged()) == 2 and bridged(), "the bridged texts")
    assert [message for message, _status in delivered] == [
        "Your care team can now text you here.",
        "Labs look fine.",
    ]
    reply(http, headers, PATIENT, phone_number, "Thanks, see you soon")

    def in_channel() -> list[dict[str, Any]]:
        listed = http.get(
            "/v1/messaging-messages/",
            params={"channel-id": channel, "individual-id": provider, "sort": "seq"},
            headers=headers,
        ).json()["data"]
        return [m["attributes"] for m in listed if m["attributes"]["source"] == "sms"]

    (answer,) = until(in_channel, "the reply in the channel\n" + courier.logs_text())
    assert answer["message"] == "Thanks, see you soon" and answer["individual-id"] == patient


def test_texts_through_the_sandbox(
    database_url: str, data_dir: Path, tmp_path: Path, receiver: Receiver
) -> None:
    courier = run(database_url, data_dir, tmp_path)

    def reply(http: httpx.Client, headers: dict[str, str], sender: str, to: str, body: str) -> None:
        answered = http.post(
            "/sandbox/sms/replies", json={"from": sender, "to": to, "body": body}, headers=headers
        )
        assert answered.status_code in (200, 201), answered.text

    try:
        flow(courier, receiver, reply)
    finally:
        courier.stop()


def test_texts_through_twilio(
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
    receiver: Receiver,
    fake_twilio: FakeTwilio,
) -> None:
    courier = run(
        database_url,
        data_dir,
        tmp_path,
        sms_provider="twilio",
        twilio_account_sid=fake_twilio.account_sid,
        twilio_auth_token=fake_twilio.auth_token,
        twilio_api_base_url=fake_twilio.url,
    )

    def reply(http: httpx.Client, headers: dict[str, str], sender: str, to: str, body: str) -> None:
        assert fake_twilio.reply(sender, to, body) == 204

    try:
        flow(courier, receiver, reply)
        assert any(path.endswith("/Messages.json") for _m, path in fake_twilio.requests)
    finally:
        courier.stop()
