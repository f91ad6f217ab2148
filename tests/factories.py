"""One way to create a sample of each resource type over HTTP, for the contract tests.

Every resource type that serves GET /{id}/ must have a factory here: the contract test fails
for a registered type without one, so a new resource cannot skip the cross-organization checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from tests.conftest import MASTER, Org, doc

Factory = Callable[[httpx.AsyncClient, Org], Awaitable[str]]
FACTORIES: dict[str, Factory] = {}


def factory(type_name: str) -> Callable[[Factory], Factory]:
    def register(func: Factory) -> Factory:
        FACTORIES[type_name] = func
        return func

    return register


async def created_id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


@factory("organizations")
async def make_organization(client: httpx.AsyncClient, org: Org) -> str:
    return org.id


@factory("api-keys")
async def make_api_key(client: httpx.AsyncClient, org: Org) -> str:
    return await created_id(
        await client.post(
            "/v1/api-keys/",
            headers=org.admin,
            json=doc("api-keys", {"name": "sample", "role": "readonly"}),
        )
    )


@factory("console-users")
async def make_console_user(client: httpx.AsyncClient, org: Org) -> str:
    nurse = await make_individual_id(client, org, **{"account-type": "provider"})
    attrs = {
        "username": f"nurse-{uuid.uuid4().hex[:10]}",
        "password": "a long sample password",
        "role": "staff",
        "individual-id": nurse,
    }
    return await created_id(
        await client.post("/v1/console-users/", headers=org.admin, json=doc("console-users", attrs))
    )


async def make_individual_id(client: httpx.AsyncClient, org: Org, **attributes: Any) -> str:
    values = {"first-name": "Sam", "last-name": f"Sample {uuid.uuid4().hex[:6]}"}
    values.update(attributes)
    return await created_id(
        await client.post("/v1/individuals/", headers=org.admin, json=doc("individuals", values))
    )


@factory("individuals")
async def make_individual(client: httpx.AsyncClient, org: Org) -> str:
    return await make_individual_id(client, org)


@factory("users")
async def make_user(client: httpx.AsyncClient, org: Org) -> str:
    suffix = uuid.uuid4().hex[:8]
    return await created_id(
        await client.post(
            "/v1/users/",
            headers=org.admin,
            json=doc("users", {"username": f"user{suffix}", "email": f"u{suffix}@example.org"}),
        )
    )


@factory("individual-groups")
async def make_group(client: httpx.AsyncClient, org: Org) -> str:
    member = await make_individual_id(client, org)
    return await created_id(
        await client.post(
            "/v1/individual-groups/",
            headers=org.admin,
            json=doc("individual-groups", {"name": "Team", "individual-ids": [member]}),
        )
    )


@factory("audit-events")
async def make_audit_event(client: httpx.AsyncClient, org: Org) -> str:
    await make_api_key(client, org)  # any change writes an audit row
    listing = await client.get("/v1/audit-events/?page[limit]=1", headers=org.admin)
    assert listing.status_code == 200, listing.text
    ident: str = listing.json()["data"][0]["id"]
    return ident


def _database(client: httpx.AsyncClient) -> Any:
    """The database of the app the tests' client talks to, for rows no endpoint creates."""
    return client._transport.app.state.database  # type: ignore[attr-defined]


@factory("jobs")
async def make_job(client: httpx.AsyncClient, org: Org) -> str:
    from courier.core.db import commit
    from courier.jobs import enqueue

    async with _database(client).sessionmaker() as session:
        # A kind without a handler: no worker ever claims it, so it stays as made.
        job = await enqueue(session, "contract.sample", {}, organization_id=uuid.UUID(org.id))
        await commit(session)
    return str(job.id)


@factory("replicators")
async def make_replicator(client: httpx.AsyncClient, org: Org) -> str:
    from courier.models.replicator import Replicator

    async with _database(client).sessionmaker() as session:
        row = Replicator(classpath="tests.factories", hostname="contract", pid=0, concurrency=1)
        session.add(row)
        await session.commit()
    return str(row.id)


@factory("webhooks")
async def make_webhook(client: httpx.AsyncClient, org: Org) -> str:
    return await created_id(
        await client.post(
            "/v1/webhooks/",
            headers=org.admin,
            json=doc(
                "webhooks",
                # A type nothing publishes: the sample never enqueues deliveries.
                {"url": "https://127.0.0.1:9/hooks", "event-types": ["contract-samples.none"]},
            ),
        )
    )


