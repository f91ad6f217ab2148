"""Communication summaries (unread counts for a badge) and their repair."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from courier.core.tenancy import unscoped
from courier.domains.inbox import counters
from courier.models.audit_event import AuditEvent
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from tests.conftest import Org
from tests.support import count_queries
from tests.test_inbox_support import (
    ack,
    channel,
    channel_row,
    error_source,
    group_channel,
    individual,
    post,
    subscriber_row,
    token,
)


@dataclass
class Scene:
    """A patient in a direct channel with one provider and a group channel with another
    provider and a second patient."""

    patient: str
    provider: str
    nurse: str
    neighbour: str
    direct: str
    group: str
    direct_messages: list[str]
    group_messages: list[str]


async def scene(client: httpx.AsyncClient, org: Org) -> Scene:
    patient = await individual(client, org, name="Pat")
    provider = await individual(client, org, "provider", name="Doc")
    nurse = await individual(client, org, "provider", name="Nurse")
    neighbour = await individual(client, org, name="Quinn")
    direct = await channel(client, org, [patient, provider])
    group = await channel(client, org, [patient, nurse, neighbour])
    first = await post(client, org, direct, provider, "how are you?")
    second = await post(client, org, direct, provider, "your results are in")
    await ack(client, org, first, patient)
    third = await post(client, org, direct, provider, "call me")
    group_messages = [
        await post(client, org, group, neighbour, "hello all"),
        await post(client, org, group, nurse, "welcome"),
        await post(client, org, group, neighbour, "thanks"),
    ]
    return Scene(
        patient,
        provider,
        nurse,
        neighbour,
        direct,
        group,
        [first, second, third],
        group_messages,
    )


async def summary(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> dict[str, Any]:
    response = await client.get("/v1/communication-summaries/", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def types(body: dict[str, Any]) -> dict[str, int]:
    return {t["message-type"]: t["count"] for t in body["summary"]["message-types"]}


async def test_summary_counts_unread_messages_exactly(client: httpx.AsyncClient, org: Org) -> None:
    s = await scene(client, org)
    body = await summary(client, org.staff, **{"individual-id": s.patient})
    assert body == {
        "summary": {
            "messages": 5,
            "notifications": 0,
            "provider-messages": 3,
            "video-channels": 0,
            "message-types": [
                {"message-type": "group-messages", "count": 3},
                {"message-type": "direct-messages", "count": 2},
            ],
        }
    }

    with_senders = await summary(
        client, org.readonly, **{"individual-id": s.patient, "include-senders": "true"}
    )
    senders = with_senders["summary"]["message-senders"]
    assert sorted((x["individual-id"], x["count"]) for x in senders) == sorted(
        [(s.provider, 2), (s.neighbour, 2), (s.nurse, 1)]
    )
    assert [x["count"] for x in senders] == [2, 2, 1]  # most unread first

    # Reading the group channel up to its newest message leaves the direct channel's two.
    await ack(client, org, s.group_messages[-1], s.patient)
    after = await summary(client, org.staff, **{"individual-id": s.patient, "include-senders": "1"})
    assert after["summary"]["messages"] == 2
    assert after["summary"]["provider-messages"] == 2
    assert types(after) == {"group-messages": 0, "direct-messages": 2}
    assert after["summary"]["message-senders"] == [{"individual-id": s.provider, "count": 2}]

    await ack(client, org, s.direct_messages[-1], s.patient)
    done = await summary(client, org.staff, **{"individual-id": s.patient, "include-senders": "0"})
    assert done["summary"]["messages"] == 0
    assert done["summary"]["provider-messages"] == 0
    assert "message-senders" not in done["summary"]


async def test_individual_token_reads_its_own_summary(client: httpx.AsyncClient, org: Org) -> None:
    s = await scene(client, org)
    headers = await token(client, org, s.patient)
    own = await summary(client, headers)
    assert own["summary"]["messages"] == 5
    assert (await summary(client, headers, **{"individual-id": s.patient})) == own
    other = await client.get(
        "/v1/communication-summaries/", params={"individual-id": s.nurse}, headers=headers
    )
    assert other.status_code == 403


async def test_channel_of_an_individual_group_is_a_group_channel(
    client: httpx.AsyncClient, org: Org
) -> None:
    patient = await individual(client, org)
    provider = await individual(client, org, "provider")
    grouped = await group_channel(client, org, [patient, provider])
    await post(client, org, grouped, provider, "team note")
    body = await summary(client, org.staff, **{"individual-id": patient})
    assert body["summary"]["messages"] == 1
    assert types(body) == {"group-messages": 1, "direct-messages": 0}


async def test_archived_channels_do_not_count(client: httpx.AsyncClient, org: Org) -> None:
    s = await scene(client, org)
    archived = await client.post(
        f"/v1/messaging-channels/{s.group}/archive/", json={}, headers=org.staff
    )
    assert archived.status_code == 201, archived.text
    body = await summary(client, org.staff, **{"individual-id": s.patient})
    assert body["summary"]["messages"] == 2
    assert types(body) == {"group-messages": 0, "direct-messages": 2}


async def test_summary_parameters(client: httpx.AsyncClient, org: Org, other_org: Org) -> None:
    patient = await individual(client, org)
    stranger = await individual(client, other_org)
    url = "/v1/communication-summaries/"
    missing = await client.get(url, headers=org.staff)
    assert missing.status_code == 400
    assert error_source(missing) == {"parameter": "individual-id"}
    for params, parameter in (
        ({"individual-id": "not-a-uuid"}, "individual-id"),
        ({"individual-id": patient, "include-senders": "maybe"}, "include-senders"),
        ({"individual-id": patient, "filter[type]": "x"}, "filter[type]"),
    ):
        response = await client.get(url, params=params, headers=org.staff)
        assert response.status_code == 400, params
        assert error_source(response) == {"parameter": parameter}
    elsewhere = await client.get(url, params={"individual-id": stranger}, headers=org.staff)
    assert elsewhere.status_code == 404
    nobody = await client.get(url, params={"individual-id": str(uuid.uuid4())}, headers=org.staff)
    assert nobody.status_code == 404
    empty = await summary(client, org.readonly, **{"individual-id": patient})
    assert empty["summary"]["messages"] == 0
    assert types(empty) == {"group-messages": 0, "direct-messages": 0}
    assert (await client.get(url, params={"individual-id": patient})).status_code == 401


async def test_other_domains_join_through_the_counter_registry(
    client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = await individual(client, org)
    seen: list[tuple[uuid.UUID, uuid.UUID]] = []

    async def notifications(session: Any, organization_id: uuid.UUID, ident: uuid.UUID) -> int:
        seen.append((organization_id, ident))
        return 4

    monkeypatch.setitem(counters._COUNTERS, "notifications", notifications)
    body = await summary(client, org.staff, **{"individual-id": patient})
    assert body["summary"]["notifications"] == 4
    assert body["summary"]["video-channels"] == 0
    assert seen == [(uuid.UUID(org.id), uuid.UUID(patient))]
    with pytest.raises(ValueError, match="not a summary counter"):
        counters.summary_counter("faxes")


def messaging_queries(app: Any) -> Any:
    return count_queries(app, only="messaging_")


async def test_summary_query_count_does_not_grow_with_channels(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    patient = await individual(client, org)
    provider = await individual(client, org, "provider")
    first = await channel(client, org, [patient, provider])
    await post(client, org, first, provider)
    params = {"individual-id": patient, "include-senders": "true"}
    with messaging_queries(app) as one_channel:
        assert (await summary(client, org.staff, **params))["summary"]["messages"] == 1
    for _ in range(12):
        more = await channel(client, org, [patient, provider])
        await post(client, org, more, provider)
    with messaging_queries(app) as many_channels:
        assert (await summary(client, org.staff, **params))["summary"]["messages"] == 13
    assert len(one_channel) == len(many_channels) == 2


# --- recalculate -----------------------------------------------------------------------------


async def corrupt(app: Any, s: Scene) -> None:
    """Break the counters the way a lost update or a bad import would."""
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            unscoped(
                update(MessagingChannel)
                .where(MessagingChannel.id == uuid.UUID(s.direct))
                .values(last_seq=10, last_message_id=None, last_message_at=None),
                "test corrupts a channel's counters",
            )
        )
        await session.execute(
            unscoped(
                update(MessagingSubscriber)
                .where(
                    MessagingSubscriber.channel_id == uuid.UUID(s.group),
                    MessagingSubscriber.individual_id == uuid.UUID(s.patient),
                )
                .values(ack_seq=50),
                "test corrupts a read horizon",
            )
        )
        await session.commit()


async def test_recalculate_repairs_corrupted_counters(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    s = await scene(client, org)
    before_direct = await channel_row(app, s.direct)
    before_group = await channel_row(app, s.group)
    await corrupt(app, s)
    broken = await summary(client, org.staff, **{"individual-id": s.patient})
    assert broken["summary"]["messages"] == 9  # 10 - 1 in the direct channel, none in the group

    url = f"/v1/individuals/{s.patient}/recalculate-communication-summary/"
    response = await client.post(url, json={}, headers=org.staff)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["data"]["type"] == "individuals"
    assert body["data"]["id"] == s.patient
    assert body["data"]["attributes"]["first-name"] == "Pat"
    assert body["meta"] == {
        "channels": 2,
        "repaired-channels": 1,
        "clamped-subscribers": 1,
        "recounted-subscribers": 0,
        "recounted-channels": 0,
    }

    direct = await channel_row(app, s.direct)
    assert direct.last_seq == 3 == before_direct.last_seq
    assert direct.last_message_id == uuid.UUID(s.direct_messages[-1])
    assert direct.last_message_at == before_direct.last_message_at
    assert (await channel_row(app, s.group)).last_seq == before_group.last_seq == 3
    horizon = await subscriber_row(app, s.group, s.patient)
    assert horizon.ack_seq == 3
    assert horizon.ack_message_id == uuid.UUID(s.group_messages[-1])
    assert (await subscriber_row(app, s.direct, s.patient)).ack_seq == 1

    repaired = await summary(client, org.staff, **{"individual-id": s.patient})
    assert repaired["summary"]["messages"] == 2
    assert types(repaired) == {"group-messages": 0, "direct-messages": 2}

    again = await client.post(url, headers=org.admin)
    assert again.status_code == 201, again.text
    assert again.json()["meta"] == {
        "channels": 2,
        "repaired-channels": 0,
        "clamped-subscribers": 0,
        "recounted-subscribers": 0,
        "recounted-channels": 0,
    }

    async with app.state.database.sessionmaker() as session:
        stmt = unscoped(
            select(AuditEvent.action).where(AuditEvent.resource_id == uuid.UUID(s.patient)),
            "test reads the audit log",
        )
        actions = (await session.execute(stmt)).scalars().all()
    assert actions.count("recalculated") == 2


async def test_recalculate_resets_a_channel_without_messages(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    patient = await individual(client, org)
    provider = await individual(client, org, "provider")
    quiet = await channel(client, org, [patient, provider])
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            unscoped(
                update(MessagingChannel)
                .where(MessagingChannel.id == uuid.UUID(quiet))
                .values(last_seq=4),
                "test corrupts a channel's counters",
            )
        )
        await session.commit()
    assert (await summary(client, org.staff, **{"individual-id": patient}))["summary"][
        "messages"
    ] == 4
    response = await client.post(
        f"/v1/individuals/{patient}/recalculate-communication-summary/", json={}, headers=org.staff
    )
    assert response.status_code == 201
    assert response.json()["meta"]["repaired-channels"] == 1
    row = await channel_row(app, quiet)
    assert (row.last_seq, row.last_message_id, row.last_message_at) == (0, None, None)
    assert (await summary(client, org.staff, **{"individual-id": patient}))["summary"][
        "messages"
    ] == 0


async def test_recalculate_roles_and_references(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    patient = await individual(client, org)
    url = f"/v1/individuals/{patient}/recalculate-communication-summary/"
    assert (await client.post(url, json={}, headers=org.readonly)).status_code == 403
    patient_token = await token(client, org, patient)
    assert (await client.post(url, json={}, headers=patient_token)).status_code == 403
    assert (await client.post(url, json={}, headers=other_org.admin)).status_code == 404
    assert (await client.post(url, json={})).status_code == 401
    unknown = f"/v1/individuals/{uuid.uuid4()}/recalculate-communication-summary/"
    assert (await client.post(unknown, json={}, headers=org.staff)).status_code == 404
    malformed = "/v1/individuals/nope/recalculate-communication-summary/"
    assert (await client.post(malformed, json={}, headers=org.staff)).status_code == 404
    extra = await client.post(url, json={"force": True}, headers=org.staff)
    assert extra.status_code == 400
    assert (await client.get(url, headers=org.staff)).status_code == 405
