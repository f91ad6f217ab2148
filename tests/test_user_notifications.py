"""User notifications over HTTP: notify_many (as multicasts and announcers call it) renders the
template per recipient and sends a push to each device (what the sandbox phone shows), SMS only
with an accepted consent, emails rendered from the template; list, filters, ack, ack-previous,
daily counts; a gone token deactivated; a sensitive template neutral on the lock screen."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.domains.user_notifications.purge import purge_user_notifications
from courier.domains.user_notifications.service import Notified, NotSent, withdraw
from courier.models.event import Event
from courier.models.job import Job
from courier.models.user_notification import UserNotification
from courier.providers.push.base import PushDevice, PushOutcome, PushSend
from tests.conftest import Org, bearer
from tests.factories import individual_token, text_number
from tests.notify_support import (
    accept_sms_consent,
    app_of,
    get_notification,
    listed,
    make_device,
    make_patient,
    make_template,
    new_phone,
    notified_id,
    run_jobs,
    screen,
    send,
    texts_to,
)
from tests.support import jobs_fall_due

DEEP_LINK = "careapp://results/{{ individual.id }}"


async def test_a_push_per_device_with_the_rendering_and_badge(
    client: httpx.AsyncClient, org: Org
) -> None:
    template = await make_template(client, org)
    ana, _user = await make_patient(client, org)
    iphone = await make_device(client, org, ana, type="apn")
    pixel = await make_device(client, org, ana, type="fcm", token="fcm-" + uuid.uuid4().hex)
    muted = await make_device(client, org, ana, type="fcm", **{"allow-notification": False})

    results = await send(client, org, template["id"], [(ana, None)], dedupe_keys=["k1"])
    notified = results[uuid.UUID(ana)]
    assert isinstance(notified, Notified) and notified.created
    assert set(notified.channels) == {"apn", "fcm"}
    await run_jobs(client)

    [shown] = await screen(client, org, iphone["attributes"]["token"])
    assert shown["title"] == "Appointment with Dr. Oz"
    assert shown["body"] == "Hi Ana, your visit is in room 4"
    assert shown["badge"] == 1
    assert shown["data"]["notification-id"] == str(notified.notification_id)
    [on_pixel] = await screen(client, org, pixel["attributes"]["token"])
    assert on_pixel["body"] == "Visit with Dr. Oz, room 4"
    assert await screen(client, org, muted["attributes"]["token"]) == []

    # Every push is in its device's logs, with what it showed and its outcome.
    logs = await client.get(f"/v1/user-devices/{iphone['id']}/get-logs/", headers=org.admin)
    assert logs.status_code == 200, logs.text
    [log] = logs.json()["data"]
    assert log["attributes"]["state"] == "sent"
    assert log["attributes"]["title"] == "Appointment with Dr. Oz"
    assert log["attributes"]["badge-count"] == 1
    assert log["attributes"]["resource-id"] == str(notified.notification_id)

    # The same dedupe key again: the earlier notification, nothing sent twice.
    again = await send(client, org, template["id"], [(ana, None)], dedupe_keys=["k1"])
    repeat = again[uuid.UUID(ana)]
    assert isinstance(repeat, Notified) and not repeat.created
    assert repeat.notification_id == notified.notification_id
    await run_jobs(client)
    assert len(await screen(client, org, iphone["attributes"]["token"])) == 1

    # A second notification: the badge counts both unacknowledged ones.
    await send(client, org, template["id"], [(ana, None)])
    await run_jobs(client)
    assert [s["badge"] for s in await screen(client, org, iphone["attributes"]["token"])] == [1, 2]

    # Missing data and an unknown individual are reported, not raised.
    bad = await send(
        client,
        org,
        template["id"],
        [(ana, None), (str(uuid.uuid4()), None)],
        data={"clinician": "Dr. Oz"},
    )
    refused = bad[uuid.UUID(ana)]
    assert isinstance(refused, NotSent) and "room is missing" in refused.reason
    assert any(isinstance(r, NotSent) and r.reason == "no-such-individual" for r in bad.values())


async def test_list_filter_get_and_what_an_individual_token_sees(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    reminder = await make_template(client, org)
    lab = await make_template(client, org, category="lab-results")
    ana, ana_user = await make_patient(client, org, first_name="Ana")
    bo, _bo_user = await make_patient(client, org, first_name="Bo")
    first = notified_id(await send(client, org, reminder["id"], [(ana, None), (bo, None)]), ana)
    second = notified_id(await send(client, org, lab["id"], [(ana, None)]), ana)

    everyone = await listed(client, org.readonly)
    assert len(everyone) == 3
    mine = await listed(client, org.admin, f"?individual-id={ana}")
    assert [row["id"] for row in mine] == [str(second), str(first)]  # newest first
    attributes = mine[1]["attributes"]
    assert attributes["individual-id"] == ana
    assert attributes["user-id"] == ana_user
    assert attributes["user-first-name"] == "Ana" and attributes["user-last-name"] == "Lopez"
    assert attributes["acknowledged"] is False and attributes["active"] is True
    assert attributes["category"] == "appointments"
    assert attributes["organization-id"] == org.id
    assert attributes["data"]["apn"]["title"] == "Appointment with Dr. Oz"
    assert attributes["data"]["sms"] == {"bodies": ["Ana: visit with Dr. Oz, room 4"]}
    assert attributes["data"]["email"]["subject"] == "Your visit with Dr. Oz"
    assert attributes["escalation"] is None

    labs = await listed(client, org.admin, "?filter[category]=lab-results")
    assert [row["id"] for row in labs] == [str(second)]
    got = await get_notification(client, org.readonly, second)
    assert got["category"] == "lab-results"

    token = bearer(await individual_token(client, org, ana))
    assert {row["id"] for row in await listed(client, token)} == {str(first), str(second)}
    assert len(await listed(client, token, f"?individual-id={ana}")) == 2
    other = await client.get(f"/v1/user-notifications/?individual-id={bo}", headers=token)
    assert other.status_code == 403
    bos = await listed(client, org.admin, f"?individual-id={bo}")
    hidden = await client.get(f"/v1/user-notifications/{bos[0]['id']}/", headers=token)
    assert hidden.status_code == 404
    foreign = await client.get(f"/v1/user-notifications/{first}/", headers=other_org.admin)
    assert foreign.status_code == 404
    assert await listed(client, other_org.admin) == []

    # A withdrawn notification leaves the default list; include[inactive] shows it.
    async with app_of(client).state.database.sessionmaker() as session:
        assert await withdraw(session, uuid.UUID(org.id), "test:notify") == 3
        await commit(session)
    assert await listed(client, org.admin) == []
    shown = await listed(client, org.admin, "?include[inactive]=true")
    assert len(shown) == 3 and not any(row["attributes"]["active"] for row in shown)


async def test_ack_and_ack_previous(client: httpx.AsyncClient, org: Org) -> None:
    template = await make_template(client, org)
    ana, _user = await make_patient(client, org)
    ids = [notified_id(await send(client, org, template["id"], [(ana, None)]), ana) for _ in "abc"]
    token = bearer(await individual_token(client, org, ana))

    acked = await client.post(f"/v1/user-notifications/{ids[0]}/ack/", headers=token, json={})
    assert acked.status_code == 201, acked.text
    attributes = acked.json()["data"]["attributes"]
    assert attributes["acknowledged"] is True and attributes["acknowledged-at"] is not None
    assert [r["id"] for r in await listed(client, org.admin, "?acknowledged=true")] == [str(ids[0])]
    assert {r["id"] for r in await listed(client, org.admin, "?acknowledged=false")} == {
        str(ids[1]),
        str(ids[2]),
    }
    again = await client.post(f"/v1/user-notifications/{ids[0]}/ack/", headers=org.staff)
    assert again.status_code == 201
    assert again.json()["data"]["attributes"]["acknowledged-at"] == attributes["acknowledged-at"]

    latest = await client.post(
        f"/v1/user-notifications/{ids[2]}/ack/", headers=org.staff, json={"ack-previous": True}
    )
    assert latest.status_code == 201, latest.text
    assert await listed(client, org.admin, "?acknowledged=false") == []

    async with app_of(client).state.database.sessionmaker() as session:
        verbs = list(
            (
                await session.execute(
                    scoped(
                        select(Event.type).where(Event.resource_type == "user-notifications"),
                        Event,
                        uuid.UUID(org.id),
                    )
                )
            ).scalars()
        )
    assert verbs.count("user-notifications.created") == 3
    assert verbs.count("user-notifications.acknowledged") == 3


async def test_ack_refuses_bad_input(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    template = await make_template(client, org)
    ana, _user = await make_patient(client, org)
    bo, _ = await make_patient(client, org)
    ident = notified_id(await send(client, org, template["id"], [(ana, None)]), ana)
    path = f"/v1/user-notifications/{ident}/ack/"
    for body in ({"ack-previous": "yes"}, {"unknown": 1}, {"ack_previous": True}):
        refused = await client.post(path, headers=org.staff, json=body)
        assert refused.status_code == 400, (body, refused.text)
    assert (await client.post(path, headers=org.readonly, json={})).status_code == 403
    assert (await client.post(path, headers=other_org.staff, json={})).status_code == 404
    missing = await client.post(f"/v1/user-notifications/{uuid.uuid4()}/ack/", headers=org.staff)
    assert missing.status_code == 404
    bo_token = bearer(await individual_token(client, org, bo))
    assert (await client.post(path, headers=bo_token, json={})).status_code == 404
    assert (await get_notification(client, org.admin, ident))["acknowledged"] is False
    for query in (
        "?acknowledged=maybe",
        "?include[inactive]=2",
        "?individual-id=nope",
        f"?filter[category]={'x' * 33}",
        "?filter[state]=new",
        "?page[limit]=0",
    ):
        bad = await client.get(f"/v1/user-notifications/{query}", headers=org.admin)
        assert bad.status_code == 400, (query, bad.text)


async def test_daily_counts(client: httpx.AsyncClient, org: Org) -> None:
    template = await make_template(client, org)
    ana, ana_user = await make_patient(client, org)
    bo, bo_user = await make_patient(client, org)
    for _ in range(3):
        await send(client, org, template["id"], [(ana, None)])
    older = notified_id(await send(client, org, template["id"], [(bo, None)]), bo)
    await send(client, org, template["id"], [(bo, None)])
    yesterday = datetime.now(UTC) - timedelta(days=1)
    async with app_of(client).state.database.sessionmaker() as session:
        await session.execute(
            scoped(
                update(UserNotification).where(UserNotification.id == older),
                UserNotification,
                uuid.UUID(org.id),
            ).values(created_at=yesterday)
        )
        await commit(session)

    response = await client.get("/v1/user-notification-counts/", headers=org.readonly)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["page[limit]"] == 500
    counts = {
        (row["attributes"]["user-id"], row["attributes"]["daily-for-date"]): row["attributes"][
            "count"
        ]
        for row in body["data"]
    }
    today = datetime.now(UTC).date().isoformat()
    assert counts == {
        (ana_user, today): 3,
        (bo_user, today): 1,
        (bo_user, yesterday.date().isoformat()): 1,
    }
    assert {row["type"] for row in body["data"]} == {"notification-counts"}
    # Newest day first; ids stable across reads.
    assert body["data"][-1]["attributes"]["daily-for-date"] == yesterday.date().isoformat()
    again = (await client.get("/v1/user-notification-counts/", headers=org.admin)).json()
    assert [r["id"] for r in again["data"]] == [r["id"] for r in body["data"]]

    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    window = await client.get(
        "/v1/user-notification-counts/",
        params={"filter[cmp-created-at]": f">={since}"},
        headers=org.admin,
    )
    assert window.status_code == 200, window.text
    assert sum(row["attributes"]["count"] for row in window.json()["data"]) == 4

    only_total = await client.get("/v1/user-notification-counts/?page[limit]=0", headers=org.admin)
    assert only_total.status_code == 200, only_total.text
    assert only_total.json()["data"] == [] and only_total.json()["meta"]["page[total]"] == 3
    assert only_total.json()["links"]["next"] is None

    token = bearer(await individual_token(client, org, ana))
    own = (await client.get("/v1/user-notification-counts/", headers=token)).json()["data"]
    assert [(r["attributes"]["user-id"], r["attributes"]["count"]) for r in own] == [(ana_user, 3)]
    for query in (
        "?page[limit]=1001",
        "?page[limit]=-1",
        "?filter[cmp-created-at]=soon",
        "?filter[category]=x",
    ):
        bad = await client.get(f"/v1/user-notification-counts/{query}", headers=org.admin)
        assert bad.status_code == 400, (query, bad.text)


async def test_a_gone_token_is_deactivated_and_skipped_afterwards(
    client: httpx.AsyncClient, org: Org
) -> None:
    template = await make_template(client, org)
    ana, _user = await make_patient(client, org)
    kept = await make_device(client, org, ana, type="apn")
    gone = await make_device(client, org, ana, type="fcm", token="fcm-" + uuid.uuid4().hex)
    uninstalled = await client.post(
        "/sandbox/push/gone", json={"token": gone["attributes"]["token"]}, headers=org.admin
    )
    assert uninstalled.status_code == 200, uninstalled.text

    await send(client, org, template["id"], [(ana, None)])
    await run_jobs(client)
    device = await client.get(f"/v1/user-devices/{gone['id']}/", headers=org.admin)
    assert device.json()["data"]["attributes"]["active"] is False
    [log] = (
        await client.get(f"/v1/user-devices/{gone['id']}/get-logs/", headers=org.admin)
    ).json()["data"]
    assert log["attributes"]["state"] == "failed"
    assert log["attributes"]["error-code"] == "UNREGISTERED"
    assert len(await screen(client, org, kept["attributes"]["token"])) == 1

    later = await send(client, org, template["id"], [(ana, None)])
    assert later[uuid.UUID(ana)] == Notified(notified_id(later, ana), ("apn",), True)
    await run_jobs(client)
    logs = await client.get(f"/v1/user-devices/{gone['id']}/get-logs/", headers=org.admin)
    assert len(logs.json()["data"]) == 1  # nothing more was sent to the dead token
    assert len(await screen(client, org, kept["attributes"]["token"])) == 2


async def test_sms_only_with_an_accepted_consent_and_the_preference(
    client: httpx.AsyncClient, org: Org
) -> None:
    await text_number(client, org)
    template = await make_template(client, org)
    phone = new_phone()
    ana, ana_user = await make_patient(client, org, phone=phone, notifications=["sms"])
    not_asked, _ = await make_patient(client, org, phone=new_phone(), notifications=["push"])

    before = await send(client, org, template["id"], [(ana, None)])
    assert before[uuid.UUID(ana)].channels == ()  # type: ignore[union-attr]
    await run_jobs(client, horizon=0.5)
    assert await texts_to(client, org, phone) == []

    await accept_sms_consent(client, org, ana_user, phone)
    after = await send(client, org, template["id"], [(ana, None), (not_asked, None)])
    assert after[uuid.UUID(ana)].channels == ("sms",)  # type: ignore[union-attr]
    assert after[uuid.UUID(not_asked)].channels == ()  # type: ignore[union-attr]
    await run_jobs(client, horizon=0.5)
    assert await texts_to(client, org, phone) == ["Ana: visit with Dr. Oz, room 4"]


async def test_email_rendered_from_the_template(client: httpx.AsyncClient, org: Org) -> None:
    template = await make_template(client, org)
    address = f"ana.{uuid.uuid4().hex[:8]}@patients.example"
    ana, _user = await make_patient(client, org, email=address, notifications=["email", "push"])
    results = await send(client, org, template["id"], [(ana, None)])
    assert results[uuid.UUID(ana)].channels == ("email",)  # type: ignore[union-attr]
    await run_jobs(client, horizon=0.5)
    emails = await client.get(f"/v1/user-emails/?individual-id={ana}", headers=org.staff)
    assert emails.status_code == 200, emails.text
    [email] = emails.json()["data"]
    attributes = email["attributes"]
    assert attributes["subject"] == "Your visit with Dr. Oz"
    assert attributes["message"] == "Room 4"
    assert attributes["message-html"] == "<p>Room 4 with Dr. Oz</p>"
    assert attributes["to"] == [address]
    assert attributes["status"] == "sent"
    listed_messages = await client.get(
        "/sandbox/email/messages", params={"address": address}, headers=org.admin
    )
    assert [m["subject"] for m in listed_messages.json()["data"]] == ["Your visit with Dr. Oz"]


async def test_a_sensitive_template_is_neutral_on_the_lock_screen_and_in_texts(
    client: httpx.AsyncClient, org: Org
) -> None:
    await text_number(client, org)
    template = await make_template(
        client,
        org,
        sensitive=True,
        **{"deep-link": DEEP_LINK},
        apn={"title": "HIV test result", "body": "Your result for {{ clinician }} is ready"},
        sms={"body": "HIV result ready, room {{ room }}"},
        email={"subject": "HIV test result", "text": "Room {{ room }}"},
    )
    phone = new_phone()
    address = f"bo.{uuid.uuid4().hex[:8]}@patients.example"
    bo, bo_user = await make_patient(
        client, org, phone=phone, email=address, notifications=["sms", "email", "push"]
    )
    await accept_sms_consent(client, org, bo_user, phone)
    iphone = await make_device(client, org, bo, type="apn")
    ident = notified_id(await send(client, org, template["id"], [(bo, None)]), bo)
    await run_jobs(client, horizon=0.5)

    [shown] = await screen(client, org, iphone["attributes"]["token"])
    assert shown["title"] is None
    assert shown["body"] == "You have a new message from your clinic."
    assert shown["data"] == {"deep-link": f"careapp://results/{bo}", "notification-id": str(ident)}
    assert "HIV" not in str(shown)
    [text] = await texts_to(client, org, phone)
    assert text == f"You have a new message from your clinic. careapp://results/{bo}"
    # The app (once opened) and the email carry the full text.
    attributes = await get_notification(client, org.admin, ident)
    assert attributes["data"]["app"]["title"] == "HIV test result"
    assert attributes["data"]["apn"]["body"] == "You have a new message from your clinic."
    emails = await client.get(f"/v1/user-emails/?individual-id={bo}", headers=org.staff)
    assert emails.json()["data"][0]["attributes"]["subject"] == "HIV test result"


async def test_purge_removes_the_notifications_and_their_pushes(
    client: httpx.AsyncClient, org: Org
) -> None:
    template = await make_template(client, org)
    ana, _user = await make_patient(client, org)
    device = await make_device(client, org, ana)
    ident = notified_id(await send(client, org, template["id"], [(ana, None)]), ana)
    await run_jobs(client)
    assert len(await screen(client, org, device["attributes"]["token"])) == 1
    async with app_of(client).state.database.sessionmaker() as session:
        counts = await purge_user_notifications(session, uuid.UUID(org.id), uuid.UUID(ana), None)
        await commit(session)
    assert counts == {"deliveries": 1, "user_notifications": 1, "sandbox_records": 1}
    assert await screen(client, org, device["attributes"]["token"]) == []
    gone = await client.get(f"/v1/user-notifications/{ident}/", headers=org.admin)
    assert gone.status_code == 404


async def test_the_pushes_of_one_call_go_to_the_service_as_one_batch(
    client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``notify_many`` call's pushes are one provider call (the sandbox's ``send_many``,
    never a ``send`` per device) and each is still its own delivery: sent, in its device's
    logs, shown on its phone once; a gone token fails alone and deactivates its device."""
    from courier.providers.push.sandbox import SandboxPush

    template = await make_template(client, org)
    patients = [(await make_patient(client, org))[0] for _ in range(3)]
    devices = [await make_device(client, org, ana, type="apn") for ana in patients]
    pixel = await make_device(client, org, patients[0], type="fcm", token=f"fcm-{uuid.uuid4()}")
    gone = await client.post(
        "/sandbox/push/gone", json={"token": pixel["attributes"]["token"]}, headers=org.admin
    )
    assert gone.status_code == 200, gone.text

    batches: list[int] = []
    send_many, send_one = SandboxPush.send_many, SandboxPush.send

    async def counted(self: SandboxPush, sends: Sequence[PushSend]) -> list[PushOutcome]:
        batches.append(len(sends))
        return await send_many(self, sends)

    async def alone(self: SandboxPush, device: PushDevice, *args: Any, **kwargs: Any) -> Any:
        # Only a token with something armed (here: gone) is sent alone, as send() would.
        assert device.token == pixel["attributes"]["token"], "a push was sent alone"
        return await send_one(self, device, *args, **kwargs)

    monkeypatch.setattr(SandboxPush, "send_many", counted)
    monkeypatch.setattr(SandboxPush, "send", alone)
    await send(client, org, template["id"], [(ana, None) for ana in patients])
    await run_jobs(client)
    assert batches == [4]
    for device in devices:
        assert len(await screen(client, org, device["attributes"]["token"])) == 1
        [log] = (
            await client.get(f"/v1/user-devices/{device['id']}/get-logs/", headers=org.admin)
        ).json()["data"]
        assert log["attributes"]["state"] == "sent"
    [log] = (
        await client.get(f"/v1/user-devices/{pixel['id']}/get-logs/", headers=org.admin)
    ).json()["data"]
    assert log["attributes"]["state"] == "failed"
    again = await client.get(f"/v1/user-devices/{pixel['id']}/", headers=org.admin)
    assert again.json()["data"]["attributes"]["active"] is False