@factory("sniffers")
async def make_sniffer(client: httpx.AsyncClient, org: Org) -> str:
    from datetime import UTC, datetime, timedelta

    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return await created_id(
        await client.post(
            "/v1/sniffers/",
            headers=org.admin,
            json=doc("sniffers", {"api-key-id": org.admin_key_id, "valid-until": until}),
        )
    )


@factory("aggregation-requests")
async def make_aggregation_request(client: httpx.AsyncClient, org: Org) -> str:
    individual = await make_individual_id(client, org)
    entries = [{"column": "message-count", "individual-id": individual}]
    return await created_id(
        await client.post(
            "/v1/aggregation-requests/",
            headers=org.staff,
            json=doc("aggregation-requests", {"entries": entries}),
        )
    )


async def message_row(
    client: httpx.AsyncClient,
    org: Org,
    subscriber_ids: Sequence[str] = (),
    *,
    author_id: str | None = None,
    draft: bool = False,
) -> str:
    """A channel with these subscribers and one message in it, written straight to the
    database (for tests of what hangs on messages, independent of the messaging API)."""
    from courier.core.time import utcnow
    from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber

    organization_id = uuid.UUID(org.id)
    async with _database(client).sessionmaker() as session:
        channel = MessagingChannel(
            organization_id=organization_id,
            name="Sample",
            last_seq=1,
            subscriber_count=len(subscriber_ids),
        )
        session.add(channel)
        await session.flush()
        for individual_id in subscriber_ids:
            session.add(
                MessagingSubscriber(
                    organization_id=organization_id,
                    channel_id=channel.id,
                    individual_id=uuid.UUID(individual_id),
                )
            )
        message = MessagingMessage(
            organization_id=organization_id,
            channel_id=channel.id,
            seq=None if draft else 1,
            individual_id=uuid.UUID(author_id) if author_id else None,
            message="sample",
            draft=draft,
            posted_time=None if draft else utcnow(),
        )
        session.add(message)
        await session.commit()
    return str(message.id)


@factory("messaging-attachments")
async def make_attachment(client: httpx.AsyncClient, org: Org) -> str:
    message_id = await message_row(client, org)
    started = await client.post(
        "/v1/messaging-attachments/",
        headers=org.staff,
        json=doc("messaging-attachments", {"message-id": message_id, "filename": "note.txt"}),
    )
    ident = await created_id(started)
    upload = started.json()["data"]
    stored = await client.post(
        upload["upload-url"],
        data=upload["upload-data"],
        files={"file": ("note.txt", b"Take two tablets daily.\n", "text/plain")},
    )
    assert stored.status_code == 204, stored.text
    processed = await client.post(
        f"/v1/messaging-attachments/{ident}/process-upload/", headers=org.staff, json={}
    )
    assert processed.status_code == 201, processed.text
    return ident


async def _messaging_channel(client: httpx.AsyncClient, org: Org, member: str) -> str:
    return await created_id(
        await client.post(
            "/v1/messaging-channels/",
            headers=org.staff,
            json=doc("messaging-channels", {"individual-ids": [member]}),
        )
    )


@factory("messaging-channels")
async def make_messaging_channel(client: httpx.AsyncClient, org: Org) -> str:
    return await _messaging_channel(client, org, await make_individual_id(client, org))


@factory("messaging-messages")
async def make_messaging_message(client: httpx.AsyncClient, org: Org) -> str:
    member = await make_individual_id(client, org)
    channel = await _messaging_channel(client, org, member)
    return await created_id(
        await client.post(
            "/v1/messaging-messages/",
            headers=org.staff,
            json=doc(
                "messaging-messages",
                {"channel-id": channel, "individual-id": member, "message": "Sample"},
            ),
        )
    )


@factory("messaging-bookmarks")
async def make_bookmark(client: httpx.AsyncClient, org: Org) -> str:
    member = await make_individual_id(client, org)
    channel = await _messaging_channel(client, org, member)
    message = await created_id(
        await client.post(
            "/v1/messaging-messages/",
            headers=org.staff,
            json=doc(
                "messaging-messages",
                {"channel-id": channel, "individual-id": member, "message": "Keep this"},
            ),
        )
    )
    return await created_id(
        await client.post(
            "/v1/messaging-bookmarks/",
            headers=org.staff,
            json=doc(
                "messaging-bookmarks",
                {"channel-id": channel, "message-id": message, "individual-id": member},
            ),
        )
    )


