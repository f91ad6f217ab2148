"""``events.unknown-number`` ``open-channel`` over HTTP: a phone nobody knows texts a number,
and the inbound job makes one new individual and one channel with the number's care team in
it, with the text posted as theirs; a replayed webhook, a second text and two first texts
applied at once open nothing more; a known phone opens nothing; the rule names a group of the
organization.

The live Courier and the sandbox carrier are those of :mod:`tests.test_sms_bridge`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select, update

import courier.domains.messaging.jobs  # noqa: F401 (the opener)
from courier.core.tenancy import scoped
from courier.jobs import run_until_idle
from courier.models.delivery import ProviderInbound
from courier.models.text_account import TextAccountNumber
from courier.providers.common import public_base, sandbox_signature, sandbox_signing_key
from courier.providers.inbound import APPLY_JOB
from tests.conftest import Org, create_org, doc
from tests.test_sms_bridge import Live, created, error, live, new_phone, settle

__all__ = ["live"]  # the module-scoped live Courier, shared with the bridge's tests

WELCOME = "Main St Clinic: thanks for your text. Our care team will answer here."


@dataclass
class Desk:
    """An organization whose number opens channels for unknown phones, with its care team."""

    org: Org
    number: dict[str, Any]
    group: str
    nurse: str
    doctor: str

    @property
    def phone_number(self) -> str:
        value: str = self.number["attributes"]["phone-number"]
        return value


async def individual(live: Live, org: Org, first: str, **more: Any) -> str:
    made = await created(
        await live.client.post(
            "/v1/individuals/",
            json=doc("individuals", {"first-name": first, "last-name": "Lee", **more}),
            headers=org.admin,
        )
    )
    return str(made["id"])


async def group_of(live: Live, org: Org, members: list[str], leaders: list[str]) -> str:
    made = await created(
        await live.client.post(
            "/v1/individual-groups/",
            json=doc(
                "individual-groups",
                {"name": "Care team", "individual-ids": members, "leader-ids": leaders},
            ),
            headers=org.admin,
        )
    )
    return str(made["id"])


def open_channel_rule(group: str | None, **more: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": "open-channel", **more}
    if group is not None:
        rule["individual-group-id"] = group
    return {"unknown-number": rule}


async def desk(live: Live) -> Desk:
    client = live.client
    org = await create_org(client)
    await created(
        await client.post("/v1/text-accounts/", json=doc("text-accounts", {}), headers=org.admin)
    )
    nurse = await individual(live, org, "Nora", **{"account-type": "provider"})
    doctor = await individual(live, org, "Dana", **{"account-type": "provider"})
    group = await group_of(live, org, [nurse, doctor], [doctor])
    number = await created(
        await client.post(
            "/v1/text-account-numbers/",
            json=doc(
                "text-account-numbers",
                {
                    "area-code": "212",
                    "rate-per-second": 1000,
                    "events": open_channel_rule(group, message=WELCOME),
                },
            ),
            headers=org.admin,
        )
    )
    await settle(live)
    number = (
        await client.get(f"/v1/text-account-numbers/{number['id']}/", headers=org.admin)
    ).json()["data"]
    assert number["attributes"]["status"] == "active", number
    assert number["attributes"]["events"]["unknown-number"]["individual-group-id"] == group
    return Desk(org, number, group, nurse, doctor)


async def webhook(live: Live, d: Desk, phone: str, body: str, sid: str | None = None) -> str:
    """The carrier posts a text from ``phone`` to the desk's number (signed, as the sandbox
    does); returns its message id."""
    sid = sid or "SM" + uuid.uuid4().hex
    path = f"/v1/text-account-numbers/{d.number['id']}/inbound/"
    form = urlencode(
        {"MessageSid": sid, "From": phone, "To": d.phone_number, "Body": body}
        | {"SmsStatus": "received"}
    ).encode()
    key = sandbox_signing_key(live.settings)
    answer = await live.client.post(
        path,
        content=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Courier-Sandbox-Signature": sandbox_signature(
                key, public_base(live.settings) + path, form
            ),
        },
    )
    assert answer.status_code == 204, answer.text
    return sid


async def text_from(live: Live, d: Desk, phone: str, body: str) -> None:
    """``phone`` texts the desk's number through the sandbox carrier; the jobs run."""
    sent = await live.client.post(
        "/sandbox/sms/replies",
        json={"from": phone, "to": d.phone_number, "body": body},
        headers=d.org.admin,
    )
    assert sent.status_code in (200, 201), sent.text
    await settle(live)


