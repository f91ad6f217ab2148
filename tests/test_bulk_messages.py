"""Bulk messages over HTTP: drafts, the fan-out into direct channels, locales, attachments,
filters, and exactly-once delivery when a real ``courier worker`` is killed half-way."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import create_async_engine

import courier.domains.messaging_bulk.jobs  # noqa: F401  (registers the fan-out jobs)
from courier.config import Settings
from courier.core.db import Database
from courier.core.tenancy import scoped, unscoped
from courier.domains.messaging import jobs as messaging_jobs
from courier.domains.messaging.locales import choose_text_key, split_locale
from courier.domains.messaging_bulk.fanout import CHUNK_JOB, PLAN_JOB
from courier.domains.messaging_bulk.uploads import bulk_uploads
from courier.jobs import Job, run_until_idle
from courier.models.event import Event
from courier.models.fanout import Fanout, FanoutTarget
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroup, IndividualGroupMember
from courier.models.messaging import MessagingChannel, MessagingMessage, MessagingSubscriber
from courier.models.messaging_attachment import MessagingAttachment
from courier.models.messaging_bulk import MessagingBulkAttachment
from courier.providers.storage import storage_for
from courier.uploads.jobs import cleanup_grace, cleanup_window
from tests.conftest import Org, doc
from tests.factories import individual_token, make_individual_id
from tests.support import WorkerProcesses
from tests.test_attachments import png_bytes

BULK = "/v1/messaging-bulk-messages/"
BULK_ATTACHMENTS = "/v1/messaging-bulk-attachments/"
CHANNELS = "/v1/messaging-channels/"
MESSAGES = "/v1/messaging-messages/"
KINDS = [PLAN_JOB, CHUNK_JOB]
REASON = "tests read across the rows they made"
REPO = Path(__file__).resolve().parent.parent


# --- helpers -----------------------------------------------------------------------------------


async def provider(client: httpx.AsyncClient, org: Org, **attributes: Any) -> str:
    return await make_individual_id(client, org, **{"account-type": "provider", **attributes})


async def direct_channel(client: httpx.AsyncClient, org: Org, a: str, b: str) -> str:
    response = await client.post(
        CHANNELS, headers=org.staff, json=doc("messaging-channels", {"individual-ids": [a, b]})
    )
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def create_bulk(
    client: httpx.AsyncClient, org: Org, attributes: dict[str, Any], **params: str
) -> httpx.Response:
    return await client.post(
        BULK, headers=org.staff, json=doc("messaging-bulk-messages", attributes), params=params
    )


async def created_bulk(
    client: httpx.AsyncClient, org: Org, attributes: dict[str, Any], **params: str
) -> dict[str, Any]:
    response = await create_bulk(client, org, attributes, **params)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def patch_bulk(
    client: httpx.AsyncClient, org: Org, ident: str, attributes: dict[str, Any]
) -> httpx.Response:
    return await client.patch(
        f"{BULK}{ident}/",
        headers=org.staff,
        json=doc("messaging-bulk-messages", attributes, ident),
    )


async def bulk_view(client: httpx.AsyncClient, org: Org, ident: str) -> dict[str, Any]:
    response = await client.get(f"{BULK}{ident}/", headers=org.staff)
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


async def fan_out(app: Any) -> int:
    return await run_until_idle(app.state.database, app.state.settings, kinds=KINDS)


async def channel_messages(
    client: httpx.AsyncClient, org: Org, channel_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        MESSAGES, headers=org.staff, params={"channel-id": channel_id, "page[limit]": "100"}
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def channels_of(client: httpx.AsyncClient, org: Org, individual_id: str) -> list[str]:
    response = await client.get(
        CHANNELS, headers=org.staff, params={"participant-id": individual_id}
    )
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


@dataclass(frozen=True)
class Recipient:
    """A recipient as the bulk message's fan-out recorded them."""

    status: str  # pending, delivered, skipped
    skip_reason: str | None
    message_id: uuid.UUID | None