@factory("badge-counts")
async def make_badge_count(client: httpx.AsyncClient, org: Org) -> str:
    member = await make_individual_id(client, org)
    return await created_id(
        await client.post(
            "/v1/badge-counts/",
            headers=org.staff,
            json=doc("badge-counts", {"individual-id": member, "type": "appointment", "count": 2}),
        )
    )


@factory("messaging-plugins")
async def make_messaging_plugin(client: httpx.AsyncClient, org: Org) -> str:
    return await created_id(
        await client.post(
            "/v1/messaging-plugins/",
            headers=org.admin,
            json=doc(
                "messaging-plugins",
                {
                    "name": f"sample{uuid.uuid4().hex[:8]}",
                    "type": "template",
                    "args": {"template": "Hello {{ individual.first_name }}"},
                },
            ),
        )
    )


@factory("templates")
async def make_template(client: httpx.AsyncClient, org: Org) -> str:
    return await created_id(
        await client.post(
            "/v1/templates/",
            headers=org.admin,
            json=doc(
                "templates",
                {
                    "name": f"sample {uuid.uuid4().hex[:8]}",
                    "sms": {"body": "Hello {{ individual.first_name }}"},
                },
            ),
        )
    )


@factory("announcers")
async def make_announcer(client: httpx.AsyncClient, org: Org) -> str:
    template = await make_template(client, org)
    return await created_id(
        await client.post(
            "/v1/announcers/",
            headers=org.admin,
            json=doc(
                "announcers",
                {
                    "name": "sample",
                    "event": "individual-created",
                    "args": {"template-id": template, "recipients": ["subject"]},
                },
            ),
        )
    )


@factory("multicasts")
async def make_multicast(client: httpx.AsyncClient, org: Org) -> str:
    # No worker runs in the contract tests: the multicast stays queued, as made.
    template = await make_template(client, org)
    individual = await make_individual_id(client, org)
    value = {"individual-ids": [individual]}
    return await created_id(
        await client.post(
            "/v1/multicasts/",
            headers=org.staff,
            json=doc(
                "multicasts",
                {"filter-type": "individuals", "filter-value": value, "template-id": template},
            ),
        )
    )


@factory("messaging-operations")
async def make_messaging_operation(client: httpx.AsyncClient, org: Org) -> str:
    # No worker runs in the contract tests: the operation stays queued, as made.
    source = await make_group(client, org)
    target = await make_group(client, org)
    args = {"from-individual-group-id": source, "to-individual-group-id": target}
    return await created_id(
        await client.post(
            "/v1/messaging-operations/",
            headers=org.admin,
            json=doc("messaging-operations", {"type": "move-group", "args": args}),
        )
    )


async def _bulk_draft(client: httpx.AsyncClient, org: Org) -> str:
    sender = await make_individual_id(client, org, **{"account-type": "provider"})
    recipient = await make_individual_id(client, org)
    return await created_id(
        await client.post(
            "/v1/messaging-bulk-messages/",
            headers=org.staff,
            json=doc(
                "messaging-bulk-messages",
                {
                    "sender-individual-id": sender,
                    "individual-ids": [recipient],
                    "message": "Sample",
                    "draft": True,  # no worker runs in the contract tests: kept as made
                },
            ),
        )
    )


@factory("messaging-bulk-messages")
async def make_bulk_message(client: httpx.AsyncClient, org: Org) -> str:
    return await _bulk_draft(client, org)


@factory("messaging-bulk-attachments")
async def make_bulk_attachment(client: httpx.AsyncClient, org: Org) -> str:
    bulk = await _bulk_draft(client, org)
    started = await client.post(
        "/v1/messaging-bulk-attachments/",
        headers=org.staff,
        json=doc("messaging-bulk-attachments", {"bulk-message-id": bulk, "filename": "note.txt"}),
    )
    ident = await created_id(started)
    upload = started.json()["data"]
    stored = await client.post(
        upload["upload-url"],
        data=upload["upload-data"],
        files={"file": ("note.txt", b"Bring your insurance card.\n", "text/plain")},
    )
    assert stored.status_code == 204, stored.text
    processed = await client.post(
        f"/v1/messaging-bulk-attachments/{ident}/process-upload/", headers=org.staff, json={}
    )
    assert processed.status_code == 201, processed.text
    return ident


