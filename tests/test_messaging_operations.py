"""Messaging operations (move-group): validation, the job moving channels and their subscribers,
logs and status, events, re-runs, failures and crashes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update

import courier.domains.messaging_operations.jobs  # noqa: F401 (registers the handler)
from courier.core.tenancy import scoped
from courier.domains.messaging_operations import service
from courier.domains.messaging_operations.service import OPERATION_JOB
from courier.jobs import Job, JobState, run_until_idle
from courier.models.audit_event import AuditEvent
from courier.models.event import Event
from courier.models.individual_group import IndividualGroup
from courier.models.messaging import MessagingChannel, MessagingSubscriber
from tests.conftest import Org, doc
from tests.factories import make_individual_id

OPERATIONS = "/v1/messaging-operations/"


async def group(
    client: httpx.AsyncClient, org: Org, name: str, members: list[str], **kw: Any
) -> str:
    response = await client.post(
        "/v1/individual-groups/",
        headers=org.admin,
        json=doc("individual-groups", {"name": name, "individual-ids": members, **kw}),
    )
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def channel(client: httpx.AsyncClient, org: Org, **attributes: Any) -> str:
    response = await client.post(
        "/v1/messaging-channels/", headers=org.staff, json=doc("messaging-channels", attributes)
    )
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


async def start(
    client: httpx.AsyncClient, org: Org, args: dict[str, Any], status: int = 201
) -> httpx.Response:
    response = await client.post(
        OPERATIONS,
        headers=org.admin,
        json=doc("messaging-operations", {"type": "move-group", "args": args}),
    )
    assert response.status_code == status, response.text
    return response


async def run_jobs(app: Any, settings: Any = None) -> None:
    await run_until_idle(
        app.state.database, settings or app.state.settings, kinds=[OPERATION_JOB], horizon=5.0
    )


async def shown(client: httpx.AsyncClient, org: Org, ident: str) -> dict[str, Any]:
    response = await client.get(f"{OPERATIONS}{ident}/?include-args=true", headers=org.admin)
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


async def subscribers(app: Any, org: Org, channel_id: str) -> dict[str, MessagingSubscriber]:
    async with app.state.database.sessionmaker() as session:
        stmt = scoped(select(MessagingSubscriber), MessagingSubscriber, uuid.UUID(org.id)).where(
            MessagingSubscriber.channel_id == uuid.UUID(channel_id)
        )
        return {str(s.individual_id): s for s in (await session.execute(stmt)).scalars()}


async def channel_group(app: Any, org: Org, channel_id: str) -> str | None:
    async with app.state.database.sessionmaker() as session:
        stmt = scoped(
            select(MessagingChannel.individual_group_id), MessagingChannel, uuid.UUID(org.id)
        ).where(MessagingChannel.id == uuid.UUID(channel_id))
        value = (await session.execute(stmt)).scalar_one()
    return str(value) if value else None


async def events(app: Any, org: Org, event_type: str) -> list[Event]:
    async with app.state.database.sessionmaker() as session:
        stmt = scoped(select(Event), Event, uuid.UUID(org.id)).where(Event.type == event_type)
        return list((await session.execute(stmt.order_by(Event.seq))).scalars())


async def post_and_ack(
    client: httpx.AsyncClient, org: Org, channel_id: str, author: str, reader: str
) -> None:
    posted = await client.post(
        "/v1/messaging-messages/",
        headers=org.staff,
        json=doc(
            "messaging-messages",
            {"channel-id": channel_id, "individual-id": author, "message": "Your results are in"},
        ),
    )
    assert posted.status_code == 201, posted.text
    acked = await client.post(
        f"/v1/messaging-messages/{posted.json()['data']['id']}/ack/",
        headers=org.staff,
        json={"individual-id": reader},
    )
    assert acked.status_code == 201, acked.text


class Scene:
    """Source group A (a1, a2, both), target group B (b1 as leader, both); channels X and Y in
    A (X also with e1, added by hand), Z in another group."""

    def __init__(self, ids: dict[str, str]) -> None:
        self.ids = ids

    def __getattr__(self, name: str) -> str:
        return self.ids[name]


async def scene(client: httpx.AsyncClient, org: Org) -> Scene:
    ids: dict[str, str] = {}
    for name in ("a1", "a2", "both", "b1", "e1", "c1"):
        ids[name] = await make_individual_id(client, org, **{"first-name": name})
    ids["A"] = await group(client, org, "Cardiology", [ids["a1"], ids["a2"], ids["both"]])
    ids["B"] = await group(
        client, org, "Oncology", [ids["b1"], ids["both"]], **{"leader-ids": [ids["b1"]]}
    )
    ids["C"] = await group(client, org, "Other", [ids["c1"]])
    ids["X"] = await channel(
        client, org, **{"individual-group-id": ids["A"], "individual-ids": [ids["e1"]]}
    )
    ids["Y"] = await channel(client, org, **{"individual-group-id": ids["A"]})
    ids["Z"] = await channel(client, org, **{"individual-group-id": ids["C"]})
    return Scene(ids)


async def test_move_group_moves_every_channel_of_the_source_group(
    app: Any, client: httpx.AsyncClient, org: Org
) -> None:
    s = await scene(client, org)
    await post_and_ack(client, org, s.X, author=s.a1, reader=s.both)
    before = await subscribers(app, org, s.X)
    assert set(before) == {s.a1, s.a2, s.both, s.e1}
    assert before[s.both].ack_seq == 1

    args = {"from-individual-group-id": s.A, "to-individual-group-id": s.B}
    created = (await start(client, org, args)).json()["data"]
    ident = created["id"]
    assert created["type"] == "messaging-operations"
    attributes = created["attributes"]
    assert attributes["status"] == "queued"
    assert attributes["type"] == "move-group"
    assert attributes["args"] == args
    assert attributes["logs"] == {"steps": []}
    assert attributes["created-by"] == org.admin_key_id
    plain = await client.get(f"{OPERATIONS}{ident}/", headers=org.admin)
    assert plain.json()["data"]["attributes"]["args"] is None

    await run_jobs(app)

    done = await shown(client, org, ident)
    assert done["status"] == "completed", done
    assert done["args"] == args
    steps = done["logs"]["steps"]
    assert sorted(step["channel-id"] for step in steps) == sorted([s.X, s.Y])
    by_channel = {step["channel-id"]: step for step in steps}
    assert by_channel[s.X]["result"] == "moved"
    assert by_channel[s.X]["subscribed"] == 1  # b1
    assert by_channel[s.X]["unsubscribed"] == 2  # a1, a2
    assert all(step["at"].endswith("Z") for step in steps)
    assert done["last-modified-at"] >= attributes["last-modified-at"]

    for moved in (s.X, s.Y):
        assert await channel_group(app, org, moved) == s.B
    assert await channel_group(app, org, s.Z) == s.C
    after = await subscribers(app, org, s.X)
    # Members of A only leave; members of B join (its leader as admin); e1, added by hand,
    # and "both", in both groups, stay with their read horizons.
    assert set(after) == {s.both, s.b1, s.e1}
    assert after[s.both].ack_seq == 1
    assert after[s.both].ack_time == before[s.both].ack_time
    assert after[s.b1].ack_seq == 0 and after[s.b1].admin is True
    assert set(await subscribers(app, org, s.Y)) == {s.both, s.b1}
    assert set(await subscribers(app, org, s.Z)) == {s.c1}

    # The channel as B's member sees it now: the group's name, the history unread.
    seen = await client.get(
        f"/v1/messaging-channels/{s.X}/?individual-id={s.b1}", headers=org.staff
    )
    assert seen.status_code == 200, seen.text
    assert seen.json()["data"]["attributes"]["name"] == "Oncology"
    assert seen.json()["data"]["attributes"]["caller-new-message-count"] == 1

    updated = [
        e
        for e in await events(app, org, "messaging-channels.updated")
        if e.data.get("operation-id") == ident
    ]
    assert sorted(str(e.resource_id) for e in updated) == sorted([s.X, s.Y])
    x_event = next(e for e in updated if str(e.resource_id) == s.X)
    assert set(x_event.individual_ids) == {s.a1, s.a2, s.both, s.b1, s.e1}
    unsubscribed = [
        e
        for e in await events(app, org, "messaging-channels.unsubscribed")
        if e.data.get("operation-id") == ident and str(e.resource_id) == s.X
    ]
    assert [sorted(e.data["individual-ids"]) for e in unsubscribed] == [sorted([s.a1, s.a2])]
    subscribed = [
        e
        for e in await events(app, org, "messaging-channels.subscribed")
        if e.data.get("operation-id") == ident and str(e.resource_id) == s.X
    ]
    assert [e.data["individual-ids"] for e in subscribed] == [[s.b1]]
    statuses = [
        e.data["status"]
        for e in await events(app, org, "messaging-operations.updated")
        if str(e.resource_id) == ident
    ]
    assert statuses == ["running", "completed"]
    async with app.state.database.sessionmaker() as session:
        audit = scoped(select(AuditEvent), AuditEvent, uuid.UUID(org.id)).where(
            AuditEvent.resource_id == uuid.UUID(s.X), AuditEvent.actor_id == org.admin_key_id
        )
        rows = (await session.execute(audit)).scalars().all()
    assert any(
        row.changed_fields["fields"] == ["individual-group-id", "subscribers"] for row in rows
    )

    listing = await client.get(
        f"{OPERATIONS}?filter[type]=move-group&organization-id={org.id}", headers=org.admin
    )
    assert listing.status_code == 200, listing.text
    assert [item["id"] for item in listing.json()["data"]] == [ident]
    assert listing.json()["data"][0]["attributes"]["args"] is None
    with_args = await client.get(f"{OPERATIONS}?include-args=true", headers=org.admin)
    assert with_args.json()["data"][0]["attributes"]["args"] == args


async def test_listed_channels_only_and_a_rerun_is_harmless(
    app: Any, client: httpx.AsyncClient, org: Org
) -> None:
    s = await scene(client, org)
    args = {"from-individual-group-id": s.A, "to-individual-group-id": s.B, "channel-ids": [s.X]}
    first = (await start(client, org, args)).json()["data"]["id"]
    await run_jobs(app)
    assert (await shown(client, org, first))["status"] == "completed"
    assert await channel_group(app, org, s.X) == s.B
    assert await channel_group(app, org, s.Y) == s.A  # not listed: stays
    moved = await subscribers(app, org, s.X)

    # The same operation again: X is already in B, a logged no-op; nothing changes.
    second = (await start(client, org, args)).json()["data"]["id"]
    await run_jobs(app)
    again = await shown(client, org, second)
    assert again["status"] == "completed"
    assert [(step["channel-id"], step["result"]) for step in again["logs"]["steps"]] == [
        (s.X, "already-in-target")
    ]
    unchanged = await subscribers(app, org, s.X)
    assert {k: (v.ack_seq, v.admin) for k, v in unchanged.items()} == {
        k: (v.ack_seq, v.admin) for k, v in moved.items()
    }

    # Moving every channel of A now finds only Y; moving from an emptied group finds nothing.
    rest = (
        await start(client, org, {"from-individual-group-id": s.A, "to-individual-group-id": s.B})
    ).json()
    await run_jobs(app)
    steps = (await shown(client, org, rest["data"]["id"]))["logs"]["steps"]
    assert [(step["channel-id"], step["result"]) for step in steps] == [(s.Y, "moved")]
    empty = (
        await start(client, org, {"from-individual-group-id": s.A, "to-individual-group-id": s.B})
    ).json()
    await run_jobs(app)
    nothing = await shown(client, org, empty["data"]["id"])
    assert nothing["status"] == "completed" and nothing["logs"]["steps"] == []


async def test_a_channel_that_left_the_source_group_is_skipped(
    app: Any, client: httpx.AsyncClient, org: Org
) -> None:
    s = await scene(client, org)
    args = {
        "from-individual-group-id": s.A,
        "to-individual-group-id": s.B,
        "channel-ids": [s.X, s.Y],
    }
    ident = (await start(client, org, args)).json()["data"]["id"]
    # Between the request and the job, Y is moved to C by hand.
    patched = await client.patch(
        f"/v1/messaging-channels/{s.Y}/",
        headers=org.staff,
        json={
            "data": {
                "type": "messaging-channels",
                "id": s.Y,
                "attributes": [{"op": "replace", "path": "/individual-group-id", "value": s.C}],
            }
        },
    )
    assert patched.status_code == 200, patched.text
    await run_jobs(app)
    done = await shown(client, org, ident)
    assert done["status"] == "completed"
    results = {step["channel-id"]: step for step in done["logs"]["steps"]}
    assert results[s.X]["result"] == "moved"
    assert results[s.Y]["result"] == "skipped"
    assert "source group" in results[s.Y]["reason"]
    assert await channel_group(app, org, s.Y) == s.C


async def test_invalid_args_are_refused_naming_the_arg(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    s = await scene(client, org)
    foreign_member = await make_individual_id(client, other_org)
    foreign_group = await group(client, other_org, "Elsewhere", [foreign_member])
    foreign_channel = await channel(client, other_org, **{"individual-group-id": foreign_group})
    pointer = "/data/attributes/args/"
    f, t, c = "from-individual-group-id", "to-individual-group-id", "channel-ids"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({t: s.B}, 400, f),
        ({f: s.A}, 400, t),
        ({f: "nope", t: s.B}, 400, f),
        ({f: s.A, t: s.A}, 400, t),
        ({f: s.A, t: s.B, "colour": 1}, 400, "colour"),
        ({f: s.A, t: s.B, c: []}, 400, c),
        ({f: s.A, t: s.B, c: ["nope"]}, 400, f"{c}/0"),
        ({f: foreign_group, t: s.B}, 404, f),
        ({f: s.A, t: str(uuid.uuid4())}, 404, t),
        ({f: s.A, t: s.B, c: [s.X, foreign_channel]}, 404, f"{c}/1"),
        ({f: s.A, t: s.B, c: [s.Z]}, 400, f"{c}/0"),
    ]
    for args, status, name in cases:
        response = await start(client, org, args, status)
        error = response.json()["errors"][0]
        assert error["source"]["pointer"] == pointer + name, (args, error)
    wrong_type = await client.post(
        OPERATIONS,
        headers=org.admin,
        json=doc("messaging-operations", {"type": "merge-groups", "args": {}}),
    )
    assert wrong_type.status_code == 400
    assert wrong_type.json()["errors"][0]["source"]["pointer"] == "/data/attributes/type"
    not_an_object = await client.post(
        OPERATIONS,
        headers=org.admin,
        json=doc("messaging-operations", {"type": "move-group", "args": [1]}),
    )
    assert not_an_object.status_code == 400
    # Nothing was started by the refused requests.
    listing = await client.get(OPERATIONS, headers=org.admin)
    assert listing.json()["data"] == []


async def test_access_is_for_admins_of_the_organization(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    s = await scene(client, org)
    args = {"from-individual-group-id": s.A, "to-individual-group-id": s.B}
    body = doc("messaging-operations", {"type": "move-group", "args": args})
    for headers in (org.staff, org.readonly):
        assert (await client.post(OPERATIONS, headers=headers, json=body)).status_code == 403
        assert (await client.get(OPERATIONS, headers=headers)).status_code == 403
    ident = (await start(client, org, args)).json()["data"]["id"]
    assert (await client.get(f"{OPERATIONS}{ident}/", headers=org.staff)).status_code == 403
    assert (await client.get(f"{OPERATIONS}{ident}/", headers=other_org.admin)).status_code == 404
    foreign = await client.get(f"{OPERATIONS}?organization-id={org.id}", headers=other_org.admin)
    assert foreign.json()["data"] == []
    assert (
        await client.get(f"{OPERATIONS}?filter[type]=rename", headers=org.admin)
    ).status_code == 400
    bad = await client.get(f"{OPERATIONS}{ident}/?include-args=maybe", headers=org.admin)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["source"] == {"parameter": "include-args"}
    assert (
        await client.get(f"{OPERATIONS}?include-args=maybe", headers=org.admin)
    ).status_code == 400


async def test_a_target_group_gone_before_the_job_fails_the_operation(
    app: Any, client: httpx.AsyncClient, org: Org
) -> None:
    s = await scene(client, org)
    args = {"from-individual-group-id": s.A, "to-individual-group-id": s.B, "channel-ids": [s.X]}
    ident = (await start(client, org, args)).json()["data"]["id"]
    # No endpoint deletes groups yet; an integration (or a purge) may remove one directly.
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            scoped(delete(IndividualGroup), IndividualGroup, uuid.UUID(org.id)).where(
                IndividualGroup.id == uuid.UUID(s.B)
            )
        )
        await session.commit()
    await run_jobs(app)
    failed = await shown(client, org, ident)
    assert failed["status"] == "failed", failed
    assert "to-individual-group-id" in failed["logs"]["error"]
    assert failed["logs"]["steps"][-1]["result"] == "failed"
    assert await channel_group(app, org, s.X) == s.A
    assert set(await subscribers(app, org, s.X)) == {s.a1, s.a2, s.both, s.e1}
    statuses = [
        e.data["status"]
        for e in await events(app, org, "messaging-operations.updated")
        if str(e.resource_id) == ident
    ]
    assert statuses == ["running", "failed"]


async def test_a_crashed_job_resumes_with_the_remaining_channels(
    app: Any, client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await scene(client, org)
    third = await channel(client, org, **{"individual-group-id": s.A})
    ident = (
        await start(client, org, {"from-individual-group-id": s.A, "to-individual-group-id": s.B})
    ).json()["data"]["id"]
    real_move = service.move_channel
    calls: list[str] = []

    async def crash_on_second_channel(session: Any, operation: Any, channel_id: uuid.UUID) -> Any:
        calls.append(str(channel_id))
        entry = await real_move(session, operation, channel_id)
        if len(calls) == 2:
            raise RuntimeError("the worker died half-way through a channel")
        return entry

    monkeypatch.setattr(service, "move_channel", crash_on_second_channel)
    quick = app.state.settings.model_copy(update={"job_backoff_base_seconds": 0.01})
    await run_jobs(app, quick)

    done = await shown(client, org, ident)
    assert done["status"] == "completed", done
    planned = sorted([s.X, s.Y, third])
    # The second channel's first try was rolled back whole, and moved again on the retry;
    # the first was not moved twice.
    assert sorted(set(calls)) == planned and len(calls) == 4
    assert calls[1] == calls[2]
    assert sorted(step["channel-id"] for step in done["logs"]["steps"]) == planned
    assert all(step["result"] == "moved" for step in done["logs"]["steps"])
    for moved in planned:
        assert await channel_group(app, org, moved) == s.B
        assert s.a1 not in await subscribers(app, org, moved)
    async with app.state.database.sessionmaker() as session:
        job = (
            await session.execute(
                scoped(select(Job), Job, uuid.UUID(org.id)).where(Job.kind == OPERATION_JOB)
            )
        ).scalar_one()
    assert job.state == JobState.SUCCEEDED and job.attempts == 2


async def test_the_last_failed_attempt_marks_the_operation_failed(
    app: Any, client: httpx.AsyncClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await scene(client, org)
    ident = (
        await start(client, org, {"from-individual-group-id": s.A, "to-individual-group-id": s.B})
    ).json()["data"]["id"]

    async def broken(session: Any, operation: Any, channel_id: uuid.UUID) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "move_channel", broken)
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            scoped(update(Job), Job, uuid.UUID(org.id))
            .where(Job.kind == OPERATION_JOB)
            .values(max_attempts=1)
        )
        await session.commit()
    await run_jobs(app)
    failed = await shown(client, org, ident)
    assert failed["status"] == "failed"
    assert "unexpected error" in failed["logs"]["error"]
    assert "a bug" not in str(failed["logs"])  # internals stay in the job, for admins
    assert failed["logs"]["steps"][-1]["result"] == "failed"
    assert await channel_group(app, org, s.X) == s.A
    async with app.state.database.sessionmaker() as session:
        job = (
            await session.execute(
                scoped(select(Job), Job, uuid.UUID(org.id)).where(Job.kind == OPERATION_JOB)
            )
        ).scalar_one()
    assert job.state == JobState.FAILED


async def test_a_job_that_gave_up_shows_the_operation_failed(
    app: Any, client: httpx.AsyncClient, org: Org
) -> None:
    """A job marked failed without its handler (its worker died on the last attempt) still
    shows its operation failed."""
    s = await scene(client, org)
    ident = (
        await start(client, org, {"from-individual-group-id": s.A, "to-individual-group-id": s.B})
    ).json()["data"]["id"]
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            scoped(update(Job), Job, uuid.UUID(org.id))
            .where(Job.kind == OPERATION_JOB)
            .values(state=JobState.FAILED.value)
        )
        await session.commit()
    gave_up = await shown(client, org, ident)
    assert gave_up["status"] == "failed"
    assert "failed" in gave_up["logs"]["error"]