async def people_with(live: Live, d: Desk, phone: str) -> list[dict[str, Any]]:
    got = await live.client.get(
        "/v1/individuals/", params={"filter[name]": phone}, headers=d.org.admin
    )
    assert got.status_code == 200, got.text
    found: list[dict[str, Any]] = got.json()["data"]
    return found


async def channels_of(live: Live, d: Desk, individual_id: str) -> list[dict[str, Any]]:
    got = await live.client.get(
        "/v1/messaging-channels/", params={"participant-id": individual_id}, headers=d.org.staff
    )
    assert got.status_code == 200, got.text
    found: list[dict[str, Any]] = got.json()["data"]
    return found


async def messages_in(live: Live, d: Desk, channel_id: str) -> list[dict[str, Any]]:
    got = await live.client.get(
        "/v1/messaging-messages/",
        params={"channel-id": channel_id, "individual-id": d.nurse, "sort": "seq"},
        headers=d.org.staff,
    )
    assert got.status_code == 200, got.text
    return [m["attributes"] for m in got.json()["data"]]


async def phone_got(live: Live, d: Desk, phone: str) -> list[str]:
    got = await live.client.get(
        "/sandbox/sms/messages", params={"number": phone}, headers=d.org.admin
    )
    assert got.status_code == 200, got.text
    return [m["body"] for m in sorted(got.json()["data"], key=lambda m: m["date-created"])]