async def recipient_rows(app: Any, bulk_id: str) -> dict[str, Recipient]:
    stmt = (
        select(FanoutTarget)
        .join(Fanout, Fanout.id == FanoutTarget.fanout_id)
        .where(Fanout.kind == "messaging-bulk-messages", Fanout.subject_id == uuid.UUID(bulk_id))
    )
    async with app.state.database.sessionmaker() as session:
        rows = (await session.execute(unscoped(stmt, REASON))).scalars().all()
    return {
        str(row.target_id): Recipient(
            row.state,
            row.reason,
            uuid.UUID(row.outcome["message-id"]) if row.outcome else None,
        )
        for row in rows
    }


async def events_of(app: Any, resource_id: str) -> list[str]:
    stmt = select(Event.type).where(Event.resource_id == uuid.UUID(resource_id)).order_by(Event.seq)
    async with app.state.database.sessionmaker() as session:
        return list((await session.execute(unscoped(stmt, REASON))).scalars())


async def message_texts(app: Any, ids: list[uuid.UUID | None]) -> dict[uuid.UUID | None, str]:
    stmt = select(MessagingMessage.id, MessagingMessage.message).where(
        MessagingMessage.id.in_([i for i in ids if i is not None])
    )
    async with app.state.database.sessionmaker() as session:
        return {ident: text for ident, text in (await session.execute(unscoped(stmt, REASON)))}


# --- choosing a text by locale (pure) ------------------------------------------------------------


def test_locale_matching_prefers_region_then_language() -> None:
    texts = {"en_US": "Closed Monday", "es_US": "Cerrado el lunes", "es": "Cerrado", "fr_CA": ""}
    assert split_locale("es-mx") == ("es", "MX")
    assert split_locale("es-419") == ("es", "419")
    assert choose_text_key(texts, "es-US") == "es_US"
    assert choose_text_key(texts, "es_us") == "es_US"
    assert choose_text_key(texts, "es-MX") == "es"  # the bare language before another region
    assert choose_text_key({"es_US": "x", "es_ES": "y"}, "es") == "es_ES"  # sorted: ES < US
    assert choose_text_key({"es_US": "x"}, "es") == "es_US"  # es -> es_US
    assert choose_text_key(texts, "en") == "en_US"
    assert choose_text_key(texts, "fr-CA") is None  # blank entries never match
    assert choose_text_key(texts, "de") is None
    assert choose_text_key(texts, None) is None


# --- drafts, posting, direct channels ------------------------------------------------------------