async def test_each_push_is_sent_once_even_when_its_batch_runs_again(
    client: httpx.AsyncClient, org: Org
) -> None:
    from courier.domains.user_notifications.service import PUSH_JOB
    from courier.jobs import enqueue

    template = await make_template(client, org)
    ana, _user = await make_patient(client, org)
    flaky = await make_device(client, org, ana, type="apn")
    steady = await make_device(client, org, ana, type="fcm", token="fcm-" + uuid.uuid4().hex)
    armed = await client.post(
        "/sandbox/push/failures",
        json={"error": "not-sent", "target": flaky["attributes"]["token"], "retry-after": 0},
        headers=org.admin,
    )
    assert armed.status_code == 200, armed.text
    ident = notified_id(await send(client, org, template["id"], [(ana, None)]), ana)
    await run_jobs(client)
    assert await screen(client, org, flaky["attributes"]["token"]) == []
    async with app_of(client).state.database.sessionmaker() as session:
        # Drive the clock: the retry (backed off by seconds) falls due now.
        await session.execute(
            scoped(update(Job).where(Job.kind == "deliveries.send"), Job, uuid.UUID(org.id)).values(
                run_at=datetime.now(UTC)
            )
        )
        await commit(session)
    await run_jobs(client)
    # The refused push was retried on its own and reached the phone once; the other once.
    assert len(await screen(client, org, flaky["attributes"]["token"])) == 1
    assert len(await screen(client, org, steady["attributes"]["token"])) == 1
    [log] = (
        await client.get(f"/v1/user-devices/{flaky['id']}/get-logs/", headers=org.admin)
    ).json()["data"]
    assert log["attributes"]["state"] == "sent"

    # The batch's job run again (a worker that died after its commit, say): nothing resent.
    async with app_of(client).state.database.sessionmaker() as session:
        batch = (
            await session.execute(
                scoped(
                    select(UserNotification.batch_id).where(UserNotification.id == ident),
                    UserNotification,
                    uuid.UUID(org.id),
                )
            )
        ).scalar_one()
        await enqueue(
            session,
            PUSH_JOB,
            {"batch_id": batch},
            organization_id=uuid.UUID(org.id),
            dedupe_key=f"{PUSH_JOB}:{batch}:again",
        )
        await commit(session)
    await run_jobs(client)
    assert len(await screen(client, org, flaky["attributes"]["token"])) == 1
    assert len(await screen(client, org, steady["attributes"]["token"])) == 1