async def the_opened(live: Live, d: Desk, phone: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one individual made for ``phone`` and their one channel."""
    people = await people_with(live, d, phone)
    assert len(people) == 1, people
    channels = await channels_of(live, d, people[0]["id"])
    assert len(channels) == 1, channels
    return people[0], channels[0]


async def test_an_unknown_phone_opens_one_channel_with_the_care_team(live: Live) -> None:
    d = await desk(live)
    phone = new_phone()
    first = await webhook(live, d, phone, "Hi, is this Dr. Lee's office? I need a refill.")
    await settle(live)

    person, channel = await the_opened(live, d, phone)
    assert person["attributes"]["first-name"] == "SMS"
    assert person["attributes"]["last-name"] == phone
    assert person["attributes"]["account-type"] == "participant"
    got = await live.client.get(f"/v1/individuals/{person['id']}/", headers=d.org.admin)
    assert got.json()["data"]["attributes"]["phone"] == phone

    attributes = channel["attributes"]
    assert attributes["individual-group-id"] == d.group
    assert attributes["text-number"] == {"id": d.number["id"]}
    # The group's members joined (its leader as an admin) with the new individual.
    subscribers = {s["id"]: s["admin"] for s in attributes["subscribers"]}
    assert subscribers == {person["id"]: False, d.nurse: False, d.doctor: True}
    # No SMS consent of that phone yet: providers' posts are not texted (see below).
    assert attributes["with-sms"] is False and attributes["can-enable-sms"] is False

    posted = await messages_in(live, d, channel["id"])
    assert [(m["message"], m["individual-id"], m["source"]) for m in posted] == [
        ("Hi, is this Dr. Lee's office? I need a refill.", person["id"], "sms")
    ]
    assert await phone_got(live, d, phone) == [WELCOME]

    # The carrier posts the same message again, before and after it was applied: nothing new.
    await webhook(live, d, phone, "Hi, is this Dr. Lee's office? I need a refill.", sid=first)
    await settle(live)
    # A second text lands in the same channel, through the bridge; no second welcome.
    await text_from(live, d, phone, "It's for my blood pressure pills")
    again, same = await the_opened(live, d, phone)
    assert (again["id"], same["id"]) == (person["id"], channel["id"])
    assert [m["message"] for m in await messages_in(live, d, channel["id"])] == [
        "Hi, is this Dr. Lee's office? I need a refill.",
        "It's for my blood pressure pills",
    ]
    assert await phone_got(live, d, phone) == [WELCOME]

    # The care team answers in the channel: without a consent, the answer is not texted.
    answer = doc(
        "messaging-messages",
        {"channel-id": channel["id"], "individual-id": d.nurse, "message": "Which pharmacy?"},
    )
    await created(
        await live.client.post("/v1/messaging-messages/", json=answer, headers=d.org.staff)
    )
    await settle(live)
    assert await phone_got(live, d, phone) == [WELCOME]

    # Staff give the new individual a login with that phone and request a consent; their YES
    # turns the path on and the next answer reaches their phone.
    user = await created(
        await live.client.post(
            "/v1/users/",
            json=doc(
                "users",
                {
                    "username": f"sms-{uuid.uuid4().hex[:8]}",
                    "phone": phone,
                    "primary-individual-id": person["id"],
                },
            ),
            headers=d.org.admin,
        )
    )
    messages = {"initial": "May Main St Clinic text you? Reply YES or NO", "accept": "Thanks"}
    await created(
        await live.client.post(
            "/v1/user-consents/",
            json=doc("user-consents", {"user-id": user["id"], "args": {"messages": messages}}),
            headers=d.org.staff,
        )
    )
    await settle(live)
    await text_from(live, d, phone, "YES")
    shown = await live.client.get(f"/v1/messaging-channels/{channel['id']}/", headers=d.org.staff)
    assert shown.json()["data"]["attributes"]["with-sms"] is True
    answer["data"]["attributes"]["message"] = "We sent it to Main St Pharmacy."
    await created(
        await live.client.post("/v1/messaging-messages/", json=answer, headers=d.org.staff)
    )
    await settle(live)
    assert (await phone_got(live, d, phone))[-1] == "We sent it to Main St Pharmacy."
    # Still one individual and one channel for that phone.
    await the_opened(live, d, phone)


async def test_two_first_texts_applied_at_once_open_one_channel(live: Live) -> None:
    d = await desk(live)
    phone = new_phone()
    sids = [
        await webhook(live, d, phone, "Hello?"),
        await webhook(live, d, phone, "Anyone there?"),
    ]
    # Received at the same instant: neither waits for the other, and two apply jobs run at once.
    async with live.app.state.database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(ProviderInbound.id, ProviderInbound.received_at).where(
                    ProviderInbound.vendor_id.in_(sids)
                )
            )
        ).all()
        assert len(rows) == 2
        changed = await session.execute(
            update(ProviderInbound)
            .where(ProviderInbound.id.in_([r.id for r in rows]))
            .values(received_at=min(r.received_at for r in rows))
        )
        assert changed.rowcount == 2  # type: ignore[attr-defined]
        await session.commit()
    await run_until_idle(
        live.app.state.database, live.settings, kinds=[APPLY_JOB], concurrency=2, horizon=0.5
    )
    await settle(live)

    person, channel = await the_opened(live, d, phone)
    posted = await messages_in(live, d, channel["id"])
    assert sorted(m["message"] for m in posted) == ["Anyone there?", "Hello?"]
    assert {m["individual-id"] for m in posted} == {person["id"]}
    assert await phone_got(live, d, phone) == [WELCOME]


async def test_a_known_phone_opens_nothing(live: Live) -> None:
    d = await desk(live)
    # A patient of the organization, and a staff login, each with their phone.
    patient_phone, staff_phone = new_phone(), new_phone()
    patient = await individual(live, d.org, "Pat", phone=patient_phone)
    await created(
        await live.client.post(
            "/v1/users/",
            json=doc("users", {"username": f"nurse-{uuid.uuid4().hex[:8]}", "phone": staff_phone}),
            headers=d.org.admin,
        )
    )
    await text_from(live, d, patient_phone, "Running late today")
    await text_from(live, d, staff_phone, "Testing the clinic line")
    assert await people_with(live, d, patient_phone) == []
    assert await people_with(live, d, staff_phone) == []
    assert await channels_of(live, d, patient) == []
    assert await phone_got(live, d, patient_phone) == []
    assert await phone_got(live, d, staff_phone) == []
    got = await live.client.get(
        "/v1/messaging-channels/",
        params={"filter[individual-group-id]": d.group},
        headers=d.org.staff,
    )
    assert got.json()["data"] == []


async def test_the_rule_names_a_group_of_the_organization(live: Live) -> None:
    d = await desk(live)
    other = await create_org(live.client)
    theirs = await group_of(live, other, [], [])
    path = f"/v1/text-account-numbers/{d.number['id']}/"
    pointer = "/data/attributes/events/unknown-number/individual-group-id"

    async def patch(events: dict[str, Any]) -> httpx.Response:
        return await live.client.patch(
            path,
            json=doc("text-account-numbers", {"events": events}, d.number["id"]),
            headers=d.org.admin,
        )

    for group in (theirs, str(uuid.uuid4())):
        refused = error(await patch(open_channel_rule(group)), 404)
        assert refused["source"]["pointer"] == pointer
    missing = error(await patch(open_channel_rule(None)), 422)
    assert (missing["code"], missing["source"]["pointer"]) == ("no-individual-group", pointer)
    malformed = error(await patch(open_channel_rule("not-a-uuid")), 400)
    assert malformed["source"]["pointer"] == pointer
    # Nothing changed: the number still names its own group.
    shown = (await live.client.get(path, headers=d.org.admin)).json()["data"]
    assert shown["attributes"]["events"]["unknown-number"]["individual-group-id"] == d.group

    made = await live.client.post(
        "/v1/text-account-numbers/",
        json=doc("text-account-numbers", {"area-code": "212", "events": open_channel_rule(theirs)}),
        headers=d.org.admin,
    )
    assert error(made, 404)["source"]["pointer"] == pointer

    # Another action needs no group; the phone is then ignored as before.
    ignored = await patch({"unknown-number": {"action": "ignore"}})
    assert ignored.status_code == 200, ignored.text
    assert ignored.json()["data"]["attributes"]["events"] == {
        "unknown-number": {
            "action": "ignore",
            "message": None,
            "forward-to": None,
            "individual-group-id": None,
        }
    }
    phone = new_phone()
    await text_from(live, d, phone, "Hello?")
    assert await people_with(live, d, phone) == []


async def test_a_rule_written_before_groups_were_required_opens_with_the_individual_alone(
    live: Live,
) -> None:
    d = await desk(live)
    async with live.app.state.database.sessionmaker() as session:
        await session.execute(
            scoped(update(TextAccountNumber), TextAccountNumber, uuid.UUID(d.org.id))
            .where(TextAccountNumber.id == uuid.UUID(d.number["id"]))
            .values(events={"unknown-number": {"action": "open-channel"}})
        )
        await session.commit()
    phone = new_phone()
    await text_from(live, d, phone, "Hello, new patient here")
    person, channel = await the_opened(live, d, phone)
    attributes = channel["attributes"]
    assert attributes["individual-group-id"] is None
    assert [s["id"] for s in attributes["subscribers"]] == [person["id"]]
    got = await live.client.get(
        "/v1/messaging-messages/",
        params={"channel-id": channel["id"], "individual-id": person["id"]},
        headers=d.org.staff,
    )
    assert [m["attributes"]["message"] for m in got.json()["data"]] == ["Hello, new patient here"]
    assert await phone_got(live, d, phone) == []  # no message in the rule: nothing texted