async def test_draft_kept_until_patch_then_posted_in_direct_channels(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    sender = await provider(client, org)
    with_channel = await make_individual_id(client, org)
    without = await make_individual_id(client, org)
    existing = await direct_channel(client, org, sender, with_channel)
    # Not direct: a third subscriber; a group channel of the two of them.
    third = await make_individual_id(client, org)
    crowded = await direct_channel(client, org, sender, without)
    await client.post(
        f"{CHANNELS}{crowded}/subscribe/", headers=org.staff, json={"individual-ids": [third]}
    )

    draft = await created_bulk(
        client,
        org,
        {
            "sender-individual-id": sender,
            "individual-ids": [with_channel, without],
            "message": "First version",
            "draft": True,
        },
    )
    attributes = draft["attributes"]
    assert attributes["draft"] is True
    assert attributes["status"] == "draft"
    assert attributes["posted-time"] is None
    assert attributes["created-by"] == sender
    assert attributes["auto-create-channel"] is False
    assert attributes["individual-ids"] == [with_channel, without]
    assert await fan_out(app) == 0  # a draft enqueues nothing
    assert await channel_messages(client, org, existing) == []

    edited = await patch_bulk(client, org, draft["id"], {"message": "The clinic is closed today"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["data"]["attributes"]["message"] == "The clinic is closed today"
    assert await fan_out(app) == 0

    sent = await patch_bulk(client, org, draft["id"], {"draft": False})
    assert sent.status_code == 200, sent.text
    assert sent.json()["data"]["attributes"]["status"] == "queued"
    assert await fan_out(app) >= 2  # the plan, then one chunk

    view = await bulk_view(client, org, draft["id"])
    assert view["status"] == "posted"
    assert view["posted-time"] is not None
    assert (view["recipient-count"], view["posted-count"], view["skipped-count"]) == (2, 1, 1)
    analysed = [messaging_jobs.analysis.ANALYSE_JOB]  # each posted copy's, after the post
    await run_until_idle(app.state.database, app.state.settings, kinds=analysed)
    posted = await channel_messages(client, org, existing)
    assert [m["attributes"]["message"] for m in posted] == ["The clinic is closed today"]
    message = posted[0]["attributes"]
    assert message["source"] == "bulk-message"
    assert message["individual-id"] == sender
    assert message["seq"] == 1
    assert message["sentiment"] in ("positive", "neutral", "negative")
    assert await channel_messages(client, org, crowded) == []  # not a direct channel
    rows = await recipient_rows(app, draft["id"])
    assert rows[with_channel].status == "delivered"
    assert str(rows[with_channel].message_id) == posted[0]["id"]
    assert (rows[without].status, rows[without].skip_reason) == ("skipped", "no-direct-channel")
    # The bulk message says whom it skipped and why, per recipient.
    (skipped,) = view["skipped"]
    assert (skipped["individual-id"], skipped["reason"]) == (without, "no-direct-channel")
    assert "auto-create-channel" in skipped["detail"]

    # The sender has read their own message; the recipient has one unread.
    seen = await client.get(
        f"{CHANNELS}{existing}/", headers=org.staff, params={"individual-id": sender}
    )
    assert seen.json()["data"]["attributes"]["caller-new-message-count"] == 0
    unread = await client.get(
        f"{CHANNELS}{existing}/", headers=org.staff, params={"individual-id": with_channel}
    )
    assert unread.json()["data"]["attributes"]["caller-new-message-count"] == 1

    # Sent: no more edits, no way back to a draft; sending again changes nothing.
    again = await patch_bulk(client, org, draft["id"], {"message": "Changed"})
    assert again.status_code == 409
    assert (await patch_bulk(client, org, draft["id"], {"draft": True})).status_code == 409
    announced = await events_of(app, draft["id"])
    assert announced[-1] == "messaging-bulk-messages.posted"
    same = await patch_bulk(client, org, draft["id"], {"draft": False})
    assert same.status_code == 200
    assert await events_of(app, draft["id"]) == announced  # nothing changed: nothing announced
    assert await fan_out(app) == 0
    assert len(await channel_messages(client, org, existing)) == 1


async def test_groups_expanded_without_duplicates_or_the_sender_and_channels_created(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    sender = await provider(client, org)
    a = await make_individual_id(client, org)
    b = await make_individual_id(client, org)
    c = await make_individual_id(client, org)
    group = await client.post(
        "/v1/individual-groups/",
        headers=org.admin,
        json=doc("individual-groups", {"name": "Cohort", "individual-ids": [sender, a, b]}),
    )
    assert group.status_code == 201, group.text
    # A group channel of sender and a is not their direct channel.
    grouped = await client.post(
        CHANNELS,
        headers=org.staff,
        json=doc(
            "messaging-channels",
            {"individual-group-id": group.json()["data"]["id"], "individual-ids": [sender]},
        ),
    )
    assert grouped.status_code == 201
    archived = await direct_channel(client, org, sender, c)
    assert (
        await client.post(f"{CHANNELS}{archived}/archive/", headers=org.staff, json={})
    ).status_code == 201

    bulk = await created_bulk(
        client,
        org,
        {
            "sender-individual-id": sender,
            "individual-ids": [a, c],
            "individual-group-ids": [group.json()["data"]["id"]],
            "message": "Flu shots are in",
            "auto-create-channel": True,
        },
    )
    assert bulk["attributes"]["status"] == "queued"
    await fan_out(app)
    view = await bulk_view(client, org, bulk["id"])
    assert (view["recipient-count"], view["posted-count"], view["skipped-count"]) == (3, 3, 0)
    for person in (a, b, c):
        direct = []
        for channel in await channels_of(client, org, person):
            subscribers = await client.get(f"{CHANNELS}{channel}/", headers=org.staff)
            ids = {s["id"] for s in subscribers.json()["data"]["attributes"]["subscribers"]}
            if ids == {sender, person} and channel != archived:
                direct.append(channel)
        assert len(direct) == 1, person
        texts = [m["attributes"]["message"] for m in await channel_messages(client, org, direct[0])]
        assert texts == ["Flu shots are in"]
    assert await channel_messages(client, org, grouped.json()["data"]["id"]) == []
    assert await channel_messages(client, org, archived) == []

    # A second bulk message finds the channels the first one created: none is added.
    before = {p: set(await channels_of(client, org, p)) for p in (a, b, c)}
    second = await created_bulk(
        client,
        org,
        {
            "sender-individual-id": sender,
            "individual-ids": [a, b, c],
            "message": "Reminder",
            "auto-create-channel": True,
        },
    )
    await fan_out(app)
    assert (await bulk_view(client, org, second["id"]))["posted-count"] == 3
    assert {p: set(await channels_of(client, org, p)) for p in (a, b, c)} == before


async def test_message_js_chosen_by_each_recipients_locale(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    sender = await provider(client, org)
    spanish = await make_individual_id(client, org, locale="es-MX")
    bare = await make_individual_id(client, org, locale="es")
    english = await make_individual_id(client, org, locale="en-GB")
    french = await make_individual_id(client, org, locale="fr-FR")
    nothing = await make_individual_id(client, org)
    via_user = await make_individual_id(client, org)
    user = await client.post(
        "/v1/users/",
        headers=org.admin,
        json=doc(
            "users",
            {
                "username": f"u{uuid.uuid4().hex[:8]}",
                "locale": "es-US",
                "primary-individual-id": via_user,
            },
        ),
    )
    assert user.status_code == 201, user.text
    people = [spanish, bare, english, french, nothing, via_user]
    bulk = await created_bulk(
        client,
        org,
        {
            "sender-individual-id": sender,
            "individual-ids": people,
            "message": "Default text",
            "message-js": {"en_US": "English text", "es_US": "Texto en español"},
            "auto-create-channel": True,
        },
    )
    assert bulk["attributes"]["message-js"] == {
        "en_US": "English text",
        "es_US": "Texto en español",
    }
    await fan_out(app)
    rows = await recipient_rows(app, bulk["id"])
    texts = await message_texts(app, [row.message_id for row in rows.values()])
    got = {person: texts[rows[person].message_id] for person in people}
    assert got == {
        spanish: "Texto en español",
        bare: "Texto en español",
        english: "English text",
        french: "Default text",
        nothing: "Default text",
        via_user: "Texto en español",
    }

    # Without a plain message, readers no translation fits get the English one.
    only_js = await created_bulk(
        client,
        org,
        {
            "sender-individual-id": sender,
            "individual-ids": [french, spanish],
            "message-js": {"en_US": "English only", "es": "Solo español"},
        },
    )
    await fan_out(app)
    rows = await recipient_rows(app, only_js["id"])
    texts = await message_texts(app, [row.message_id for row in rows.values()])
    assert texts[rows[french].message_id] == "English only"
    assert texts[rows[spanish].message_id] == "Solo español"


async def test_refusals(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    sender = await provider(client, org)
    patient = await make_individual_id(client, org)
    foreign = await make_individual_id(client, other_org)

    not_provider = await create_bulk(
        client, org, {"sender-individual-id": patient, "individual-ids": [sender], "message": "x"}
    )
    assert not_provider.status_code == 422
    nobody = await create_bulk(client, org, {"sender-individual-id": sender, "message": "x"})
    assert nobody.status_code == 400
    no_sender = await create_bulk(client, org, {"individual-ids": [patient], "message": "x"})
    assert no_sender.status_code == 400
    # The sender may come from individual-id of the call.
    implied = await create_bulk(
        client, org, {"individual-ids": [patient], "draft": True}, **{"individual-id": sender}
    )
    assert implied.status_code == 201, implied.text
    assert implied.json()["data"]["attributes"]["sender-individual-id"] == sender
    unknown = await create_bulk(
        client, org, {"sender-individual-id": sender, "individual-ids": [foreign], "message": "x"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["source"]["pointer"] == "/data/attributes/individual-ids"
    blank = await create_bulk(
        client, org, {"sender-individual-id": sender, "individual-ids": [patient], "message": " "}
    )
    assert blank.status_code == 400
    draft = await created_bulk(
        client,
        org,
        {"sender-individual-id": sender, "individual-ids": [patient], "draft": True},
    )
    assert (await patch_bulk(client, org, draft["id"], {"draft": False})).status_code == 400
    assert (await patch_bulk(client, org, draft["id"], {"message": None})).status_code == 400
    not_a_member = await create_bulk(
        client,
        org,
        {
            "sender-individual-id": sender,
            "sender-individual-group-id": (
                await client.post(
                    "/v1/individual-groups/",
                    headers=org.admin,
                    json=doc("individual-groups", {"name": "Other", "individual-ids": [patient]}),
                )
            ).json()["data"]["id"],
            "individual-ids": [patient],
            "message": "x",
        },
    )
    assert not_a_member.status_code == 422
    readonly = await client.post(
        BULK,
        headers=org.readonly,
        json=doc("messaging-bulk-messages", {"individual-ids": [patient], "message": "x"}),
    )
    assert readonly.status_code == 403
    token = {"Authorization": f"Bearer {await individual_token(client, org, sender)}"}
    assert (await client.get(BULK, headers=token)).status_code == 403
    assert (await client.get(f"{BULK}{draft['id']}/", headers=other_org.staff)).status_code == 404


async def test_list_filters_created_by_and_include_posted(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    sender = await provider(client, org)
    colleague = await provider(client, org)
    patient = await make_individual_id(client, org)
    await direct_channel(client, org, sender, patient)
    mine_draft = await created_bulk(
        client, org, {"sender-individual-id": sender, "individual-ids": [patient], "draft": True}
    )
    mine_sent = await created_bulk(
        client, org, {"sender-individual-id": sender, "individual-ids": [patient], "message": "Hi"}
    )
    theirs = await created_bulk(
        client,
        org,
        {"sender-individual-id": sender, "individual-ids": [patient], "draft": True},
        **{"individual-id": colleague},
    )
    assert theirs["attributes"]["created-by"] == colleague
    await fan_out(app)

    async def listed(**params: str) -> list[str]:
        response = await client.get(BULK, headers=org.staff, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    # Newest first; posted ones only when asked.
    assert await listed() == [theirs["id"], mine_draft["id"]]
    assert await listed(**{"include-posted": "true"}) == [
        theirs["id"],
        mine_sent["id"],
        mine_draft["id"],
    ]
    assert await listed(**{"filter[created-by]": sender, "include-posted": "1"}) == [
        mine_sent["id"],
        mine_draft["id"],
    ]
    assert await listed(**{"filter[created-by]": colleague}) == [theirs["id"]]
    bad = await client.get(BULK, headers=org.staff, params={"include-posted": "maybe"})
    assert bad.status_code == 400
    bad = await client.get(BULK, headers=org.staff, params={"filter[created-by]": "nope"})
    assert bad.status_code == 400


# --- bulk attachments ----------------------------------------------------------------------------


async def upload_bulk_attachment(
    client: httpx.AsyncClient, org: Org, bulk_id: str, data: bytes, filename: str
) -> httpx.Response:
    started = await client.post(
        BULK_ATTACHMENTS,
        headers=org.staff,
        json=doc("messaging-bulk-attachments", {"bulk-message-id": bulk_id, "filename": filename}),
    )
    assert started.status_code == 201, started.text
    upload = started.json()["data"]
    stored = await client.post(
        upload["upload-url"], data=upload["upload-data"], files={"file": (filename, data)}
    )
    assert stored.status_code == 204, stored.text
    return await client.post(
        f"{BULK_ATTACHMENTS}{upload['id']}/process-upload/", headers=org.staff, json={}
    )


async def test_bulk_attachments_referenced_by_every_posted_message(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    import courier.domains.purges.jobs  # noqa: F401  (registers the purge job)
    from courier.domains.messaging_attachments.uploads import messaging_uploads
    from courier.domains.purges.service import PURGE_JOB

    sender = await provider(client, org)
    people = [await make_individual_id(client, org) for _ in range(3)]
    bulk = await created_bulk(
        client,
        org,
        {
            "sender-individual-id": sender,
            "individual-ids": people,
            "message": "Your new care plan is attached",
            "auto-create-channel": True,
            "draft": True,
        },
    )
    image = png_bytes((400, 300))
    processed = await upload_bulk_attachment(client, org, bulk["id"], image, "plan.png")
    assert processed.status_code == 201, processed.text
    attachment = processed.json()["data"]
    assert attachment["type"] == "messaging-bulk-attachments"
    assert attachment["attributes"]["content-type"] == "image/png"
    assert attachment["attributes"]["content-size"] == len(image)
    assert attachment["attributes"]["bulk-message-id"] == bulk["id"]
    assert attachment["attributes"]["thumbnail"] is not None
    listing = await client.get(
        BULK_ATTACHMENTS, headers=org.staff, params={"bulk-message-id": bulk["id"]}
    )
    assert [item["id"] for item in listing.json()["data"]] == [attachment["id"]]
    missing = await client.get(BULK_ATTACHMENTS, headers=org.staff)
    assert missing.status_code == 400

    # A pending upload holds the sending back; once it is gone, sending goes ahead.
    pending = await client.post(
        BULK_ATTACHMENTS,
        headers=org.staff,
        json=doc(
            "messaging-bulk-attachments", {"bulk-message-id": bulk["id"], "filename": "x.pdf"}
        ),
    )
    assert pending.status_code == 201
    blocked = await patch_bulk(client, org, bulk["id"], {"draft": False})
    assert blocked.status_code == 409
    assert blocked.json()["errors"][0]["code"] == "attachment-pending"
    async with app.state.database.sessionmaker() as session:
        row = (
            await session.execute(
                unscoped(
                    select(MessagingBulkAttachment).where(
                        MessagingBulkAttachment.id == uuid.UUID(pending.json()["data"]["id"])
                    ),
                    REASON,
                )
            )
        ).scalar_one()
        # Starting the upload scheduled the cleanup of its window (and grace).
        grace = cleanup_grace(settings)
        window = cleanup_window(row.upload_expires_at + grace)
        job = (
            await session.execute(
                scoped(
                    select(Job).where(Job.dedupe_key == f"{bulk_uploads.cleanup_job}:{window}"),
                    Job,
                    uuid.UUID(org.id),
                )
            )
        ).scalar_one()
        assert job.run_at >= row.upload_expires_at + grace
        job.run_at = job.created_at  # due now: its window is treated as closed
        row.upload_expires_at = job.created_at - grace - timedelta(seconds=1)
        await session.commit()
    await run_until_idle(app.state.database, settings, kinds=[bulk_uploads.cleanup_job])
    gone = await client.get(f"{BULK_ATTACHMENTS}{pending.json()['data']['id']}/", headers=org.staff)
    assert gone.status_code == 404

    sent = await patch_bulk(client, org, bulk["id"], {"draft": False})
    assert sent.status_code == 200, sent.text
    late = await client.post(
        BULK_ATTACHMENTS,
        headers=org.staff,
        json=doc("messaging-bulk-attachments", {"bulk-message-id": bulk["id"], "filename": "l"}),
    )
    assert late.status_code == 409
    await fan_out(app)
    assert (await bulk_view(client, org, bulk["id"]))["posted-count"] == 3

    rows = await recipient_rows(app, bulk["id"])
    storage = storage_for(settings)
    shared = bulk_uploads.keys.file(uuid.UUID(org.id), uuid.UUID(attachment["id"]))
    links: dict[str, str] = {}
    for person in people:
        message = await client.get(f"{MESSAGES}{rows[person].message_id}/", headers=org.staff)
        assert message.status_code == 200, message.text
        attached = message.json()["data"]["attributes"]["attachments"]
        assert len(attached) == 1
        assert attached[0]["content-type"] == "image/png"
        assert attached[0]["filename"] == "plan.png"
        links[person] = attached[0]["url"]
        download = await client.get(attached[0]["url"])
        assert download.status_code == 200
        assert download.content == image
    async with app.state.database.sessionmaker() as session:
        copies = (
            (
                await session.execute(
                    unscoped(
                        select(MessagingAttachment).where(
                            MessagingAttachment.message_id.in_(
                                [r.message_id for r in rows.values()]
                            )
                        ),
                        REASON,
                    )
                )
            )
            .scalars()
            .all()
        )
    assert {copy.storage_key for copy in copies} == {shared}  # referenced, never copied
    assert len({copy.id for copy in copies}) == 3

    # Purging one recipient deletes nothing the others receive.
    purge = await client.post(
        "/v1/purge-data/",
        headers=org.admin,
        json=doc("system-purges", {"entity-type": "individual", "entity-id": people[0]}),
    )
    assert purge.status_code == 201, purge.text
    await run_until_idle(
        app.state.database, settings, kinds=[PURGE_JOB, messaging_uploads.delete_files_job]
    )
    receipt = await client.get(f"/v1/purge-data/{purge.json()['data']['id']}/", headers=org.admin)
    assert receipt.json()["data"]["attributes"]["state"] == "completed"
    assert await storage.head(shared) is not None
    for person in people[1:]:
        message = await client.get(f"{MESSAGES}{rows[person].message_id}/", headers=org.staff)
        url = message.json()["data"]["attributes"]["attachments"][0]["url"]
        assert (await client.get(url)).content == image
    view = await bulk_view(client, org, bulk["id"])
    assert people[0] not in view["individual-ids"]
    assert people[0] not in await recipient_rows(app, bulk["id"])


# --- exactly once, with a real worker killed half-way -------------------------------------------


@pytest.fixture
def workers(database_url: str, data_dir: Path, tmp_path: Path) -> Iterator[WorkerProcesses]:
    started = WorkerProcesses(database_url, data_dir, tmp_path)
    yield started
    started.cleanup()


async def seed_people(
    database: Database, org: Org, count: int, locales: list[str | None]
) -> list[uuid.UUID]:
    """``count`` participants written straight to the database (fast), with rotating locales."""
    organization = uuid.UUID(org.id)
    ids = [uuid.uuid4() for _ in range(count)]
    rows = [
        {
            "id": ident,
            "organization_id": organization,
            "first_name": "Pat",
            "last_name": f"Bulk {n}",
            "account_type": "participant",
            "locale": locales[n % len(locales)],
            "extended": {},
        }
        for n, ident in enumerate(ids)
    ]
    async with database.engine.begin() as connection:
        for start in range(0, len(rows), 500):
            await connection.execute(insert(Individual.__table__), rows[start : start + 500])
    return ids


async def seed_group(database: Database, org: Org, members: list[uuid.UUID]) -> uuid.UUID:
    organization = uuid.UUID(org.id)
    group = uuid.uuid4()
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(IndividualGroup.__table__),
            [{"id": group, "organization_id": organization, "name": "Cohort"}],
        )
        await connection.execute(
            insert(IndividualGroupMember.__table__),
            [
                {"organization_id": organization, "group_id": group, "individual_id": ident}
                for ident in members
            ],
        )
    return group


async def seed_direct_channels(
    database: Database, org: Org, sender: uuid.UUID, people: list[uuid.UUID]
) -> None:
    organization = uuid.UUID(org.id)
    channels = {person: uuid.uuid4() for person in people}
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(MessagingChannel.__table__),
            [
                {
                    "id": channel,
                    "organization_id": organization,
                    "event_settings": {"enabled": True},
                    "sms_initial_message_js": {},
                    "last_seq": 0,
                    "subscriber_count": 2,
                }
                for channel in channels.values()
            ],
        )
        await connection.execute(
            insert(MessagingSubscriber.__table__),
            [
                {
                    "organization_id": organization,
                    "channel_id": channel,
                    "individual_id": ident,
                    "preferences": {},
                }
                for person, channel in channels.items()
                for ident in (sender, person)
            ],
        )


async def until(condition: Any, what: str, deadline: float = 240.0) -> None:
    give_up = time.monotonic() + deadline
    while not await condition():
        assert time.monotonic() < give_up, f"gave up waiting: {what}"
        await asyncio.sleep(0.05)


async def test_two_thousand_recipients_exactly_once_though_the_worker_is_killed(
    client: httpx.AsyncClient,
    org: Org,
    app: Any,
    workers: WorkerProcesses,
    database_url: str,
    data_dir: Path,
) -> None:
    database: Database = app.state.database
    sender = uuid.UUID(await provider(client, org))
    locales = ["es-US", "en-US", None, "es", "fr-FR"]
    people = await seed_people(database, org, 2000, locales)
    in_group, listed = people[:1200], people[800:]  # 400 in both: each must get one message
    group = await seed_group(database, org, [*in_group, sender])
    with_channels = people[::2]  # the others' channels are created on the way
    await seed_direct_channels(database, org, sender, with_channels)

    response = await create_bulk(
        client,
        org,
        {
            "sender-individual-id": str(sender),
            "individual-ids": [str(i) for i in listed],
            "individual-group-ids": [str(group)],
            "message": "The clinic moves to 5 Elm St on Monday.",
            "message-js": {"es_US": "La clínica se muda a 5 Elm St el lunes."},
            "auto-create-channel": True,
        },
    )
    assert response.status_code == 201, response.text
    bulk_id = response.json()["data"]["id"]

    async def progress() -> tuple[int, int]:
        view = await bulk_view(client, org, bulk_id)
        return view["posted-count"], view["recipient-count"]

    settings = {"bulk_message_chunk_size": "25", "job_lease_seconds": "2"}
    # Watched through an engine of its own, with SQLite's plain (deferred) transactions: the
    # app's sessions begin IMMEDIATE, and their wait for the write lock could outlast the
    # worker's whole run (it takes the lock back between chunks faster than a waiting
    # connection's busy handler retries): the worker once finished before it was killed.
    watcher = create_async_engine(database_url)
    posted_so_far = unscoped(
        select(func.count()).where(MessagingMessage.bulk_message_id == uuid.UUID(bulk_id)),
        REASON,
    )
    first = workers.start(**settings)

    async def some_posted() -> bool:
        assert first.poll() is None, "worker died:\n" + workers.log_of(first)
        async with watcher.connect() as connection:
            return int((await connection.execute(posted_so_far)).scalar_one()) >= 100

    try:
        await until(some_posted, "the first chunks to be posted")
    finally:
        await watcher.dispose()
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    posted_at_kill, total = await progress()
    assert total == 2000
    assert posted_at_kill < total, "the worker finished before it could be killed"

    second = workers.start(**settings)

    async def finished() -> bool:
        assert second.poll() is None, "worker died:\n" + workers.log_of(second)
        return (await bulk_view(client, org, bulk_id))["status"] == "posted"

    await until(finished, "the bulk message to be posted")

    async def analysed() -> bool:
        # The posted messages' analysis runs too, in the same worker: what the tests after
        # this one find in the shared database is not 2,000 jobs left over.
        assert second.poll() is None, "worker died:\n" + workers.log_of(second)
        async with database.sessionmaker() as session:
            waiting = select(func.count()).where(
                MessagingMessage.bulk_message_id == uuid.UUID(bulk_id),
                MessagingMessage.analyzed.is_(False),
            )
            return (await session.scalar(unscoped(waiting, REASON))) == 0

    await until(analysed, "the posted messages to be analysed")
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=60)

    view = await bulk_view(client, org, bulk_id)
    assert (view["recipient-count"], view["posted-count"], view["skipped-count"]) == (2000, 2000, 0)
    async with database.sessionmaker() as session:
        posted = (
            await session.execute(
                unscoped(
                    select(MessagingMessage.channel_id, MessagingMessage.message).where(
                        MessagingMessage.bulk_message_id == uuid.UUID(bulk_id)
                    ),
                    REASON,
                )
            )
        ).all()
        per_channel = Counter(channel for channel, _text in posted)
        subscribers = (
            await session.execute(
                unscoped(
                    select(MessagingSubscriber.channel_id, MessagingSubscriber.individual_id).where(
                        MessagingSubscriber.channel_id.in_(list(per_channel))
                    ),
                    REASON,
                )
            )
        ).all()
        sizes = (
            await session.execute(
                unscoped(
                    select(MessagingSubscriber.channel_id, func.count())
                    .where(MessagingSubscriber.individual_id.in_(people))
                    .group_by(MessagingSubscriber.channel_id),
                    REASON,
                )
            )
        ).all()
        chunk_jobs = (
            (
                await session.execute(
                    unscoped(
                        select(Job.attempts).where(Job.dedupe_key.like(f"{CHUNK_JOB}:{bulk_id}:%")),
                        REASON,
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(posted) == 2000
    assert set(per_channel.values()) == {1}  # exactly one message in each channel
    reached = Counter(person for _channel, person in subscribers if person != sender)
    assert set(reached) == set(people) and set(reached.values()) == {1}
    assert all(count == 1 for _channel, count in sizes)  # one direct channel per person
    texts = Counter(text for _channel, text in posted)
    # es-US and es get Spanish (2 of every 5), the others the plain message.
    assert texts == {
        "La clínica se muda a 5 Elm St el lunes.": 800,
        "The clinic moves to 5 Elm St on Monday.": 1200,
    }
    assert len(chunk_jobs) == 80