@factory("messaging-responders")
async def make_messaging_responder(client: httpx.AsyncClient, org: Org) -> str:
    group = await make_group(client, org)
    return await created_id(
        await client.post(
            "/v1/messaging-responders/",
            headers=org.admin,
            json=doc(
                "messaging-responders",
                {
                    "individual-group-id": group,
                    "calendar-args": {
                        "rules": [{"day": "weekdays", "start-time": "18:00", "end-time": "08:00"}]
                    },
                    "args": {"message": "We are closed; we answer in the morning."},
                },
            ),
        )
    )


@factory("user-emails")
async def make_user_email(client: httpx.AsyncClient, org: Org) -> str:
    individual = await make_individual_id(client, org)
    return await created_id(
        await client.post(
            "/v1/user-emails/",
            headers=org.staff,
            json=doc(
                "user-emails",
                {
                    "individual-id": individual,
                    "to": "sample@patients.example",
                    "subject": "Sample",
                    "message": "Hello",
                },
            ),
        )
    )


@factory("user-email-attachments")
async def make_user_email_attachment(client: httpx.AsyncClient, org: Org) -> str:
    email_id = await make_user_email(client, org)
    started = await client.post(
        "/v1/user-email-attachments/",
        headers=org.staff,
        json=doc("user-email-attachments", {"email-id": email_id, "filename": "note.txt"}),
    )
    ident = await created_id(started)
    upload = started.json()["data"]
    stored = await client.post(
        upload["upload-url"],
        data=upload["upload-data"],
        files={"file": ("note.txt", b"Take two tablets daily.\n", "text/plain")},
    )
    assert stored.status_code == 204, stored.text
    processed = await client.post(
        f"/v1/user-email-attachments/{ident}/process-upload/", headers=org.staff, json={}
    )
    assert processed.status_code == 201, processed.text
    return ident


