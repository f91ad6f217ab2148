"""Purging an individual: everything of theirs goes (or is anonymised), the receipt counts it
right, the archive holds what was removed, a crash resumes, and re-running is harmless."""

from __future__ import annotations

import gzip
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import String, cast, select

import courier.domains.purges.jobs  # noqa: F401 (registers the handler)
from courier.core.tenancy import unscoped
from courier.domains.purges.service import PURGE_JOB
from courier.jobs import PermanentJobError, run_until_idle
from courier.models.aggregation_request import AggregationRequest
from courier.models.audit_event import AuditEvent
from courier.models.event import Event
from courier.models.idempotency_key import IdempotencyKey
from courier.models.individual import Individual
from courier.models.individual_group import IndividualGroupLeader, IndividualGroupMember
from courier.models.messaging import (
    BadgeCount,
    MessagingBookmark,
    MessagingChannel,
    MessagingMessage,
    MessagingReaction,
    MessagingSubscriber,
)
from courier.models.sniffer import Sniffer, SnifferLog
from courier.models.user import User
from courier.purge import purge_hook, unregister
from tests.conftest import Org, bearer, doc
from tests.factories import individual_token, make_individual_id

REASON = "tests inspect the rows a purge left"


@dataclass
class Scenario:
    patient: str
    provider: str
    user: str
    child: str
    group: str
    channel: uuid.UUID
    posted: uuid.UUID  # the patient's posted message
    draft: uuid.UUID
    provider_message: uuid.UUID
    sniffer: str
    aggregation: str


def now() -> datetime:
    return datetime.now(UTC)


async def created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def build(client: httpx.AsyncClient, app: Any, org: Org) -> Scenario:
    """A patient with a login, a managed child record, a care team, a conversation with a
    provider, a sniffer on their login, an aggregation and a stored idempotent response."""
    patient = await created(
        await client.post(
            "/v1/individuals/",
            headers={**org.admin, "Idempotency-Key": uuid.uuid4().hex},
            json=doc("individuals", {"first-name": "Pat", "last-name": "Purged"}),
        )
    )
    provider = await make_individual_id(client, org, **{"account-type": "provider"})
    suffix = uuid.uuid4().hex[:8]
    user = await created(
        await client.post(
            "/v1/users/",
            headers=org.admin,
            json=doc(
                "users",
                {
                    "username": f"pat{suffix}",
                    "email": f"pat{suffix}@example.org",
                    "primary-individual-id": patient,
                },
            ),
        )
    )
    child = await make_individual_id(client, org, **{"owner-id": user})
    group = await created(
        await client.post(
            "/v1/individual-groups/",
            headers=org.admin,
            json=doc(
                "individual-groups",
                {
                    "name": "Care team",
                    "individual-ids": [patient, provider],
                    "leader-ids": [patient],
                },
            ),
        )
    )
    sniffer = await created(
        await client.post(
            "/v1/sniffers/",
            headers=org.admin,
            json=doc(
                "sniffers",
                {"user-id": user, "valid-until": (now() + timedelta(hours=1)).isoformat()},
            ),
        )
    )
    token = bearer(await individual_token(client, org, patient))
    assert (await client.get(f"/v1/individuals/{patient}/", headers=token)).status_code == 200
    aggregation = await created(
        await client.post(
            "/v1/aggregation-requests/",
            headers=org.staff,
            json=doc(
                "aggregation-requests",
                {
                    "entries": [
                        {"column": "message-count", "individual-id": patient},
                        {"column": "message-count", "individual-id": provider},
                    ]
                },
            ),
        )
    )

    org_id = uuid.UUID(org.id)
    patient_id, provider_id = uuid.UUID(patient), uuid.UUID(provider)
    channel = MessagingChannel(
        id=uuid.uuid4(),
        organization_id=org_id,
        name="Questions",
        owner_id=patient_id,
        created_by=uuid.UUID(user),
        last_seq=3,
        subscriber_count=2,
    )
    provider_first = MessagingMessage(
        id=uuid.uuid4(),
        organization_id=org_id,
        channel_id=channel.id,
        seq=1,
        individual_id=provider_id,
        message="How are you feeling?",
        posted_time=now(),
    )
    posted = MessagingMessage(
        id=uuid.uuid4(),
        organization_id=org_id,
        channel_id=channel.id,
        seq=2,
        individual_id=patient_id,
        user_id=uuid.UUID(user),
        message="My rash is worse",
        phrases={"rash": 1},
        sentiment="negative",
        posted_time=now(),
    )
    draft = MessagingMessage(
        id=uuid.uuid4(),
        organization_id=org_id,
        channel_id=channel.id,
        seq=None,
        draft=True,
        individual_id=patient_id,
        message="unsent",
    )
    provider_reply = MessagingMessage(
        id=uuid.uuid4(),
        organization_id=org_id,
        channel_id=channel.id,
        seq=3,
        individual_id=provider_id,
        message="Come in tomorrow",
        posted_time=now(),
    )
    rows: list[Any] = [
        channel,
        provider_first,
        posted,
        draft,
        provider_reply,
        MessagingSubscriber(
            organization_id=org_id, channel_id=channel.id, individual_id=patient_id, ack_seq=2
        ),
        MessagingSubscriber(
            organization_id=org_id, channel_id=channel.id, individual_id=provider_id, ack_seq=3
        ),
        MessagingReaction(
            organization_id=org_id,
            message_id=provider_first.id,
            individual_id=patient_id,
            reaction_type="like",
        ),
        MessagingReaction(
            organization_id=org_id,
            message_id=posted.id,
            individual_id=provider_id,
            reaction_type="sad",
        ),
        MessagingBookmark(
            organization_id=org_id,
            channel_id=channel.id,
            message_id=provider_reply.id,
            individual_id=patient_id,
        ),
        MessagingBookmark(
            organization_id=org_id,
            channel_id=channel.id,
            message_id=posted.id,
            individual_id=provider_id,
        ),
        BadgeCount(organization_id=org_id, individual_id=patient_id, type="appointment", count=2),
        BadgeCount(organization_id=org_id, individual_id=provider_id, type="appointment", count=1),
    ]
    async with app.state.database.sessionmaker() as session:
        for row in rows:
            session.add(row)
            await session.flush()  # in dependency order: the channel, then its messages ...
        await session.commit()
    return Scenario(
        patient,
        provider,
        user,
        child,
        group,
        channel.id,
        posted.id,
        draft.id,
        provider_reply.id,
        sniffer,
        aggregation,
    )