async def test_a_push_with_an_unknown_outcome_is_reconciled_not_resent_blindly(
    client: httpx.AsyncClient, org: Org
) -> None:
    """The service timed out (the worker cannot know whether the phone got it): the delivery
    is reconciled; the sandbox never took it, so it is sent now, once."""
    template = await make_template(client, org)
    ana, _user = await make_patient(client, org)
    device = await make_device(client, org, ana, type="apn")
    armed = await client.post(
        "/sandbox/push/failures",
        json={"error": "ambiguous", "target": device["attributes"]["token"]},
        headers=org.admin,
    )
    assert armed.status_code == 200, armed.text
    await send(client, org, template["id"], [(ana, None)])
    await run_jobs(client)
    [log] = (
        await client.get(f"/v1/user-devices/{device['id']}/get-logs/", headers=org.admin)
    ).json()["data"]
    assert log["attributes"]["state"] == "sending"
    assert await screen(client, org, device["attributes"]["token"]) == []
    for _ in range(2):  # reconcile (the sandbox never took it), then the send it asks for
        await jobs_fall_due(
            app_of(client).state.database, org.id, kinds=["deliveries.reconcile", "deliveries.send"]
        )
        await run_jobs(client)
    assert len(await screen(client, org, device["attributes"]["token"])) == 1
    [log] = (
        await client.get(f"/v1/user-devices/{device['id']}/get-logs/", headers=org.admin)
    ).json()["data"]
    assert log["attributes"]["state"] == "sent"