async def individual_token(client: httpx.AsyncClient, org: Org, individual_id: str) -> str:
    response = await client.post(
        "/v1/access-tokens/",
        headers=org.staff,
        json=doc("access-tokens", {"individual-id": individual_id}),
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["data"]["attributes"]["token"]
    return token


__all__ = ["FACTORIES", "MASTER", "individual_token", "make_individual_id", "message_row"]


@factory("system-purges")
async def make_purge(client: httpx.AsyncClient, org: Org) -> str:
    return await created_id(
        await client.post(
            "/v1/purge-data/",
            headers=org.admin,
            json=doc(
                "system-purges", {"entity-type": "individual", "entity-id": str(uuid.uuid4())}
            ),
        )
    )


@factory("ask-reminders")
async def make_ask_reminder(client: httpx.AsyncClient, org: Org) -> str:
    person = await make_individual_id(client, org)
    attributes = {
        "individual-id": person,
        "name": "Blood pressure",
        "reminder-content": "Take your blood pressure pill",
        "reminder-rrule": "FREQ=DAILY",
        "reminder-time-local": "2030-03-04T08:30",
        "tz-info": "America/New_York",
    }
    return await created_id(
        await client.post(
            "/v1/ask-reminders/", headers=org.admin, json=doc("ask-reminders", attributes)
        )
    )


@factory("ask-subscriptions")
async def make_ask_subscription(client: httpx.AsyncClient, org: Org) -> str:
    # Made by a skill event (tests/test_alexa.py drives those); here the row it makes.
    from courier.domains.alexa.skill import skill_id_of
    from courier.models.alexa import AskSubscription

    app_id = "amzn1.ask.skill.contract"
    async with _database(client).sessionmaker() as session:
        row = AskSubscription(
            organization_id=uuid.UUID(org.id),
            skill_id=skill_id_of(app_id),
            alexa_app_id=app_id,
            alexa_user_id=f"amzn1.ask.account.{uuid.uuid4().hex}",
            user_id=None,
            registered_events=["AMAZON.MessageAlert.Activated"],
        )
        session.add(row)
        await session.commit()
    return str(row.id)


# --- SMS -----------------------------------------------------------------------------------


async def text_number(client: httpx.AsyncClient, org: Org) -> dict[str, Any]:
    """The organization's text account (made once) and a number of it, provisioned."""
    from courier.domains.text_accounts.jobs import provision_number  # noqa: F401  (handler)
    from courier.jobs import run_until_idle

    account = await client.post(
        "/v1/text-accounts/", headers=org.admin, json=doc("text-accounts", {})
    )
    assert account.status_code in (201, 409), account.text
    made = await client.post(
        "/v1/text-account-numbers/",
        headers=org.admin,
        json=doc("text-account-numbers", {"area-code": "303", "rate-per-second": 1000}),
    )
    number_id = await created_id(made)
    app = client._transport.app  # type: ignore[attr-defined]
    await run_until_idle(app.state.database, app.state.settings, kinds=["texts.provision-number"])
    got = await client.get(f"/v1/text-account-numbers/{number_id}/", headers=org.admin)
    number: dict[str, Any] = got.json()["data"]
    return number


@factory("text-accounts")
async def make_text_account(client: httpx.AsyncClient, org: Org) -> str:
    number = await text_number(client, org)
    ident: str = number["attributes"]["account-id"]
    return ident


@factory("text-account-numbers")
async def make_text_number(client: httpx.AsyncClient, org: Org) -> str:
    ident: str = (await text_number(client, org))["id"]
    return ident


@factory("text-user-number-maps")
async def make_text_user_number_map(client: httpx.AsyncClient, org: Org) -> str:
    number = await text_number(client, org)
    user = await created_id(
        await client.post(
            "/v1/users/",
            headers=org.admin,
            json=doc("users", {"username": f"texter-{uuid.uuid4().hex[:6]}"}),
        )
    )
    return await created_id(
        await client.post(
            "/v1/text-user-number-maps/",
            headers=org.admin,
            json=doc("text-user-number-maps", {"number-id": number["id"], "user-id": user}),
        )
    )


@factory("texts")
async def make_text(client: httpx.AsyncClient, org: Org) -> str:
    await text_number(client, org)
    return await created_id(
        await client.post(
            "/v1/texts/",
            headers=org.admin,
            json=doc("texts", {"target": "+14155552671", "message": "Sample"}),
        )
    )


@factory("text-receive-logs")
async def make_text_receive_log(client: httpx.AsyncClient, org: Org) -> str:
    from courier.core.db import commit
    from courier.models.text_account import TextReceiveLog

    number = await text_number(client, org)
    async with _database(client).sessionmaker() as session:
        row = TextReceiveLog(
            id=uuid.uuid4(),
            organization_id=uuid.UUID(org.id),
            number_id=uuid.UUID(number["id"]),
            sender="+14155552671",
            to=number["attributes"]["phone-number"],
            message="Sample",
            sid="SM" + uuid.uuid4().hex,
        )
        session.add(row)
        await commit(session)
    return str(row.id)


@factory("text-number-info")
async def make_text_number_info(client: httpx.AsyncClient, org: Org) -> str:
    return await created_id(
        await client.post(
            "/v1/text-number-info/",
            headers=org.staff,
            json=doc("text-number-info", {"number": "+14155552671"}),
        )
    )


@factory("user-consents")
async def make_user_consent(client: httpx.AsyncClient, org: Org) -> str:
    await text_number(client, org)
    user = await created_id(
        await client.post(
            "/v1/users/",
            headers=org.admin,
            json=doc(
                "users", {"username": f"consent-{uuid.uuid4().hex[:6]}", "phone": "+14155552671"}
            ),
        )
    )
    return await created_id(
        await client.post(
            "/v1/user-consents/",
            headers=org.staff,
            json=doc("user-consents", {"user-id": user, "args": {"messages": {"initial": "OK?"}}}),
        )
    )


@factory("user-devices")
async def make_user_device(client: httpx.AsyncClient, org: Org) -> str:
    individual = await make_individual_id(client, org)
    response = await client.post(
        "/v1/user-devices/",
        headers=org.admin,
        json=doc(
            "user-devices",
            {"individual-id": individual, "type": "fcm", "token": f"fcm-{uuid.uuid4().hex}"},
        ),
    )
    return await created_id(response)


@factory("app-credentials")
async def make_app_credential(client: httpx.AsyncClient, org: Org) -> str:
    response = await client.post(
        "/v1/app-credentials/",
        headers=org.admin,
        json=doc("app-credentials", {"type": "web", "app-name": f"app-{uuid.uuid4().hex[:8]}"}),
    )
    return await created_id(response)


@factory("appointments")
async def make_appointment(client: httpx.AsyncClient, org: Org) -> str:
    host = await make_individual_id(client, org, **{"account-type": "provider"})
    patient = await make_individual_id(client, org)
    return await created_id(
        await client.post(
            "/v1/appointments/",
            headers=org.staff,
            json=doc(
                "appointments",
                {
                    "name": "Annual check-in",
                    "start-time": "2030-01-15T15:00:00Z",
                    "end-time": "2030-01-15T15:30:00Z",
                    "host": host,
                    "attendees": [patient],
                },
            ),
        )
    )


@factory("user-notifications")
async def make_user_notification(client: httpx.AsyncClient, org: Org) -> str:
    from courier.domains.user_notifications.service import Notified
    from tests.notify_support import make_patient, make_template, send

    template = await make_template(client, org)
    individual, _user = await make_patient(client, org)
    results = await send(client, org, template["id"], [(individual, None)])
    notified = results[uuid.UUID(individual)]
    assert isinstance(notified, Notified)
    return str(notified.notification_id)


async def _video_visit(client: httpx.AsyncClient, org: Org) -> dict[str, Any]:
    provider = await make_individual_id(client, org, **{"account-type": "provider"})
    patient = await make_individual_id(client, org)
    response = await client.post(
        "/v1/video-channels/",
        headers=org.staff,
        json=doc("video-channels", {"participants": [provider, patient]}),
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@factory("video-channels")
async def make_video_channel(client: httpx.AsyncClient, org: Org) -> str:
    return str((await _video_visit(client, org))["id"])


@factory("video-participants")
async def make_video_participant(client: httpx.AsyncClient, org: Org) -> str:
    visit = await _video_visit(client, org)
    return str(visit["attributes"]["participants"][0]["id"])


@factory("video-compositions")
async def make_video_composition(client: httpx.AsyncClient, org: Org) -> str:
    """A composition row as the compose job makes one (no endpoint creates them)."""
    from courier.core.db import commit
    from courier.models.video import VideoComposition

    visit = await _video_visit(client, org)
    async with _database(client).sessionmaker() as session:
        row = VideoComposition(
            organization_id=uuid.UUID(org.id),
            video_channel_id=uuid.UUID(visit["id"]),
            processing_status="enqueued",
            processing_pct=0,
        )
        session.add(row)
        await commit(session)
    return str(row.id)


async def _voice_callee(client: httpx.AsyncClient, org: Org) -> str:
    from tests.notify_support import new_phone

    await text_number(client, org)  # the calls' caller id
    return await make_individual_id(client, org, phone=new_phone())


@factory("voice-conferences")
async def make_voice_conference(client: httpx.AsyncClient, org: Org) -> str:
    individual = await _voice_callee(client, org)
    return await created_id(
        await client.post(
            "/v1/voice-conferences/",
            headers=org.staff,
            json=doc("voice-conferences", {"individual-id": individual}),
        )
    )


@factory("voice-dial-logs")
async def make_voice_dial_log(client: httpx.AsyncClient, org: Org) -> str:
    conference = await make_voice_conference(client, org)
    got = await client.get(
        f"/v1/voice-dial-logs/?filter[conference-id]={conference}", headers=org.admin
    )
    assert got.status_code == 200, got.text
    ident: str = got.json()["data"][0]["id"]
    return ident


@factory("voice-surveys")
async def make_voice_survey(client: httpx.AsyncClient, org: Org) -> str:
    individual = await _voice_callee(client, org)
    spec = {"questions": [{"prompt": "Press 1 if you are well", "answer": "dtmf"}]}
    return await created_id(
        await client.post(
            "/v1/voice-surveys/",
            headers=org.staff,
            json=doc("voice-surveys", {"individual-id": individual, "spec": spec}),
        )
    )


# --- voice (tests/voice_support.py registers its factories) ---------------------------------

from tests import voice_support as _voice_support  # noqa: E402, F401