async def purge(
    client: httpx.AsyncClient,
    app: Any,
    org: Org,
    entity_id: str,
    *,
    archive: bool = False,
    settings: Any = None,
) -> dict[str, Any]:
    response = await client.post(
        "/v1/purge-data/",
        headers=org.admin,
        json=doc(
            "system-purges",
            {
                "entity-type": "individual",
                "entity-id": entity_id,
                "archive": archive,
                "reference-id": "ticket-42",
                "request-id": "gdpr-7",
            },
        ),
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    assert data["type"] == "system-purges"
    assert data["attributes"]["state"] == "queued"
    await run_until_idle(
        app.state.database,
        settings or app.state.settings,
        kinds=[PURGE_JOB],
        horizon=5.0,
    )
    shown = await client.get(f"/v1/purge-data/{data['id']}/", headers=org.admin)
    assert shown.status_code == 200, shown.text
    receipt: dict[str, Any] = shown.json()["data"]
    return receipt


async def mentions(app: Any, model: Any, column: Any, ident: str) -> int:
    stmt = select(model).where(cast(column, String).like(f"%{ident}%"))
    async with app.state.database.sessionmaker() as session:
        return len((await session.execute(unscoped(stmt, REASON))).scalars().all())


async def load(app: Any, model: Any, *conditions: Any) -> list[Any]:
    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(select(model).where(*conditions), REASON)
        return list((await session.execute(stmt)).scalars().all())


EXPECTED = {
    "messaging_subscribers": 1,
    "messaging_reactions": 1,
    "messaging_bookmarks": 1,
    "badge_counts": 1,
    "messaging_messages": 1,
    "messaging_messages.redacted": 1,
    "messaging_messages.unlinked": 0,
    "messaging_channels.unlinked": 1,
    "individual_group_leaders": 1,
    "individual_group_members": 1,
    "users": 1,
    "individuals": 1,
    "individuals.owner-unlinked": 1,
    "sniffers": 1,
    "sniffer_logs": 1,
    "aggregation_requests": 0,
    "aggregation_requests.redacted": 1,
    "idempotency_keys": 1,
}


async def test_purge_removes_an_individual_everywhere(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    s = await build(client, app, org)
    patient = uuid.UUID(s.patient)
    events_before = await mentions(app, Event, Event.individual_ids, s.patient) + len(
        await load(app, Event, Event.resource_id == patient)
    )
    assert events_before > 0

    receipt = await purge(client, app, org, s.patient)
    attributes = receipt["attributes"]
    assert attributes["state"] == "completed", attributes
    assert attributes["entity-type"] == "individual"
    assert attributes["entity-id"] == s.patient
    assert attributes["reference-id"] == "ticket-42"
    assert attributes["request-id"] == "gdpr-7"
    assert attributes["archive-location"] is None
    assert attributes["steps-done"] == attributes["steps"]
    assert attributes["steps"][-1] == "people"
    assert {"messaging", "events", "people", "sniffers"} <= set(attributes["steps"])
    assert attributes["completed-time"] is not None
    counts = attributes["counts"]
    assert {k: counts[k] for k in EXPECTED} == EXPECTED
    assert counts["events"] + counts["events.unlinked"] >= 1

    # Nothing of theirs is left.
    assert (await client.get(f"/v1/individuals/{s.patient}/", headers=org.admin)).status_code == 404
    assert (await client.get(f"/v1/users/{s.user}/", headers=org.admin)).status_code == 404
    assert await load(app, Individual, Individual.id == patient) == []
    assert await load(app, User, User.primary_individual_id == patient) == []
    owned: tuple[Any, ...] = (
        MessagingSubscriber,
        MessagingReaction,
        MessagingBookmark,
        BadgeCount,
        IndividualGroupMember,
        IndividualGroupLeader,
    )
    for model in owned:
        assert await load(app, model, model.individual_id == patient) == []
    assert await load(app, MessagingMessage, MessagingMessage.individual_id == patient) == []
    assert await load(app, SnifferLog, SnifferLog.individual_id == patient) == []
    assert await load(app, Sniffer, Sniffer.id == uuid.UUID(s.sniffer)) == []
    assert await mentions(app, Event, Event.individual_ids, s.patient) == 0
    assert await load(app, Event, Event.resource_id == patient) == []
    assert await mentions(app, AggregationRequest, AggregationRequest.entries, s.patient) == 0
    stored = await load(app, IdempotencyKey, IdempotencyKey.response_body.is_not(None))
    assert all(s.patient.encode() not in (row.response_body or b"") for row in stored)

    # The conversation stays coherent for the others.
    (tombstone,) = await load(app, MessagingMessage, MessagingMessage.id == s.posted)
    assert tombstone.message == ""
    assert tombstone.removed is True
    assert tombstone.individual_id is None and tombstone.user_id is None
    assert tombstone.phrases == {} and tombstone.sentiment is None
    assert tombstone.seq == 2
    assert await load(app, MessagingMessage, MessagingMessage.id == s.draft) == []
    (reply,) = await load(app, MessagingMessage, MessagingMessage.id == s.provider_message)
    assert reply.message == "Come in tomorrow"
    provider = uuid.UUID(s.provider)
    assert len(await load(app, MessagingReaction, MessagingReaction.individual_id == provider)) == 1
    assert len(await load(app, MessagingBookmark, MessagingBookmark.individual_id == provider)) == 1
    assert (
        len(await load(app, MessagingSubscriber, MessagingSubscriber.individual_id == provider))
        == 1
    )
    (channel,) = await load(app, MessagingChannel, MessagingChannel.id == s.channel)
    assert channel.owner_id is None and channel.created_by is None
    (child,) = await load(app, Individual, Individual.id == uuid.UUID(s.child))
    assert child.owner_id is None
    group = await client.get(f"/v1/individual-groups/{s.group}/", headers=org.admin)
    assert group.status_code == 200
    members = await load(
        app, IndividualGroupMember, IndividualGroupMember.group_id == uuid.UUID(s.group)
    )
    assert [m.individual_id for m in members] == [provider]
    aggregation = await client.get(f"/v1/aggregation-requests/{s.aggregation}/", headers=org.admin)
    assert [e["individual-id"] for e in aggregation.json()["data"]["attributes"]["entries"]] == [
        s.provider
    ]

    # The audit log: who asked, for what, and the counts; no patient data.
    audit = await load(app, AuditEvent, AuditEvent.resource_id == uuid.UUID(receipt["id"]))
    assert sorted(a.action for a in audit) == ["completed", "requested"]
    for row in audit:
        assert row.actor_id == org.admin_key_id
        assert row.resource_type == "system-purges"
        assert row.changed_fields["entity-id"] == s.patient
        assert "Purged" not in orjson.dumps(row.changed_fields).decode()
    completed = next(a for a in audit if a.action == "completed")
    assert completed.changed_fields["counts"] == counts

    # Re-running is harmless: nothing left to remove.
    again = await purge(client, app, org, s.patient)
    assert again["attributes"]["state"] == "completed"
    assert set(again["attributes"]["counts"].values()) == {0}
    assert (
        await client.get(f"/v1/individual-groups/{s.group}/", headers=org.admin)
    ).status_code == 200


async def test_purge_with_archive_writes_the_removed_rows(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    s = await build(client, app, org)
    receipt = await purge(client, app, org, s.patient, archive=True)
    attributes = receipt["attributes"]
    assert attributes["state"] == "completed", attributes
    counts = attributes["counts"]
    assert {k: counts[k] for k in EXPECTED} == EXPECTED
    location = Path(attributes["archive-location"])
    assert location.name == f"{receipt['id']}.jsonl.gz"
    assert location.parent == Path(app.state.settings.data_dir) / "archives"
    assert not (location.parent / f"{receipt['id']}.parts").exists()
    with gzip.open(location, "rb") as archive:
        lines = [orjson.loads(line) for line in archive]
    tables = Counter(line["table"] for line in lines)
    # Every deleted row is in the archive, as it was.
    for table in (
        "messaging_subscribers",
        "messaging_reactions",
        "messaging_bookmarks",
        "badge_counts",
        "individual_group_leaders",
        "individual_group_members",
        "users",
        "sniffers",
        "sniffer_logs",
    ):
        assert tables[table] == counts[table], table
    (person,) = [
        line["row"]
        for line in lines
        if line["table"] == "individuals" and line["row"]["id"] == s.patient
    ]
    assert person["last_name"] == "Purged"
    messages = {
        line["row"]["id"]: line["row"] for line in lines if line["table"] == "messaging_messages"
    }
    assert messages[str(s.posted)]["message"] == "My rash is worse"
    assert messages[str(s.draft)]["message"] == "unsent"
    assert {line["hook"] for line in lines} >= {"messaging", "people", "events"}
    users = [line["row"] for line in lines if line["table"] == "users"]
    assert users[0]["id"] == s.user


async def test_a_crashed_purge_resumes_without_redoing_or_missing(
    client: httpx.AsyncClient, app: Any, org: Org
) -> None:
    s = await build(client, app, org)
    calls: Counter[str] = Counter()

    @purge_hook("individual", name="test-early", order=10)
    async def early(
        session: Any, organization_id: Any, individual_id: Any, archive: Any
    ) -> dict[str, int]:
        if str(individual_id) != s.patient:
            return {}
        calls["early"] += 1
        return {"test_early": 1}

    @purge_hook("individual", name="test-crash", order=500)
    async def crash(
        session: Any, organization_id: Any, individual_id: Any, archive: Any
    ) -> dict[str, int]:
        if str(individual_id) != s.patient:
            return {}
        calls["crash"] += 1
        if calls["crash"] == 1:
            raise RuntimeError("the worker died mid-purge")
        return {"test_crash": 1}

    quick = app.state.settings.model_copy(update={"job_backoff_base_seconds": 0.01})
    try:
        receipt = await purge(client, app, org, s.patient, archive=True, settings=quick)
    finally:
        unregister("individual", "test-early")
        unregister("individual", "test-crash")
    attributes = receipt["attributes"]
    assert attributes["state"] == "completed", attributes
    assert calls == {"early": 1, "crash": 2}
    counts = attributes["counts"]
    # The first attempt's work (messaging, events ... before the crash) is counted once.
    assert {k: counts[k] for k in EXPECTED} == EXPECTED
    assert counts["test_early"] == 1 and counts["test_crash"] == 1
    steps = attributes["steps"]
    assert steps.index("test-early") < steps.index("messaging") < steps.index("test-crash")
    assert steps.index("test-crash") < steps.index("people")
    with gzip.open(attributes["archive-location"], "rb") as archive:
        lines = [orjson.loads(line) for line in archive]
    tables = Counter(line["table"] for line in lines)
    assert tables["messaging_subscribers"] == 1 and tables["users"] == 1


async def test_a_failed_purge_says_so(client: httpx.AsyncClient, app: Any, org: Org) -> None:
    patient = await make_individual_id(client, org)

    @purge_hook("individual", name="test-broken", order=5)
    async def broken(
        session: Any, organization_id: Any, individual_id: Any, archive: Any
    ) -> dict[str, int]:
        if str(individual_id) == patient:
            raise PermanentJobError("the archive store refused the write")
        return {}

    try:
        receipt = await purge(client, app, org, patient)
    finally:
        unregister("individual", "test-broken")
    attributes = receipt["attributes"]
    assert attributes["state"] == "failed"
    assert "archive store refused" in attributes["error"]
    assert attributes["steps-done"] == []
    # Nothing was removed: the individual is still there.
    assert (await client.get(f"/v1/individuals/{patient}/", headers=org.admin)).status_code == 200


async def test_an_unknown_individual_completes_with_nothing_removed(
    client: httpx.AsyncClient, app: Any, org: Org, other_org: Org
) -> None:
    foreign = await make_individual_id(client, other_org)
    receipt = await purge(client, app, org, foreign)
    assert receipt["attributes"]["state"] == "completed"
    assert set(receipt["attributes"]["counts"].values()) == {0}
    # Another organization's individual is untouched.
    assert (
        await client.get(f"/v1/individuals/{foreign}/", headers=other_org.admin)
    ).status_code == 200


async def test_purge_validation_and_access(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    patient = await make_individual_id(client, org)
    token = bearer(await individual_token(client, org, patient))

    async def post(
        attributes: dict[str, Any], headers: dict[str, str], type_name: str = "system-purges"
    ) -> httpx.Response:
        return await client.post(
            "/v1/purge-data/", headers=headers, json=doc(type_name, attributes)
        )

    good = {"entity-type": "individual", "entity-id": patient}
    not_uuid = await post({**good, "entity-id": "nope"}, org.admin)
    assert not_uuid.status_code == 400
    assert not_uuid.json()["errors"][0]["source"] == {"pointer": "/data/attributes/entity-id"}
    assert (await post({**good, "entity-type": "user"}, org.admin)).status_code == 400
    assert (await post({**good, "archive": "yes"}, org.admin)).status_code == 400
    assert (await post({**good, "color": "red"}, org.admin)).status_code == 400
    assert (await post(good, org.admin, "sniffers")).status_code == 409
    assert (await post(good, org.staff)).status_code == 403
    assert (await post(good, token)).status_code == 403
    assert (await post(good, {})).status_code == 401
    accepted = await post(good, org.admin)
    assert accepted.status_code == 201
    ident = accepted.json()["data"]["id"]
    assert accepted.json()["data"]["attributes"]["requested-by"] == org.admin_key_id
    assert (
        await client.get(f"/v1/purge-data/{ident}/", headers=other_org.admin)
    ).status_code == 404
    assert (await client.get(f"/v1/purge-data/{ident}/", headers=org.staff)).status_code == 403
    assert (await client.get("/v1/purge-data/not-a-uuid/", headers=org.admin)).status_code == 404


@pytest.fixture(autouse=True)
def _no_leftover_test_hooks() -> Any:
    yield
    for name in ("test-early", "test-crash", "test-broken"):
        unregister("individual", name)