async def test_a_batch_that_died_after_claiming_its_pushes_never_sends_them_twice(
    client: httpx.AsyncClient, org: Org
) -> None:
    """A worker SIGKILLed after the batch's claim committed (deliveries `sending`, the phone
    got nothing yet): the batch's job, run again, leaves them to reconciliation, which finds
    the sandbox never took them and sends each once."""
    from courier.models.delivery import Delivery

    template = await make_template(client, org)
    ana, _user = await make_patient(client, org)
    device = await make_device(client, org, ana, type="apn")
    ident = notified_id(await send(client, org, template["id"], [(ana, None)]), ana)
    async with app_of(client).state.database.sessionmaker() as session:
        claimed = await session.execute(
            scoped(
                update(Delivery).where(Delivery.resource_id == ident),
                Delivery,
                uuid.UUID(org.id),
            ).values(state="sending", rank=2, attempt_id=uuid.uuid4(), sending_at=datetime.now(UTC))
        )
        assert claimed.rowcount == 1  # type: ignore[attr-defined]
        await commit(session)
    await run_jobs(client)  # the batch's job (run again): nothing sent blindly
    assert await screen(client, org, device["attributes"]["token"]) == []
    for _ in range(2):  # reconcile: never taken, so sent now; then that send
        await jobs_fall_due(
            app_of(client).state.database, org.id, kinds=["deliveries.reconcile", "deliveries.send"]
        )
        await run_jobs(client)
    assert len(await screen(client, org, device["attributes"]["token"])) == 1
    await run_jobs(client)
    assert len(await screen(client, org, device["attributes"]["token"])) == 1
